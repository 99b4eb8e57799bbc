import { describe, expect, it } from 'vitest';
import { Limiter } from '../../../src/scoring/load/limiter.js';

describe('Limiter (load.scrape.concurrency)', () => {
  it('lets at most N hold a slot; waiters get freed slots in arrival order; a double release is harmless', async () => {
    const limiter = new Limiter(2);
    const order: string[] = [];
    const a = await limiter.acquire();
    const b = await limiter.acquire();
    expect(limiter.inFlight).toBe(2);
    const c = limiter.acquire().then((release) => (order.push('c'), release));
    const d = limiter.acquire().then((release) => (order.push('d'), release));
    await Promise.resolve();
    expect(order).toEqual([]);
    a();
    a(); // released once only
    const releaseC = await c;
    expect(order).toEqual(['c']);
    expect(limiter.inFlight).toBe(2);
    b();
    const releaseD = await d;
    expect(order).toEqual(['c', 'd']);
    releaseC();
    releaseD();
    expect(limiter.inFlight).toBe(0);
  });
});

import { describe, expect, it } from 'vitest';
import { ExpiryHeap } from '../../../../src/scoring/load/reservation-heap.js';

describe('ExpiryHeap', () => {
  it('pops in expiry order whatever the push order', () => {
    const h = new ExpiryHeap();
    const at = [50, 10, 40, 10, 30, 20, 60, 5];
    at.forEach((t, i) => h.push(t, `r${i}`));
    expect(h.size).toBe(8);
    expect(h.peek()).toBe(5);
    const out: number[] = [];
    for (let e = h.pop(); e; e = h.pop()) out.push(e.expiresAt);
    expect(out).toEqual([5, 10, 10, 20, 30, 40, 50, 60]);
    expect(h.peek()).toBe(Infinity);
    expect(h.pop()).toBeUndefined();
  });

  it('keeps each id with its expiry', () => {
    const h = new ExpiryHeap();
    h.push(3, 'c');
    h.push(1, 'a');
    h.push(2, 'b');
    expect([h.pop(), h.pop(), h.pop()]).toEqual([
      { expiresAt: 1, id: 'a' },
      { expiresAt: 2, id: 'b' },
      { expiresAt: 3, id: 'c' },
    ]);
  });
});

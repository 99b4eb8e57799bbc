import { afterEach, describe, expect, it, vi } from 'vitest';
import { TurnBudget } from '../../../src/events/stream/turn-budget.js';

/** performance.now() under the test's control. */
function clock(start = 1_000) {
  let now = start;
  vi.spyOn(performance, 'now').mockImplementation(() => now);
  return { advance: (ms: number) => (now += ms) };
}

afterEach(() => vi.restoreAllMocks());

describe('TurnBudget: one ingest slice per event-loop turn for every stream worker', () => {
  it('is spent once the workers together have run longer than the slice since the first of them started', () => {
    const t = clock();
    const budget = new TurnBudget(5);
    budget.enter(); // worker A starts: the slice starts
    t.advance(3);
    expect(budget.spent()).toBe(false);
    budget.enter(); // worker B starts while A runs: same slice
    t.advance(3);
    expect(budget.spent()).toBe(true); // 6 ms of A and B together
    budget.leave();
    budget.leave();
    t.advance(100);
    budget.enter(); // nobody was running: a new slice
    expect(budget.spent()).toBe(false);
  });

  it('gives every worker the same yield, and a fresh slice in the next turn of the event loop', async () => {
    const t = clock();
    const budget = new TurnBudget(5);
    budget.enter();
    budget.enter();
    t.advance(6);
    const a = budget.yield();
    const b = budget.yield();
    expect(a).toBe(b); // one setImmediate for all
    let turned = false;
    setImmediate(() => (turned = true)); // queued after the yield's: runs in the same check phase
    t.advance(1);
    await a;
    expect(turned).toBe(false);
    expect(budget.spent()).toBe(false); // the slice restarted when the loop came back
    t.advance(6);
    expect(budget.spent()).toBe(true);
    expect(budget.yield()).not.toBe(a); // the next turn's yield is a new one
  });

  it('lets a worker that starts during a shared yield keep the slice the yield will start', async () => {
    const t = clock();
    const budget = new TurnBudget(5);
    budget.enter();
    t.advance(6);
    const waiting = budget.yield();
    budget.enter(); // a second worker arrives before the loop has come back: no new slice for it now
    expect(budget.spent()).toBe(true);
    await waiting;
    expect(budget.spent()).toBe(false);
  });
});

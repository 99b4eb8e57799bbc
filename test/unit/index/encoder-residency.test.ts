import { describe, expect, it } from 'vitest';
import { EncoderResidency, MAX_IDENTIFIER_LENGTH } from '../../../src/index/index.js';

const A = '10.0.0.1:8000';
const B = '10.0.0.2:8000';
const C = '10.0.0.3:8000';

/** A residency on a hand-driven clock. */
function setup(options: { cacheEntries?: number; ttlMs?: number; maxEntries?: number } = {}) {
  const clock = { now: 1_000_000 };
  const r = new EncoderResidency({
    cacheEntries: options.cacheEntries ?? 4,
    ttlMs: options.ttlMs ?? 0,
    maxEntries: options.maxEntries,
    clock: () => clock.now,
  });
  return { r, clock };
}

describe('EncoderResidency', () => {
  it('answers which endpoints have seen an identifier, most recent first, and how many of a list each has seen', () => {
    const { r, clock } = setup();
    r.record(A, ['img-1', 'img-2']);
    clock.now += 1;
    r.record(B, ['img-1']);
    expect(r.endpointsOf('img-1')).toEqual([B, A]);
    expect(r.endpointsOf('img-2')).toEqual([A]);
    expect(r.endpointsOf('img-3')).toEqual([]);
    // A touches img-1 again: it is now the most recent holder.
    r.record(A, ['img-1']);
    expect(r.endpointsOf('img-1')).toEqual([A, B]);
    // Each occurrence in the list counts; unknown identifiers and endpoints count 0.
    expect(r.imagesSeen(A, ['img-1', 'img-2', 'img-3', 'img-1'])).toBe(3);
    expect(r.imagesSeen(B, ['img-1', 'img-2'])).toBe(1);
    expect(r.imagesSeen(C, ['img-1'])).toBe(0);
    expect(r.imagesSeen(A, [])).toBe(0);
    expect(r.entries).toBe(3);
    expect(r.endpointCount).toBe(2);
  });

  it('orders holders seen in the same millisecond by the order their events arrived', () => {
    const { r } = setup();
    r.record(C, ['x']);
    r.record(A, ['x']);
    r.record(B, ['x']);
    expect(r.endpointsOf('x')).toEqual([B, A, C]);
  });

  it('filters by candidates (duplicates listed once), or lists every endpoint when none are given', () => {
    const { r } = setup();
    r.record(A, ['x']);
    r.record(B, ['x']);
    r.record(C, ['y']);
    expect(r.endpointsOf('x', [A, C, A])).toEqual([A]);
    expect(r.endpointsOf('x', [C])).toEqual([]);
    expect(r.endpointsOf('x', [])).toEqual([B, A]);
    expect(r.endpointsOf('x', null)).toEqual([B, A]);
  });

  it('keeps at most cacheEntries identifiers per endpoint, dropping the least recently seen (lru)', () => {
    const { r } = setup({ cacheEntries: 3 });
    r.record(A, ['a', 'b', 'c']);
    r.record(A, ['a']); // a is now the most recent: b is the oldest
    r.record(A, ['d']);
    expect(r.imagesSeen(A, ['a', 'b', 'c', 'd'])).toBe(3);
    expect(r.endpointsOf('b')).toEqual([]);
    r.record(A, ['e']); // c goes
    expect(['a', 'b', 'c', 'd', 'e'].filter((id) => r.imagesSeen(A, [id]) === 1)).toEqual(['a', 'd', 'e']);
    expect(r.entries).toBe(3);
    expect(r.evictions).toEqual({ lru: 2, ttl: 0, endpoint_cleared: 0 });
    // Other endpoints have their own bound.
    r.record(B, ['b']);
    expect(r.entries).toBe(4);
  });

  it('ages entries out after the TTL: reads ignore them at once, the sweep drops and counts them', () => {
    const { r, clock } = setup({ ttlMs: 600_000 });
    r.record(A, ['old']);
    clock.now += 300_000;
    r.record(A, ['new']);
    r.record(B, ['old']);
    clock.now += 300_000; // A's 'old' is exactly 600 s old: gone
    expect(r.endpointsOf('old')).toEqual([B]);
    expect(r.imagesSeen(A, ['old', 'new'])).toBe(1);
    expect(r.entries).toBe(3); // not swept yet
    expect(r.sweep()).toBe(1);
    expect(r.entries).toBe(2);
    clock.now += 300_000;
    expect(r.sweep()).toBe(2);
    expect(r.entries).toBe(0);
    expect(r.endpointCount).toBe(0);
    expect(r.evictions).toEqual({ lru: 0, ttl: 3, endpoint_cleared: 0 });
  });

  it('a touch renews the TTL', () => {
    const { r, clock } = setup({ ttlMs: 1_000 });
    r.record(A, ['x']);
    clock.now += 900;
    r.record(A, ['x']);
    clock.now += 900;
    expect(r.imagesSeen(A, ['x'])).toBe(1);
    expect(r.sweep()).toBe(0);
  });

  it('clearing an endpoint drops its entries only, counted as endpoint_cleared', () => {
    const { r } = setup();
    r.record(A, ['x', 'y']);
    r.record(B, ['x']);
    expect(r.clearEndpoint(A)).toBe(2);
    expect(r.clearEndpoint(A)).toBe(0);
    expect(r.endpointsOf('x')).toEqual([B]);
    expect(r.imagesSeen(A, ['x', 'y'])).toBe(0);
    expect(r.entries).toBe(1);
    expect(r.evictions).toEqual({ lru: 0, ttl: 0, endpoint_cleared: 2 });
    expect(r.evictionsTotal).toBe(2);
  });

  it('bounds the entries over all endpoints: the endpoint holding the most gives up its oldest', () => {
    const { r } = setup({ cacheEntries: 10, maxEntries: 4 });
    r.record(A, ['a1', 'a2', 'a3']);
    r.record(B, ['b1']);
    r.record(B, ['b2']); // 5 > 4: A (3 entries) loses a1
    expect(r.entries).toBe(4);
    expect(r.endpointsOf('a1')).toEqual([]);
    expect(r.imagesSeen(A, ['a2', 'a3'])).toBe(2);
    r.record(C, ['c1']); // A and B hold 2 each: the first of them (A) loses a2
    expect(r.entries).toBe(4);
    expect(r.imagesSeen(A, ['a2', 'a3'])).toBe(1);
    expect(r.evictions.lru).toBe(2);
  });

  it('with an overall bound of 1, only the newest identifier stays', () => {
    const { r } = setup({ cacheEntries: 10, maxEntries: 1 });
    r.record(A, ['a1', 'a2']);
    expect(r.entries).toBe(1);
    expect(r.endpointsOf('a2')).toEqual([A]);
    expect(r.endpointsOf('a1')).toEqual([]);
  });

  it('skips empty identifiers and identifiers longer than 256 characters (counted)', () => {
    const { r } = setup();
    const long = 'x'.repeat(MAX_IDENTIFIER_LENGTH + 1);
    r.record(A, ['', long, 'y'.repeat(MAX_IDENTIFIER_LENGTH)]);
    expect(r.entries).toBe(1);
    expect(r.skippedLong).toBe(1);
    expect(r.endpointCount).toBe(1);
    r.record(B, ['']);
    expect(r.endpointCount).toBe(1);
  });

  it('refuses bad options', () => {
    expect(() => new EncoderResidency({ cacheEntries: 0, ttlMs: 0 })).toThrow('cacheEntries must be ≥ 1, got 0');
    expect(() => new EncoderResidency({ cacheEntries: 1, ttlMs: -1 })).toThrow('ttlMs must be ≥ 0, got -1');
    expect(() => new EncoderResidency({ cacheEntries: 1, ttlMs: 0, maxEntries: 0 })).toThrow(
      'maxEntries must be ≥ 1, got 0',
    );
  });
});

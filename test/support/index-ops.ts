import fc from 'fast-check';

/**
 * Random index operations over small universes (so repeats and shared keys are the norm), for the property tests
 * that compare an index with a reference: a naive model (memory) or the in-memory index (Redis).
 */

export const KEYS = [0n, 1n, 7n, 2n ** 32n, 2n ** 32n + 7n, 2n ** 63n, 2n ** 64n - 1n, 123456789012345678n];
export const ENDPOINTS = ['a', 'b', 'c', 'd'];

export type IndexOp =
  | { kind: 'add' | 'remove'; endpoint: string; tier: string; keys: bigint[] }
  | { kind: 'clear'; endpoint: string }
  | { kind: 'reserve'; endpoint: string; keys: bigint[]; ttl: number }
  | { kind: 'release'; endpoint: string; keys: bigint[] }
  | { kind: 'tick'; ms: number };

export function indexOp(tiers: readonly string[]): fc.Arbitrary<IndexOp> {
  const endpoint = fc.constantFrom(...ENDPOINTS);
  const keyList = fc.array(fc.constantFrom(...KEYS), { maxLength: 6 });
  const tier = fc.constantFrom(...tiers);
  return fc.oneof(
    { weight: 5, arbitrary: fc.record({ kind: fc.constant('add' as const), endpoint, tier, keys: keyList }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('remove' as const), endpoint, tier, keys: keyList }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('clear' as const), endpoint }) },
    {
      weight: 3,
      arbitrary: fc.record({
        kind: fc.constant('reserve' as const),
        endpoint,
        keys: keyList,
        ttl: fc.integer({ min: 1, max: 50 }),
      }),
    },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('release' as const), endpoint, keys: keyList }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 30 }) }) },
  );
}

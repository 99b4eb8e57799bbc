import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Ingestor } from '../../../src/events/ingest/index.js';
import type { KvEvent } from '../../../src/events/types.js';
import { MemoryIndex, TierRegistry } from '../../../src/index/index.js';
import { BlockHasher } from '../../../src/keys/index.js';
import { Scorer } from '../../../src/scoring/index.js';
import { placeholder, removed, stored } from '../../support/events.js';
import { referenceKeys } from '../keys/reference-hasher.js';

/**
 * Ingest against a naive model: engine keys are a function of the token prefix (as vLLM's chained hashes are), the
 * model keeps per (endpoint, engine key, tier) store counts and each engine key's full token prefix, and an endpoint
 * holds request key R on a tier iff some engine key with a positive count on that tier has R as the key of its prefix.
 */

const MODEL = 'm';
const BS = 2;
const ENDPOINTS = ['e0', 'e1'];
const TIERS = ['GPU', 'CPU'];

type Op =
  | { kind: 'store'; ep: number; from: number; blocks: number[][] }
  | { kind: 'remove'; ep: number; pick: number; tier: number }
  | { kind: 'offload'; ep: number; pick: number }
  | { kind: 'clear'; ep: number };

// A tiny alphabet and short blocks make repeated prefixes (duplicate stores, re-removals, re-parenting) common.
const block = fc.array(fc.integer({ min: 0, max: 1 }), { minLength: BS, maxLength: BS });
const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('store' as const),
      ep: fc.nat(1),
      from: fc.nat(12),
      blocks: fc.array(block, { minLength: 1, maxLength: 3 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({ kind: fc.constant('remove' as const), ep: fc.nat(1), pick: fc.nat(12), tier: fc.nat(1) }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('offload' as const), ep: fc.nat(1), pick: fc.nat(50) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('clear' as const), ep: fc.nat(1) }) },
);

describe('ingest agrees with a naive model (property)', () => {
  it('under random stores, removes, offload placeholders and clears', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 60 }), async (ops) => {
        const tiers = new TierRegistry();
        const hasher = new BlockHasher({ blockSize: BS, hashSeed: '' });
        const index = new MemoryIndex({ tiers, shards: 2 });
        const ingestor = new Ingestor({ hasher, writer: index, tiers });

        // Engine key of a token prefix, per endpoint (engine processes hash independently).
        const engineKeyOf = new Map<string, bigint>();
        const prefixOf = new Map<bigint, number[]>();
        const engineKey = (ep: number, prefix: number[]) => {
          const id = `${ep}|${prefix.join(',')}`;
          let k = engineKeyOf.get(id);
          if (k === undefined) {
            k = (BigInt(engineKeyOf.size + 1) * 0x9e3779b97f4a7c15n) & 0xffffffffffffffffn;
            engineKeyOf.set(id, k);
            prefixOf.set(k, prefix);
          }
          return k;
        };
        // Model state: per endpoint, engine key → counts per tier.
        const counts = ENDPOINTS.map(() => new Map<bigint, number[]>());
        const known = (ep: number) => [...counts[ep].keys()];

        for (const o of ops) {
          const ep = ENDPOINTS[o.ep];
          const held = counts[o.ep];
          let events: KvEvent[];
          if (o.kind === 'store') {
            const keys = known(o.ep);
            // Parent: a known engine key (or, when `from` is past the end, the start of a chain or an unknown key).
            const parent = o.from < keys.length ? keys[o.from] : o.from % 3 === 0 ? 999n : null;
            const base = parent === null ? [] : (prefixOf.get(parent) ?? []);
            const hashes: bigint[] = [];
            let prefix = base;
            for (const b of o.blocks) {
              prefix = [...prefix, ...b];
              hashes.push(engineKey(o.ep, prefix));
            }
            events = [stored(hashes, parent, o.blocks.flat(), BS)];
            const allKnown = hashes.every((h) => held.has(h));
            const parentOk = parent === null || held.has(parent);
            if (allKnown || parentOk) for (const h of hashes) bump(held, h, 0, 1);
          } else if (o.kind === 'remove') {
            const keys = known(o.ep);
            const h = keys.length ? keys[o.pick % keys.length] : 12345n;
            events = [removed([h], TIERS[o.tier])];
            if (held.has(h) && held.get(h)![o.tier] > 0) bump(held, h, o.tier, -1);
          } else if (o.kind === 'offload') {
            const keys = known(o.ep);
            const h = keys.length ? keys[o.pick % keys.length] : 12345n;
            events = [placeholder([h], 'CPU')];
            if (held.has(h)) bump(held, h, 1, 1);
          } else {
            events = [{ type: 'AllBlocksCleared' }];
            held.clear();
          }
          ingestor.applySync(ep, MODEL, events);
        }

        // Compare every prefix the model knows of, on both endpoints, tier by tier.
        const scorer = new Scorer(index, tiers);
        for (const prefix of prefixOf.values()) {
          const ref = referenceKeys(MODEL, '', BS, prefix, null).keys;
          const result = await scorer.score(BigUint64Array.from(ref), { candidates: ENDPOINTS });
          ENDPOINTS.forEach((_, e) => {
            const holds = (i: number, tier: number) =>
              [...counts[e]].some(([h, c]) => c[tier] > 0 && prefixKey(prefixOf.get(h)!, i, ref));
            let expected = 0;
            const byTier: Record<string, number> = {};
            while (expected < ref.length && (holds(expected, 0) || holds(expected, 1))) {
              const t = holds(expected, 0) ? 'GPU' : 'CPU';
              byTier[t] = (byTier[t] ?? 0) + 1;
              expected++;
            }
            expect(result.scores[e].matchedBlocks).toBe(expected);
            expect(result.scores[e].blocksByTier).toEqual(byTier);
          });
        }
        const entries = (e: number) => {
          const keys = new Set<string>();
          for (const [h, c] of counts[e]) {
            const p = prefixOf.get(h)!;
            const k = referenceKeys(MODEL, '', BS, p, null).keys.at(-1)!;
            c.forEach((n, t) => n > 0 && keys.add(`${k}/${t}`));
          }
          return keys.size;
        };
        ENDPOINTS.forEach((ep, e) => expect(index.entriesOf(ep)).toBe(entries(e)));
      }),
      { numRuns: 400 },
    );
  });
});

function bump(held: Map<bigint, number[]>, h: bigint, tier: number, delta: number): void {
  const c = held.get(h) ?? [0, 0];
  c[tier] += delta;
  if (c[0] === 0 && c[1] === 0) held.delete(h);
  else held.set(h, c);
}

/** True when the last key of `prefix` is block i of the query. */
function prefixKey(prefix: number[], i: number, query: bigint[]): boolean {
  if (prefix.length !== (i + 1) * BS) return false;
  return referenceKeys(MODEL, '', BS, prefix, null).keys[i] === query[i];
}

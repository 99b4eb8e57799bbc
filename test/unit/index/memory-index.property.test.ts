import fc from 'fast-check';
import { ENDPOINTS, indexOp, KEYS, type IndexOp } from '../../support/index-ops.js';
import { describe, expect, it } from 'vitest';
import { MemoryIndex, SPECULATIVE_BIT, TierRegistry, normaliseTier } from '../../../src/index/index.js';
import { plain } from './helpers.js';

/**
 * A naive reference model of the index in plain Maps, and random operation sequences over small key and endpoint
 * universes (so repeats and shared keys are the norm). After every sequence, lookups and counts must agree exactly.
 */

const TIERS = ['GPU', 'cpu', 'Disk', 'CPU_PINNED'];

type Op = IndexOp;

type Row = [endpoint: string, matchedBlocks: number, tierMasks: number[]];

class Model {
  /** endpoint → key → tier name → refcount */
  readonly confirmed = new Map<string, Map<bigint, Map<string, number>>>();
  /** endpoint → key → expiresAt (expired ones linger here; they are treated as absent) */
  readonly speculative = new Map<string, Map<bigint, number>>();
  removesOfUnknown = 0;
  now = 1_000;
  private readonly tiers = new TierRegistry();

  apply(op: Op): number | undefined {
    switch (op.kind) {
      case 'add':
        for (const k of op.keys) {
          this.speculative.get(op.endpoint)?.delete(k);
          const byTier = getOr(
            getOr(this.confirmed, op.endpoint, () => new Map()),
            k,
            () => new Map<string, number>(),
          );
          const t = normaliseTier(op.tier);
          byTier.set(t, (byTier.get(t) ?? 0) + 1);
        }
        return undefined;
      case 'remove':
        for (const k of op.keys) {
          const byTier = this.confirmed.get(op.endpoint)?.get(k);
          const t = normaliseTier(op.tier);
          const n = byTier?.get(t) ?? 0;
          if (n === 0) this.removesOfUnknown++;
          else if (n === 1) {
            byTier!.delete(t);
            if (byTier!.size === 0) this.confirmed.get(op.endpoint)!.delete(k);
          } else byTier!.set(t, n - 1);
        }
        return undefined;
      case 'clear':
        this.confirmed.delete(op.endpoint);
        this.speculative.delete(op.endpoint);
        return undefined;
      case 'reserve':
        for (const k of op.keys) {
          if (this.confirmed.get(op.endpoint)?.has(k)) continue;
          const spec = getOr(this.speculative, op.endpoint, () => new Map<bigint, number>());
          spec.set(k, Math.max(spec.get(k) ?? -Infinity, this.now + op.ttl));
        }
        return undefined;
      case 'release': {
        let live = 0;
        const spec = this.speculative.get(op.endpoint);
        for (const k of op.keys) {
          const exp = spec?.get(k);
          if (exp === undefined) continue;
          if (exp > this.now) live++;
          spec!.delete(k);
        }
        return live;
      }
      case 'tick':
        this.now += op.ms;
        return undefined;
    }
  }

  /** Tier mask of one endpoint for one key at time now (0 = not held). */
  mask(endpoint: string, k: bigint, now: number): number {
    const byTier = this.confirmed.get(endpoint)?.get(k);
    if (byTier && byTier.size > 0) {
      let m = 0;
      for (const t of byTier.keys()) m |= 1 << this.tiers.intern(t);
      return m;
    }
    const exp = this.speculative.get(endpoint)?.get(k);
    return exp !== undefined && exp > now ? (1 | SPECULATIVE_BIT) >>> 0 : 0;
  }

  lookup(chain: bigint[], candidates: string[] | undefined, maxBlocks: number, now: number): Row[] {
    const n = Math.min(chain.length, maxBlocks);
    if (n === 0) return [];
    const who = candidates
      ? [...new Set(candidates)]
      : ENDPOINTS.filter((e) => this.mask(e, chain[0], now) !== 0).sort();
    const out: Row[] = [];
    for (const e of who) {
      const masks: number[] = [];
      for (let b = 0; b < n; b++) {
        const m = this.mask(e, chain[b], now);
        if (m === 0) break;
        masks.push(m);
      }
      if (masks.length > 0) out.push([e, masks.length, masks]);
    }
    return out.sort((x, y) => y[1] - x[1]);
  }

  /** Counts as the index reports them, with speculative entries expired at now dropped. */
  counts(now: number) {
    const keys = new Set<bigint>();
    const perEndpoint = new Map<string, Record<string, number>>();
    let entries = 0;
    let speculativeEntries = 0;
    for (const e of ENDPOINTS) {
      const rec: Record<string, number> = {};
      for (const [k, byTier] of this.confirmed.get(e) ?? []) {
        for (const t of byTier.keys()) rec[t] = (rec[t] ?? 0) + 1;
        entries += byTier.size;
        keys.add(k);
      }
      for (const [k, exp] of this.speculative.get(e) ?? []) {
        if (exp <= now) continue;
        rec.GPU = (rec.GPU ?? 0) + 1;
        entries++;
        speculativeEntries++;
        keys.add(k);
      }
      perEndpoint.set(e, rec);
    }
    const endpoints = [...perEndpoint.values()].filter((r) => Object.keys(r).length > 0).length;
    return { entries, keys: keys.size, speculativeEntries, endpoints, perEndpoint };
  }
}

function getOr<K, V>(m: Map<K, V>, k: K, make: () => V): V {
  let v = m.get(k);
  if (v === undefined) m.set(k, (v = make()));
  return v;
}

const op = indexOp(TIERS);
const endpoint = fc.constantFrom(...ENDPOINTS);
const query = fc.record({
  chain: fc.array(fc.constantFrom(...KEYS), { minLength: 0, maxLength: 8 }),
  candidates: fc.option(fc.array(fc.constantFrom(...ENDPOINTS, 'unknown'), { maxLength: 5 }), { nil: undefined }),
  maxBlocks: fc.option(fc.nat({ max: 8 }), { nil: undefined }),
  /** Read ahead of the clock (never behind it: sweeps may already have reclaimed what an older time would see). */
  ahead: fc.option(fc.nat({ max: 40 }), { nil: undefined }),
});

describe('MemoryIndex against a reference model (property)', () => {
  it('agrees on lookups, release counts, stats and per-endpoint counts after random operation sequences', () => {
    fc.assert(
      fc.property(
        fc.array(op, { maxLength: 40 }),
        fc.array(query, { minLength: 1, maxLength: 12 }),
        fc.constantFrom(1, 4),
        (ops, queries, shards) => {
          const model = new Model();
          const idx = new MemoryIndex({ shards, maxEntries: 10_000, clock: () => model.now });
          for (const o of ops) {
            const expected = model.apply(o);
            const ks = 'keys' in o ? BigUint64Array.from(o.keys) : new BigUint64Array(0);
            if (o.kind === 'add') idx.add(o.endpoint, o.tier, ks);
            else if (o.kind === 'remove') idx.remove(o.endpoint, o.tier, ks);
            else if (o.kind === 'clear') idx.clearEndpoint(o.endpoint);
            else if (o.kind === 'reserve') idx.reserveSync(o.endpoint, ks, o.ttl);
            else if (o.kind === 'release') expect(idx.releaseSync(o.endpoint, ks)).toBe(expected);
          }
          for (const q of queries) {
            const now = q.ahead === undefined ? model.now : model.now + q.ahead;
            const got = idx.lookupSync(BigUint64Array.from(q.chain), {
              candidates: q.candidates,
              maxBlocks: q.maxBlocks,
              now: q.ahead === undefined ? undefined : now,
            });
            expect(plain(got)).toEqual(model.lookup(q.chain, q.candidates, q.maxBlocks ?? Infinity, now));
          }
          const want = model.counts(model.now);
          for (const e of ENDPOINTS) {
            expect(idx.endpointEntriesSync(e)).toEqual(want.perEndpoint.get(e));
            expect(idx.entriesOf(e)).toBe(Object.values(want.perEndpoint.get(e)!).reduce((a, b) => a + b, 0));
          }
          expect(idx.statsSync()).toMatchObject({
            entries: want.entries,
            keys: want.keys,
            speculativeEntries: want.speculativeEntries,
            endpoints: want.endpoints,
            evictions: 0,
            removesOfUnknown: model.removesOfUnknown,
          });
        },
      ),
      { numRuns: 400 },
    );
  });
});

/** Reference for the eviction policy: per-endpoint recency lists, ids assigned like the EndpointRegistry. */
class EvictionModel {
  readonly lists = new Map<string, { key: bigint; tier: string; spec: boolean; refs: number }[]>();
  readonly ids = new Map<string, number>();
  private nextId = 0;
  private readonly released: number[] = [];
  evictions = 0;

  constructor(private readonly max: number) {}

  private intern(e: string): number {
    let id = this.ids.get(e);
    if (id === undefined) {
      id = this.released.length > 0 ? this.released.pop()! : this.nextId++;
      this.ids.set(e, id);
      this.lists.set(e, []);
    }
    return id;
  }

  private total(): number {
    let n = 0;
    for (const l of this.lists.values()) n += l.length;
    return n;
  }

  private evictIfFull(): void {
    if (this.total() < this.max) return;
    let victim: string | undefined;
    for (const [e, l] of this.lists) {
      const best = victim === undefined ? undefined : this.lists.get(victim)!;
      if (l.length === 0) continue;
      if (!best || l.length > best.length || (l.length === best.length && this.ids.get(e)! < this.ids.get(victim!)!)) {
        victim = e;
      }
    }
    this.lists.get(victim!)!.shift();
    this.evictions++;
  }

  private toTail(l: unknown[], i: number): void {
    l.push(l.splice(i, 1)[0]);
  }

  add(e: string, tierName: string, keys: bigint[]): void {
    this.intern(e);
    const tier = normaliseTier(tierName);
    for (const key of keys) {
      const l = this.lists.get(e)!;
      const i = l.findIndex((x) => x.key === key && (x.spec || x.tier === tier));
      if (i >= 0) {
        const x = l[i];
        if (x.spec) Object.assign(x, { spec: false, tier, refs: 1 });
        else x.refs++;
        this.toTail(l, i);
        continue;
      }
      this.evictIfFull();
      this.lists.get(e)!.push({ key, tier, spec: false, refs: 1 });
    }
  }

  remove(e: string, tierName: string, keys: bigint[]): void {
    const l = this.lists.get(e);
    if (!l) return;
    const tier = normaliseTier(tierName);
    for (const key of keys) {
      const i = l.findIndex((x) => x.key === key && !x.spec && x.tier === tier);
      if (i >= 0 && --l[i].refs === 0) l.splice(i, 1);
    }
  }

  clear(e: string): void {
    const id = this.ids.get(e);
    if (id === undefined) return;
    this.ids.delete(e);
    this.lists.delete(e);
    this.released.push(id);
  }

  reserve(e: string, keys: bigint[]): void {
    this.intern(e);
    for (const key of keys) {
      const l = this.lists.get(e)!;
      const i = l.findIndex((x) => x.key === key);
      if (i >= 0) {
        if (l[i].spec) this.toTail(l, i);
        continue;
      }
      this.evictIfFull();
      this.lists.get(e)!.push({ key, tier: 'GPU', spec: true, refs: 1 });
    }
  }
}

describe('MemoryIndex eviction against a reference model (property)', () => {
  it('evicts exactly the entries the documented policy names', () => {
    const small = fc.array(fc.constantFrom(...KEYS), { maxLength: 5 });
    const evOp = fc.oneof(
      { weight: 6, arbitrary: fc.tuple(fc.constant('add' as const), endpoint, fc.constantFrom(...TIERS), small) },
      { weight: 2, arbitrary: fc.tuple(fc.constant('remove' as const), endpoint, fc.constantFrom(...TIERS), small) },
      { weight: 1, arbitrary: fc.tuple(fc.constant('clear' as const), endpoint, fc.constant(''), small) },
      { weight: 2, arbitrary: fc.tuple(fc.constant('reserve' as const), endpoint, fc.constant(''), small) },
    );
    fc.assert(
      fc.property(fc.array(evOp, { maxLength: 50 }), fc.integer({ min: 1, max: 8 }), (ops, max) => {
        const model = new EvictionModel(max);
        const idx = new MemoryIndex({ maxEntries: max, shards: 2, clock: () => 0 });
        for (const [kind, e, tier, ks] of ops) {
          const arr = BigUint64Array.from(ks);
          if (kind === 'add') {
            model.add(e, tier, ks);
            idx.add(e, tier, arr);
          } else if (kind === 'remove') {
            model.remove(e, tier, ks);
            idx.remove(e, tier, arr);
          } else if (kind === 'clear') {
            model.clear(e);
            idx.clearEndpoint(e);
          } else {
            model.reserve(e, ks);
            idx.reserveSync(e, arr, 1e9);
          }
        }
        const tiers = new TierRegistry();
        for (const e of ENDPOINTS) {
          const held = model.lists.get(e) ?? [];
          expect(idx.entriesOf(e)).toBe(held.length);
          for (const key of KEYS) {
            let m = 0;
            for (const x of held) if (x.key === key) m |= x.spec ? 1 | SPECULATIVE_BIT : 1 << tiers.intern(x.tier);
            const got = idx.lookupSync(BigUint64Array.of(key), { candidates: [e] });
            expect(got.length === 0 ? 0 : got[0].tierMasks[0]).toBe(m >>> 0);
          }
        }
        expect(idx.statsSync().evictions).toBe(model.evictions);
      }),
      { numRuns: 400 },
    );
  });
});

import type { KvEvent } from '../../src/events/types.js';
import { placeholder, removed, stored } from './events.js';

/**
 * A model engine for ingest's span rule (spec/block-keys.md): prompts with shared prefixes, engine keys that are a
 * function of the token prefix at the engine block size (as vLLM's chained hashes are), per (engine key, tier) store
 * counts, and the truth the index must report: an endpoint holds canonical block k of a prompt on a tier iff, for
 * some prompt with the same first (k+1)·B tokens, every engine block overlapping that canonical block is held there.
 *
 * The generator only emits what a vLLM engine emits and ingest can place: a store continues from a parent that is
 * aligned on a canonical boundary or was the unaligned last block of the event that first defined it (ingest keeps
 * leftover tokens only there); anything else is the parentUnknown case, which the model mirrors by skipping.
 */

export const GPU = 0;
export const CPU = 1;
const TIER_NAMES = ['GPU', 'CPU'];

/** Seeded PRNG (mulberry32): the same seed gives the same sequences on every run. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class SpanModel {
  readonly prompts: number[][] = [];
  private readonly keyOf = new Map<string, bigint>();
  /** Token length of each engine key's prefix. */
  private readonly lengthOf = new Map<bigint, number>();
  /** Per prompt and canonical block k: the first (k+1)·B tokens, joined (for prefix comparisons). */
  private prefixes: string[][] = [];
  private readonly keyCache: bigint[][] = [];
  /** Per endpoint: engine key → [gpu count, cpu count]. */
  readonly counts: Map<bigint, number[]>[];
  /** Per endpoint: engine keys first defined as the unaligned last block of a store (ingest keeps their leftover). */
  private readonly tails: Set<bigint>[];
  /**
   * Per endpoint: lower-tier (CPU) multi-block stores by their last key. A CPU removal naming only that key removes
   * the whole chunk (key-only removals, vLLM RFC #49413), as ingest does.
   */
  private readonly chunks: Map<bigint, { members: bigint[]; times: number }>[];
  private lastStore: KvEvent | null = null;
  private lastStoreEp = 0;

  constructor(
    private readonly random: () => number,
    readonly eb: number,
    readonly B: number,
    endpoints: number,
    promptCount = 6,
  ) {
    this.counts = Array.from({ length: endpoints }, () => new Map());
    this.tails = Array.from({ length: endpoints }, () => new Set());
    this.chunks = Array.from({ length: endpoints }, () => new Map());
    let next = 1;
    const fresh = (n: number) => Array.from({ length: n }, () => next++);
    for (let p = 0; p < promptCount; p++) {
      const blocks = 1 + Math.floor(random() * Math.max(2, Math.ceil((3 * B) / eb) + 3));
      // Share a prefix (at engine-block granularity, often inside a canonical block) with an earlier prompt.
      const base = p > 0 && random() < 0.7 ? this.prompts[Math.floor(random() * p)] : [];
      const shared = Math.min(base.length / eb, Math.floor(random() * (base.length / eb + 1)));
      const tokens = [...base.slice(0, shared * eb), ...fresh(Math.max(0, blocks - shared) * eb)];
      this.prompts.push(tokens.length > 0 ? tokens : fresh(eb));
    }
  }

  blocksOf(p: number): number {
    return this.prompts[p].length / this.eb;
  }

  /** Engine key of engine block j of prompt p (the same for every endpoint, as with a shared PYTHONHASHSEED). */
  key(p: number, j: number): bigint {
    const cached = (this.keyCache[p] ??= [])[j];
    if (cached !== undefined) return cached;
    const id = this.prompts[p].slice(0, (j + 1) * this.eb).join(',');
    let k = this.keyOf.get(id);
    if (k === undefined) {
      k = (BigInt(this.keyOf.size + 1) * 0x9e3779b97f4a7c15n) & 0xffffffffffffffffn;
      this.keyOf.set(id, k);
      this.lengthOf.set(k, (j + 1) * this.eb);
    }
    this.keyCache[p][j] = k;
    return k;
  }

  private held(ep: number, key: bigint, tier: number): boolean {
    return (this.counts[ep].get(key)?.[tier] ?? 0) > 0;
  }

  private continuable(ep: number, p: number, a: number): boolean {
    if (a === 0) return true;
    const parent = this.key(p, a - 1);
    if (!this.counts[ep].has(parent)) return false;
    return (a * this.eb) % this.B === 0 || this.tails[ep].has(parent);
  }

  private bump(ep: number, key: bigint, tier: number, delta: number): void {
    const c = this.counts[ep].get(key) ?? [0, 0];
    c[tier] = Math.max(0, Math.min(255, c[tier] + delta));
    if (c[GPU] === 0 && c[CPU] === 0) {
      this.counts[ep].delete(key);
      this.tails[ep].delete(key);
      this.chunks[ep].delete(key);
    } else this.counts[ep].set(key, c);
  }

  /** One random step: the events to apply to `ep` (the model has already applied them). */
  step(): { ep: number; events: KvEvent[] } {
    const r = this.random();
    const ep = Math.floor(this.random() * this.counts.length);
    const p = Math.floor(this.random() * this.prompts.length);
    const n = this.blocksOf(p);
    if (r < 0.4) {
      // Store blocks [a, b) of a prompt, continuing from a placeable parent.
      const starts = Array.from({ length: n }, (_, a) => a).filter((a) => this.continuable(ep, p, a));
      const a = starts[Math.floor(this.random() * starts.length)];
      const b = a + 1 + Math.floor(this.random() * (n - a));
      return { ep, events: [this.store(ep, p, a, b)] };
    }
    if (r < 0.47 && this.lastStore) {
      // The last store again (a duplicate on the wire).
      const ev = this.lastStore;
      this.applyStore(this.lastStoreEp, ev);
      return { ep: this.lastStoreEp, events: [ev] };
    }
    if (r < 0.57) {
      // CPU offload of a run of the prompt's blocks: a placeholder (no tokens), or, when ingest knows every block, a
      // self-describing store with tokens (a chunk: a later CPU removal of its last key removes it whole).
      const a = Math.floor(this.random() * n);
      const b = a + 1 + Math.floor(this.random() * (n - a));
      const keys = Array.from({ length: b - a }, (_, i) => this.key(p, a + i));
      const selfDescribing = this.random() < 0.5 && keys.every((k) => this.counts[ep].has(k));
      if (selfDescribing && keys.length > 1) {
        const known = this.chunks[ep].get(keys[keys.length - 1]);
        if (known && known.members.length === keys.length) known.times++;
        else this.chunks[ep].set(keys[keys.length - 1], { members: keys, times: 1 });
      }
      for (const k of keys) if (this.counts[ep].has(k)) this.bump(ep, k, CPU, 1);
      if (!selfDescribing) return { ep, events: [placeholder(keys, 'CPU')] };
      const tokens = this.prompts[p].slice(a * this.eb, b * this.eb);
      return { ep, events: [stored(keys, a === 0 ? null : this.key(p, a - 1), tokens, this.eb, { medium: 'CPU' })] };
    }
    if (r < 0.97) {
      // Remove one engine block (often held, sometimes not) from one tier.
      const tier = this.random() < 0.75 ? GPU : CPU;
      const k = this.key(p, Math.floor(this.random() * n));
      const chunk = tier === CPU ? this.chunks[ep].get(k) : undefined;
      if (chunk) {
        if (--chunk.times === 0) this.chunks[ep].delete(k);
        for (const m of chunk.members) if (this.held(ep, m, CPU)) this.bump(ep, m, CPU, -1);
      } else if (this.held(ep, k, tier)) this.bump(ep, k, tier, -1);
      return { ep, events: [removed([k], TIER_NAMES[tier])] };
    }
    this.counts[ep].clear();
    this.tails[ep].clear();
    this.chunks[ep].clear();
    return { ep, events: [{ type: 'AllBlocksCleared' }] };
  }

  private store(ep: number, p: number, a: number, b: number): KvEvent {
    const keys = Array.from({ length: b - a }, (_, i) => this.key(p, a + i));
    const ev = stored(
      keys,
      a === 0 ? null : this.key(p, a - 1),
      this.prompts[p].slice(a * this.eb, b * this.eb),
      this.eb,
    );
    this.lastStore = ev;
    this.lastStoreEp = ep;
    this.applyStore(ep, ev);
    return ev;
  }

  private applyStore(ep: number, ev: KvEvent): void {
    if (ev.type !== 'BlockStored') return;
    const keys = [...ev.blockHashes];
    const counts = this.counts[ep];
    if (!keys.every((k) => counts.has(k))) {
      const parent = ev.parentBlockHash;
      // The parent must be known and placeable (it was when the event was generated; a duplicate may find it gone).
      if (parent !== null && !(counts.has(parent) && (this.isAligned(parent) || this.tails[ep].has(parent)))) return;
      const last = keys[keys.length - 1];
      const lastNew = !counts.has(last);
      for (const k of keys) this.bump(ep, k, GPU, 1);
      if (lastNew && !this.isAligned(last)) this.tails[ep].add(last);
      return;
    }
    for (const k of keys) this.bump(ep, k, GPU, 1);
  }

  private isAligned(key: bigint): boolean {
    return (this.lengthOf.get(key) ?? 1) % this.B === 0;
  }

  /**
   * The truth for prompt p on endpoint ep: per canonical block from 0, the tier mask (bit t = held on tier t), up to
   * the first block held nowhere.
   */
  expected(ep: number, p: number): number[] {
    const out: number[] = [];
    if (this.prefixes.length === 0) {
      this.prefixes = this.prompts.map((tokens) =>
        Array.from({ length: Math.floor(tokens.length / this.B) }, (_, k) =>
          tokens.slice(0, (k + 1) * this.B).join(','),
        ),
      );
    }
    const tokens = this.prompts[p];
    for (let k = 0; (k + 1) * this.B <= tokens.length; k++) {
      const prefix = this.prefixes[p][k];
      let mask = 0;
      for (let q = 0; q < this.prompts.length; q++) {
        const other = this.prompts[q];
        if (this.prefixes[q][k] !== prefix) continue;
        const first = Math.floor((k * this.B) / this.eb);
        const last = Math.floor(((k + 1) * this.B - 1) / this.eb);
        if ((last + 1) * this.eb > other.length) continue;
        for (let t = 0; t < 2; t++) {
          let all = true;
          for (let j = first; j <= last && all; j++) all = this.held(ep, this.key(q, j), t);
          if (all) mask |= 1 << t;
        }
      }
      if (mask === 0) break;
      out.push(mask);
    }
    return out;
  }
}

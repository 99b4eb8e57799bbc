import { U64Table } from '../../index/table/u64-table.js';

/**
 * A per-endpoint bound on what ingest keeps for publishers that announce stores and never removals (LMCache's
 * connector publishes BlockStored only): without it such an endpoint's entries would stay forever, long after the
 * engine dropped them. `maxBlocks` caps the engine blocks held for the endpoint (its bridge size), `ttlMs` drops an
 * engine block not stored again for that long. Oldest first; null = no limit. Off unless configured.
 */
export interface StoreBound {
  maxBlocks: number | null;
  ttlMs: number | null;
}

/**
 * Store order of one endpoint's engine keys: a FIFO of (key, sequence, time) plus each key's latest sequence. A store
 * of a key already queued appends it again and the older record becomes stale (skipped when it reaches the head);
 * the queue is compacted when stale records outnumber live ones, so it stays within ~2× the keys held.
 */
export class StoreAges {
  private readonly latest = new U64Table(1);
  private lo = new Uint32Array(64);
  private hi = new Uint32Array(64);
  private seqs = new Uint32Array(64);
  private at = new Float64Array(64);
  private head = 0;
  private tail = 0;
  private nextSeq = 1;

  constructor(readonly bound: StoreBound) {}

  get byteLength(): number {
    return this.latest.byteLength + this.lo.length * 20;
  }

  /** A store of the engine key at time `now` (ms). */
  touch(lo: number, hi: number, now: number): void {
    if (this.nextSeq === 0xffffffff) this.compact(true);
    const seq = this.nextSeq++;
    const slot = this.latest.insert(lo, hi);
    this.latest.data[this.latest.valueAt(slot)] = seq;
    if (this.tail === this.lo.length) this.compact(false);
    this.lo[this.tail] = lo;
    this.hi[this.tail] = hi;
    this.seqs[this.tail] = seq;
    this.at[this.tail] = now;
    this.tail++;
  }

  /** The bridge forgot the key (removed everywhere): its queued records become stale. */
  forget(lo: number, hi: number): void {
    const slot = this.latest.find(lo, hi);
    if (slot >= 0) this.latest.delete(slot);
  }

  /**
   * The oldest live key that the bound says must go now, given the endpoint's held engine blocks; it is dequeued
   * (the caller drops it, then calls forget()). Null when nothing must go.
   */
  nextToDrop(held: number, now: number, out: { lo: number; hi: number }): boolean {
    const { maxBlocks, ttlMs } = this.bound;
    while (this.head < this.tail) {
      const i = this.head;
      const slot = this.latest.find(this.lo[i], this.hi[i]);
      if (slot < 0 || this.latest.data[this.latest.valueAt(slot)] !== this.seqs[i]) {
        this.head++; // stale: stored again later, or forgotten
        continue;
      }
      const over = maxBlocks !== null && held > maxBlocks;
      const expired = ttlMs !== null && this.at[i] <= now - ttlMs;
      if (!over && !expired) return false;
      out.lo = this.lo[i];
      out.hi = this.hi[i];
      this.head++;
      return true;
    }
    return false;
  }

  clear(): void {
    this.latest.clear();
    this.head = this.tail = 0;
  }

  /** Drops stale records (and makes room); `renumber` also restarts the sequence numbers. */
  private compact(renumber: boolean): void {
    let w = 0;
    for (let i = this.head; i < this.tail; i++) {
      const slot = this.latest.find(this.lo[i], this.hi[i]);
      if (slot < 0 || this.latest.data[this.latest.valueAt(slot)] !== this.seqs[i]) continue;
      this.lo[w] = this.lo[i];
      this.hi[w] = this.hi[i];
      this.seqs[w] = renumber ? w + 1 : this.seqs[i];
      if (renumber) this.latest.data[this.latest.valueAt(slot)] = w + 1;
      this.at[w] = this.at[i];
      w++;
    }
    this.head = 0;
    this.tail = w;
    if (renumber) this.nextSeq = w + 1;
    if (w * 2 > this.lo.length) {
      const grow = <T extends Uint32Array | Float64Array>(a: T): T => {
        const b = new (a.constructor as new (n: number) => T)(a.length * 2);
        b.set(a.subarray(0, w));
        return b;
      };
      this.lo = grow(this.lo);
      this.hi = grow(this.hi);
      this.seqs = grow(this.seqs);
      this.at = grow(this.at);
    }
  }
}

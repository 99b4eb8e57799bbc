import type { KeySink } from './engine-key-map.js';

/** A reusable growable list of request keys, so that each event makes one index call. */
export class KeyScratch implements KeySink {
  private buf = new BigUint64Array(256);
  private halves = new Uint32Array(this.buf.buffer);
  length = 0;

  begin(): this {
    this.length = 0;
    return this;
  }

  pushHalves(lo: number, hi: number): void {
    if (this.length === this.buf.length) this.grow(this.length + 1);
    this.halves[this.length * 2] = lo;
    this.halves[this.length * 2 + 1] = hi;
    this.length++;
  }

  pushKeys(keys: BigUint64Array): void {
    if (this.length + keys.length > this.buf.length) this.grow(this.length + keys.length);
    this.buf.set(keys, this.length);
    this.length += keys.length;
  }

  /** A view valid until the next begin(); the index copies what it keeps. */
  keys(): BigUint64Array {
    return this.buf.subarray(0, this.length);
  }

  private grow(needed: number): void {
    const next = new BigUint64Array(Math.max(this.buf.length * 2, needed));
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.halves = new Uint32Array(next.buffer);
  }
}

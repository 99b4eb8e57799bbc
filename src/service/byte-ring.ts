/**
 * A single-producer, single-consumer ring of byte regions in a SharedArrayBuffer, for the request and response bodies
 * between the main thread and the index thread. A body written here travels as two numbers in its message instead of
 * a transferred ArrayBuffer of its own: one ArrayBuffer per call (external memory) made the main thread's scavenges
 * 3–4× longer and its mark-compacts frequent (bench/spike/thread-gc.ts). Regions are consumed in the order they were
 * written, since the messages that name them arrive in order and each is copied out as its message is handled.
 *
 * Counters are byte totals modulo 2^32; the capacity is a power of two, so a total maps to an offset by a mask.
 */
export class ByteRing {
  private readonly bytes: Uint8Array;
  /** [0]: bytes released by the consumer (its running total). */
  private readonly released: Int32Array;
  private readonly mask: number;
  /** Producer side: bytes written (running total, with wrap padding). */
  private written = 0;

  private constructor(
    readonly buffer: SharedArrayBuffer,
    readonly control: SharedArrayBuffer,
  ) {
    this.bytes = new Uint8Array(buffer);
    this.released = new Int32Array(control);
    this.mask = buffer.byteLength - 1;
  }

  /** A new ring of `capacity` bytes (a power of two). */
  static create(capacity: number): ByteRing {
    if (capacity < 1024 || (capacity & (capacity - 1)) !== 0)
      throw new Error(`ring capacity ${capacity}: not a power of two ≥ 1024`);
    return new ByteRing(new SharedArrayBuffer(capacity), new SharedArrayBuffer(4));
  }

  /** The other thread's handle on the same ring. */
  static attach(shared: { buffer: SharedArrayBuffer; control: SharedArrayBuffer }): ByteRing {
    return new ByteRing(shared.buffer, shared.control);
  }

  get shared(): { buffer: SharedArrayBuffer; control: SharedArrayBuffer } {
    return { buffer: this.buffer, control: this.control };
  }

  /**
   * Producer: copies `body` into the ring; returns its region's end (the total to release once read), or -1 when
   * the ring has no room (the consumer is far behind, or the body is over a quarter of the ring): send it otherwise.
   */
  write(body: Uint8Array): number {
    const n = body.byteLength;
    const capacity = this.mask + 1;
    if (n > capacity >>> 2) return -1;
    let at = this.written;
    let offset = at & this.mask;
    if (offset + n > capacity) {
      at = (at + (capacity - offset)) >>> 0; // the tail of the ring is skipped: the body never wraps
      offset = 0;
    }
    const end = (at + n) >>> 0;
    const used = (end - (Atomics.load(this.released, 0) >>> 0)) >>> 0;
    if (used > capacity) return -1;
    this.bytes.set(body, offset);
    this.written = end;
    return end;
  }

  /** Consumer: a copy of the region of `length` bytes ending at `end`, and the region released. */
  read(end: number, length: number): Buffer {
    const offset = ((end - length) >>> 0) & this.mask;
    const out = Buffer.allocUnsafe(length); // pooled for small bodies: no ArrayBuffer of its own
    out.set(this.bytes.subarray(offset, offset + length));
    Atomics.store(this.released, 0, end | 0);
    return out;
  }
}

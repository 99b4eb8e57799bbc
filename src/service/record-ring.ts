/**
 * A single-producer, single-consumer ring of records in a SharedArrayBuffer: the calls from the main thread to the
 * index thread, and their replies back. The records carry everything a call needs (its id, operation, deadline,
 * caller and body), and the consumer learns of new ones through `Atomics.waitAsync` on the published total, so a call
 * costs no MessagePort message either way: a message per call each way, with its object cloned on both sides, cost
 * ~40 µs of CPU per call at 5,000/s against ~28 µs through a ring (bench/spike/handoff.mjs, docs/read-path-spike.md
 * §7), and an ArrayBuffer of its own per body made the main thread's collections several times longer
 * (bench/spike/thread-gc.ts).
 *
 * A record is a 4-byte little-endian payload length and the payload, padded to 8 bytes; a record never wraps: when
 * one does not fit before the end of the ring, a SKIP marker sends the consumer back to offset 0. Totals (bytes
 * written, published, released) count modulo 2^32; the capacity is a power of two, so a total maps to an offset by a
 * mask.
 */

/** Slots of the control array. */
const RELEASED = 0;
const PUBLISHED = 1;
const CLOSED = 2;
/** 1 while the consumer waits for a record: only then does publish() pay for a notify (~3 µs). */
const WAITING = 3;
/** Marks the unused end of the ring before a record that starts again at offset 0. */
const SKIP = 0xffffffff;
const HEADER = 4;

const padded = (payload: number) => (HEADER + payload + 7) & ~7;

export interface SharedRing {
  buffer: SharedArrayBuffer;
  control: SharedArrayBuffer;
}

export class RecordRing {
  /** The ring's bytes (a Buffer over the shared memory: payloads are written and read in place). */
  readonly bytes: Buffer;
  readonly view: DataView;
  private readonly control: Int32Array;
  private readonly mask: number;
  /** Producer: bytes published so far (running total); the reserved record's end until it is published. */
  private written = 0;
  private reserved = -1;
  /** Consumer: bytes consumed so far (running total), and what `consume` hands the records to. */
  private consumed = 0;
  private consumer: ((offset: number, length: number) => void) | null = null;

  private constructor(
    readonly buffer: SharedArrayBuffer,
    private readonly controlBuffer: SharedArrayBuffer,
  ) {
    this.bytes = Buffer.from(buffer);
    this.view = new DataView(buffer);
    this.control = new Int32Array(controlBuffer);
    this.mask = buffer.byteLength - 1;
  }

  /** A new ring of `capacity` bytes (a power of two). */
  static create(capacity: number): RecordRing {
    if (capacity < 1024 || (capacity & (capacity - 1)) !== 0)
      throw new Error(`ring capacity ${capacity}: not a power of two ≥ 1024`);
    return new RecordRing(new SharedArrayBuffer(capacity), new SharedArrayBuffer(4 * 4));
  }

  /** The other thread's handle on the same ring. */
  static attach(shared: SharedRing): RecordRing {
    return new RecordRing(shared.buffer, shared.control);
  }

  get shared(): SharedRing {
    return { buffer: this.buffer, control: this.controlBuffer };
  }

  /**
   * Producer: room for a record of `length` payload bytes. Returns the payload's offset in `bytes`/`view`, to be
   * written and then `publish`ed, or -1 when the ring has no room (the consumer is far behind, or the record is over a
   * quarter of the ring): the caller sends it another way.
   */
  reserve(length: number): number {
    const size = padded(length);
    const capacity = this.mask + 1;
    if (size > capacity >>> 2) return -1;
    let at = this.written;
    let offset = at & this.mask;
    const skip = offset + size > capacity ? capacity - offset : 0;
    const end = (at + skip + size) >>> 0;
    if ((end - (Atomics.load(this.control, RELEASED) >>> 0)) >>> 0 > capacity) return -1;
    if (skip > 0) {
      // Beyond what is published, in space the consumer has released: it reads the marker only after publish().
      this.view.setUint32(offset, SKIP, true);
      at = (at + skip) >>> 0;
      offset = 0;
    }
    this.view.setUint32(offset, length, true);
    this.reserved = end;
    return offset + HEADER;
  }

  /** Producer: makes the reserved record visible to the consumer and wakes it if it waits. */
  publish(): void {
    if (this.reserved < 0) throw new Error('RecordRing.publish without a reserved record');
    this.written = this.reserved;
    this.reserved = -1;
    Atomics.store(this.control, PUBLISHED, this.written | 0);
    // Sequentially consistent: either this load sees the consumer's WAITING, or its wait sees this PUBLISHED.
    if (Atomics.load(this.control, WAITING) === 1) Atomics.notify(this.control, PUBLISHED);
  }

  /**
   * Consumer: hands every record published since the last drain to `each` (payload offset and length), in order, and
   * releases their space when it returns: `each` copies what it keeps. Returns how many records there were.
   */
  drain(each: (offset: number, length: number) => void): number {
    const published = Atomics.load(this.control, PUBLISHED) >>> 0;
    let n = 0;
    try {
      while (this.consumed !== published) {
        const offset = this.consumed & this.mask;
        const length = this.view.getUint32(offset, true);
        if (length === SKIP) {
          this.consumed = (this.consumed + (this.mask + 1 - offset)) >>> 0;
          continue;
        }
        this.consumed = (this.consumed + padded(length)) >>> 0;
        n++;
        each(offset + HEADER, length);
      }
    } finally {
      Atomics.store(this.control, RELEASED, this.consumed | 0);
    }
    return n;
  }

  /**
   * Consumer: drains now and again whenever records are published, until the ring is closed (a last drain then
   * takes what was published before). The waits do not keep the process alive.
   */
  consume(each: (offset: number, length: number) => void): void {
    this.consumer = each;
    const take = () => {
      this.drain(each);
      if (!this.closed) this.whenPublished(take);
    };
    take();
  }

  /** Calls `then` once a record is published beyond those drained (soon, if one already is), or the ring is closed. */
  private whenPublished(then: () => void): void {
    Atomics.store(this.control, WAITING, 1);
    const waited = Atomics.waitAsync(this.control, PUBLISHED, this.consumed | 0);
    if (!waited.async) {
      Atomics.store(this.control, WAITING, 0);
      return queueMicrotask(then);
    }
    let called = false;
    const once = () => {
      if (called) return;
      called = true;
      Atomics.store(this.control, WAITING, 0);
      then();
    };
    void waited.value.then(once);
    // Closed between consume's check and the wait: its notify found no waiter.
    if (this.closed) queueMicrotask(once);
  }

  /**
   * Either side: no more records. On the consuming handle, what was published is drained at once (before the caller
   * goes on, e.g. to fail the calls still waiting); a consumer waiting in `consume` is woken and stops.
   */
  close(): void {
    Atomics.store(this.control, CLOSED, 1);
    Atomics.notify(this.control, PUBLISHED);
    if (this.consumer) this.drain(this.consumer);
  }

  get closed(): boolean {
    return Atomics.load(this.control, CLOSED) === 1;
  }
}

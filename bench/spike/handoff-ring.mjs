// Spike (issue 16): a single-producer single-consumer byte ring in a SharedArrayBuffer, for handing Score calls to
// another thread without a MessagePort message per call. Header (Int32): head (consumer's offset), tail (producer's
// offset), seq (bumped per write: what a sleeping consumer waits on), stop. Each message is a 4-byte length then its
// bytes, padded to 4; a length of -1 means "wrapped: continue at 0". Plain writes of a message happen before the
// Atomics.store of the tail that publishes it, so a consumer that Atomics.loads the tail sees the whole message.
const HEAD = 0;
const TAIL = 1;
const SEQ = 2;
const STOP = 3;
const HEADER_BYTES = 16;
const WRAP = -1;

export function newRing(capacity) {
  return { sab: new SharedArrayBuffer(HEADER_BYTES + capacity) };
}

function views(ring) {
  const sab = ring.sab ?? ring;
  const capacity = sab.byteLength - HEADER_BYTES;
  return {
    header: new Int32Array(sab, 0, 4),
    bytes: new Uint8Array(sab, HEADER_BYTES, capacity),
    words: new Int32Array(sab, HEADER_BYTES, capacity / 4),
    capacity,
  };
}

const padded = (n) => (n + 3) & ~3;

export class RingWriter {
  constructor(ring) {
    Object.assign(this, views(ring));
  }

  /** Appends one message and wakes the consumer; false when the ring is full (the caller answers UNAVAILABLE). */
  write(message) {
    const need = 4 + padded(message.length);
    const head = Atomics.load(this.header, HEAD);
    let tail = this.header[TAIL];
    const free = (head - tail - 4 + this.capacity) % this.capacity;
    const wrap = tail + need > this.capacity;
    if ((wrap ? this.capacity - tail + need : need) > free) return false;
    if (wrap) {
      this.words[tail >> 2] = WRAP;
      tail = 0;
    }
    this.words[tail >> 2] = message.length;
    this.bytes.set(message, tail + 4);
    Atomics.store(this.header, TAIL, (tail + need) % this.capacity);
    Atomics.add(this.header, SEQ, 1);
    Atomics.notify(this.header, SEQ);
    return true;
  }

  stop() {
    Atomics.store(this.header, STOP, 1);
    Atomics.add(this.header, SEQ, 1);
    Atomics.notify(this.header, SEQ);
  }
}

export class RingReader {
  constructor(ring) {
    Object.assign(this, views(ring));
  }

  /** Hands every published message to `deliver` (a view valid until `deliver` returns); how many. */
  drain(deliver) {
    const tail = Atomics.load(this.header, TAIL);
    let head = this.header[HEAD];
    let n = 0;
    while (head !== tail) {
      const length = this.words[head >> 2];
      if (length === WRAP) {
        head = 0;
        continue;
      }
      deliver(this.bytes.subarray(head + 4, head + 4 + length));
      head = (head + 4 + padded(length)) % this.capacity;
      n++;
    }
    Atomics.store(this.header, HEAD, head);
    return n;
  }

  /** A thread without an event loop to keep: sleeps in Atomics.wait until written to or stopped. */
  serveBlocking(deliver) {
    for (;;) {
      const seq = Atomics.load(this.header, SEQ);
      this.drain(deliver);
      if (Atomics.load(this.header, STOP)) return;
      Atomics.wait(this.header, SEQ, seq);
    }
  }

  /** The main thread: waits with Atomics.waitAsync, so its event loop keeps running. */
  onMessages(deliver) {
    const loop = async () => {
      for (;;) {
        const seq = Atomics.load(this.header, SEQ);
        this.drain(deliver);
        if (Atomics.load(this.header, STOP)) return;
        const waited = Atomics.waitAsync(this.header, SEQ, seq);
        if (waited.async) await waited.value;
      }
    };
    void loop();
  }

  stop() {
    Atomics.store(this.header, STOP, 1);
    Atomics.add(this.header, SEQ, 1);
    Atomics.notify(this.header, SEQ);
  }
}

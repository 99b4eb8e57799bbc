import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { OPERATION_PATHS } from '../../../src/api/index.js';
import { RecordRing } from '../../../src/service/record-ring.js';
import { readCall, readReply, writeCall, writeFailure, writeReply } from '../../../src/service/thread-protocol.js';

const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 255);

/** Writes `payload` as one record; false when the ring refuses it. */
function put(ring: RecordRing, payload: Uint8Array): boolean {
  const at = ring.reserve(payload.byteLength);
  if (at < 0) return false;
  ring.bytes.set(payload, at);
  ring.publish();
  return true;
}

/** Lets the event loop turn (the consumer's wake-up is a task) until `done`, at most 1,000 turns. */
async function turnsUntil(done: () => boolean): Promise<void> {
  for (let i = 0; i < 1_000 && !done(); i++) await new Promise((r) => setImmediate(r));
}

/** Every record published since the last drain, copied. */
function take(ring: RecordRing): Buffer[] {
  const out: Buffer[] = [];
  ring.drain((at, length) => out.push(Buffer.from(ring.bytes.subarray(at, at + length))));
  return out;
}

describe('RecordRing: calls and replies between the main thread and the index thread', () => {
  it('hands records over in order through a second handle, a record that does not fit the end starting at 0', () => {
    const producer = RecordRing.create(1024);
    const consumer = RecordRing.attach(producer.shared);
    // Records of 250 and 200 bytes take 256 and 208 with header and padding. Three (720 bytes) are drained at a time;
    // the ring's end keeps coming up short of a whole record, which then starts at 0 behind a skip marker.
    const sent: Buffer[] = [];
    const got: Buffer[] = [];
    for (let i = 0; i < 12; i++) {
      const body = bytes(i % 2 === 0 ? 250 : 200, i);
      expect(put(producer, body)).toBe(true);
      sent.push(Buffer.from(body));
      if (i % 3 === 2) got.push(...take(consumer));
    }
    expect(got.map((b) => b.length)).toEqual([250, 200, 250, 200, 250, 200, 250, 200, 250, 200, 250, 200]);
    expect(got.every((b, k) => Buffer.compare(b, sent[k]) === 0)).toBe(true);
    expect(take(consumer)).toEqual([]);
  });

  it('refuses a record when the consumer is a ring behind, and takes it once the consumer has drained', () => {
    const producer = RecordRing.create(1024);
    const consumer = RecordRing.attach(producer.shared);
    // 252 bytes of payload + 4 of header: four records fill the ring exactly.
    for (let i = 0; i < 4; i++) expect(put(producer, bytes(252, i))).toBe(true);
    expect(put(producer, bytes(1, 9))).toBe(false); // full: nothing drained yet
    expect(take(consumer).map((b) => [...b.subarray(0, 3)])).toEqual([
      [0, 31, 62],
      [1, 32, 63],
      [2, 33, 64],
      [3, 34, 65],
    ]);
    expect(put(producer, bytes(252, 4))).toBe(true); // the space drained is reused
    expect(take(consumer).map((b) => b[0])).toEqual([4]);
  });

  it('refuses a record over a quarter of the ring (the caller sends it as a message)', () => {
    const ring = RecordRing.create(1024);
    expect(ring.reserve(253)).toBe(-1); // 4 + 253, padded: 264 > 256
    expect(ring.reserve(252)).toBe(4);
  });

  it('keeps counting past 2^32 bytes (totals wrap, offsets stay right)', () => {
    const producer = RecordRing.create(1 << 20);
    const consumer = RecordRing.attach(producer.shared);
    const body = Buffer.from(bytes(200_000, 7));
    let records = 0;
    for (let i = 0; i < 22_000; i++) {
      expect(put(producer, body)).toBe(true);
      const got = take(consumer);
      records += got.length;
      if (i % 5_000 === 0 || i > 21_990) expect(Buffer.compare(got[0], body)).toBe(0);
    }
    // 22,000 records of 200,008 bytes, plus a skipped end of ring every five: ~4.4 GB, past 2^32.
    expect(records).toBe(22_000);
  });

  it('wakes a waiting consumer on another thread when a record is published, and when the ring is closed', async () => {
    const producer = RecordRing.create(1024);
    // The consumer's side of consume (wait, then drain), in plain JS: the worker does not load TypeScript.
    const worker = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads');
       const control = new Int32Array(workerData.control);
       const view = new DataView(workerData.buffer);
       let consumed = 0;
       const wait = () => {
         Atomics.store(control, 3, 1); // waiting: the producer notifies
         const w = Atomics.waitAsync(control, 1, consumed);
         // Closed before the wait was armed: its notify found no waiter (as RecordRing.whenPublished checks).
         const closedAlready = Atomics.load(control, 2) === 1;
         (w.async && !closedAlready ? w.value : Promise.resolve()).then(() => {
           if (Atomics.load(control, 2) === 1) return parentPort.postMessage({ closed: true });
           parentPort.postMessage({ length: view.getUint32(consumed, true), first: view.getUint8(consumed + 4) });
           consumed = Atomics.load(control, 1);
           Atomics.store(control, 0, consumed);
           wait();
         });
       };
       wait();
       parentPort.on('message', () => {}); // a pending wait does not keep a thread alive; its port does
       parentPort.postMessage({ waiting: true });`,
      { eval: true, workerData: producer.shared },
    );
    const next = () => new Promise<object>((resolve) => worker.once('message', (m: object) => resolve(m)));
    const messages: object[] = [await next()];
    const woke = next();
    put(producer, bytes(10, 42));
    messages.push(await woke);
    const closed = next();
    producer.close();
    messages.push(await closed);
    await worker.terminate();
    expect(messages).toEqual([{ waiting: true }, { length: 10, first: 42 }, { closed: true }]);
  });

  it('consume takes what is there at once, what is published later when it comes, and the rest at close', async () => {
    const producer = RecordRing.create(1024);
    const consumer = RecordRing.attach(producer.shared);
    put(producer, bytes(3, 1));
    const got: number[] = [];
    consumer.consume((at, length) => got.push(consumer.bytes[at], length));
    expect(got).toEqual([1, 3]); // at once, before consume returns
    put(producer, bytes(5, 2));
    await turnsUntil(() => got.length === 4);
    expect(got).toEqual([1, 3, 2, 5]);
    put(producer, bytes(2, 7));
    consumer.close(); // on the consuming handle: what was published is taken before close returns
    expect(got).toEqual([1, 3, 2, 5, 7, 2]);
    expect(consumer.closed).toBe(true);
  });

  it("a producer's close wakes a waiting consumer, which takes what was left", async () => {
    const producer = RecordRing.create(1024);
    const consumer = RecordRing.attach(producer.shared);
    const got: number[] = [];
    consumer.consume((at) => got.push(consumer.bytes[at]));
    expect(got).toEqual([]);
    put(producer, bytes(4, 9));
    producer.close();
    await turnsUntil(() => got.length === 1);
    expect(got).toEqual([9]);
  });

  it('wants a power of two of at least 1 KiB', () => {
    expect(() => RecordRing.create(1000)).toThrow('ring capacity 1000: not a power of two ≥ 1024');
    expect(() => RecordRing.create(512)).toThrow('not a power of two ≥ 1024');
  });
});

describe('thread protocol records', () => {
  it('carries a call: id, operation, deadline (or none), caller and body', () => {
    const ring = RecordRing.create(4096);
    const body = bytes(300, 5);
    expect(writeCall(ring, 4_294_967_295, '/kvindexer.v1.KvIndexer/Score', Infinity, '::ffff:127.0.0.1', body)).toBe(
      true,
    );
    const last = OPERATION_PATHS[OPERATION_PATHS.length - 1];
    expect(writeCall(ring, 7, last, 1_764_000_000_123.5, '', bytes(0, 0))).toBe(true);
    const calls: ReturnType<typeof readCall>[] = [];
    ring.drain((at, length) => calls.push(readCall(ring, at, length)));
    expect(calls.map(({ body: b, ...rest }) => ({ ...rest, head: [...b.subarray(0, 3)], length: b.length }))).toEqual([
      {
        id: 4_294_967_295,
        path: '/kvindexer.v1.KvIndexer/Score',
        deadlineMs: Infinity,
        caller: '::ffff:127.0.0.1',
        head: [5, 36, 67],
        length: 300,
      },
      {
        id: 7,
        path: '/indexer.v1.IndexerService/GetPodScores',
        deadlineMs: 1_764_000_000_123.5,
        caller: '',
        head: [],
        length: 0,
      },
    ]);
    expect(Buffer.compare(calls[0].body, Buffer.from(body))).toBe(0);
  });

  it('leaves to the message path what a record cannot carry: an unknown path, a caller not latin1 or too long', () => {
    const ring = RecordRing.create(4096);
    expect(writeCall(ring, 1, '/x.Y/Z', Infinity, '', bytes(1, 1))).toBe(false);
    expect(writeCall(ring, 1, OPERATION_PATHS[0], Infinity, 'caller-\u4e00', bytes(1, 1))).toBe(false);
    expect(writeCall(ring, 1, OPERATION_PATHS[0], Infinity, 'a'.repeat(256), bytes(1, 1))).toBe(false);
    expect(writeCall(ring, 1, OPERATION_PATHS[0], Infinity, 'a'.repeat(255), bytes(1, 1))).toBe(true);
  });

  it('carries replies: a body, or a status with UTF-8 details', () => {
    const ring = RecordRing.create(4096);
    expect(writeReply(ring, 3, bytes(40, 9))).toBe(true);
    expect(writeFailure(ring, 4, 3, 'model «m» unknown')).toBe(true);
    expect(writeReply(ring, 5, bytes(2000, 1))).toBe(false); // over a quarter of the ring
    const replies: ReturnType<typeof readReply>[] = [];
    ring.drain((at, length) => replies.push(readReply(ring, at, length)));
    expect(replies).toEqual([
      { id: 3, body: Buffer.from(bytes(40, 9)) },
      { id: 4, code: 3, details: 'model «m» unknown' },
    ]);
  });
});

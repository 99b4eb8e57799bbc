import { describe, expect, it } from 'vitest';
import { ByteRing } from '../../../src/service/byte-ring.js';
import { receiveBody, sendBody } from '../../../src/service/thread-protocol.js';

const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 255);

describe('ByteRing: bodies between the main thread and the index thread', () => {
  it('hands bodies over in order through a second handle on the same memory, wrapping without splitting one', () => {
    const producer = ByteRing.create(1024);
    const consumer = ByteRing.attach(producer.shared);
    // 300-byte bodies: the fourth cannot fit the 124 bytes left at the end, so it starts again at offset 0.
    for (let i = 0; i < 12; i++) {
      const body = bytes(i % 2 === 0 ? 250 : 200, i);
      const end = producer.write(body);
      expect(end).toBeGreaterThan(0);
      const got = consumer.read(end, body.length);
      expect(Buffer.compare(got, Buffer.from(body))).toBe(0);
    }
  });

  it('refuses a body when the consumer is a ring behind, and takes it once the consumer has read', () => {
    const producer = ByteRing.create(1024);
    const consumer = ByteRing.attach(producer.shared);
    const ends = [0, 1, 2, 3].map((i) => producer.write(bytes(256, i)));
    expect(ends).toEqual([256, 512, 768, 1024]);
    expect(producer.write(bytes(1, 9))).toBe(-1); // full: nothing read yet
    expect([...consumer.read(256, 256).subarray(0, 3)]).toEqual([0, 31, 62]);
    expect(producer.write(bytes(256, 4))).toBe(1280); // the region read is reused
    expect(producer.write(bytes(1, 5))).toBe(-1);
  });

  it('refuses a body over a quarter of the ring; sendBody then puts it in the message, receiveBody takes either', () => {
    const ring = ByteRing.create(1024);
    expect(ring.write(bytes(257, 1))).toBe(-1);
    const [inMessage, transfer] = sendBody(ring, bytes(300, 2));
    expect('bytes' in inMessage).toBe(true);
    expect(transfer).toHaveLength(1);
    expect(Buffer.compare(receiveBody(ring, inMessage), Buffer.from(bytes(300, 2)))).toBe(0);
    const [inRing, none] = sendBody(ring, bytes(100, 3));
    expect(inRing).toEqual({ end: 100, length: 100 });
    expect(none).toEqual([]);
    expect(Buffer.compare(receiveBody(ring, inRing), Buffer.from(bytes(100, 3)))).toBe(0);
  });

  it('keeps counting past 2^32 bytes (totals wrap, offsets stay right)', () => {
    const producer = ByteRing.create(1 << 20);
    const consumer = ByteRing.attach(producer.shared);
    const body = bytes(200_000, 7);
    let last = 0;
    for (let i = 0; i < 22_000; i++) {
      const end = producer.write(body);
      expect(end).toBeGreaterThanOrEqual(0);
      if (i % 5_000 === 0 || i > 21_990)
        expect(Buffer.compare(consumer.read(end, body.length), Buffer.from(body))).toBe(0);
      else consumer.read(end, body.length);
      last = end;
    }
    // Five bodies fill a 1 MiB ring, the 48,576 bytes left are skipped: the 22,000th body ends 1,000,000 bytes into the
    // 4,400th round, a total past 2^32 that has wrapped.
    expect(last).toBe((4_399 * 2 ** 20 + 1_000_000) % 2 ** 32);
    expect(last).toBe(318_718_528);
  });

  it('wants a power of two of at least 1 KiB', () => {
    expect(() => ByteRing.create(1000)).toThrow('ring capacity 1000: not a power of two ≥ 1024');
    expect(() => ByteRing.create(512)).toThrow('not a power of two ≥ 1024');
  });
});

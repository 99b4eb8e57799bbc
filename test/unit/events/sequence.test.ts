import { describe, expect, it } from 'vitest';
import { classifySeq } from '../../../src/events/wire/sequence.js';
import { parseReplyFrames } from '../../../src/events/wire/replay-protocol.js';
import { BoundedQueue, Limiter } from '../../../src/events/bounded-queue.js';

const seq = (n: bigint | number) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
};

describe('sequence rules per (endpoint, rank)', () => {
  const state = { last: 10n, lastTs: 100 };
  it.each([
    [{ last: null, lastTs: -Infinity }, 0n, 1, 'first'],
    [{ last: null, lastTs: -Infinity }, 7n, 1, 'join'],
    [state, 11n, 101, 'apply'],
    [state, 12n, 101, 'gap'],
    [state, 10n, 100, 'duplicate'],
    [state, 3n, 50, 'duplicate'],
    [state, 0n, 100, 'duplicate'],
    [state, 0n, 100.5, 'restart'],
    [state, 4n, 120, 'restart'],
    [{ last: 5_000_000n, lastTs: 100 }, 3n, 50, 'restart'],
  ] as const)('%o seq %s ts %s → %s', (s, n, ts, verdict) => {
    expect(classifySeq(s, n, ts, 1_000_000n)).toBe(verdict);
  });
});

describe('replay reply layouts', () => {
  const payload = Buffer.from([0x93, 0x00, 0x90, 0xc0]);
  it('reads the old layout [seq, payload] with and without the delimiter', () => {
    expect(parseReplyFrames([Buffer.alloc(0), seq(5), payload])).toEqual({
      kind: 'batch',
      reply: { seq: 5n, payload, topic: null },
    });
    expect(parseReplyFrames([seq(6), payload])).toEqual({ kind: 'batch', reply: { seq: 6n, payload, topic: null } });
  });
  it('reads the new layout [topic, seq, payload]', () => {
    expect(parseReplyFrames([Buffer.alloc(0), Buffer.from('kv@a:1@m'), seq(2n ** 63n), payload])).toEqual({
      kind: 'batch',
      reply: { seq: 2n ** 63n, payload, topic: 'kv@a:1@m' },
    });
  });
  it('detects the end marker in both layouts by the empty last frame', () => {
    const end = Buffer.alloc(8, 0xff);
    expect(parseReplyFrames([Buffer.alloc(0), end, Buffer.alloc(0)])).toEqual({ kind: 'end' });
    expect(parseReplyFrames([Buffer.alloc(0), Buffer.from('kv@a:1@m'), end, Buffer.alloc(0)])).toEqual({ kind: 'end' });
  });
  it('rejects short sequence frames and wrong frame counts', () => {
    expect(parseReplyFrames([Buffer.alloc(0), Buffer.alloc(7, 1), payload]).kind).toBe('bad');
    expect(parseReplyFrames([Buffer.alloc(0), Buffer.from('t'), seq(1), payload, payload]).kind).toBe('bad');
    expect(parseReplyFrames([]).kind).toBe('bad');
  });
});

describe('bounded queue and limiter', () => {
  it('refuses beyond capacity and keeps FIFO order across compaction', () => {
    const q = new BoundedQueue<number>(3000);
    for (let i = 0; i < 3000; i++) expect(q.push(i)).toBe(true);
    expect(q.push(3000)).toBe(false);
    for (let i = 0; i < 2000; i++) expect(q.shift()).toBe(i);
    for (let i = 3000; i < 5000; i++) expect(q.push(i)).toBe(true);
    expect(q.length).toBe(3000);
    const rest: number[] = [];
    for (let x = q.shift(); x !== undefined; x = q.shift()) rest.push(x);
    expect(rest).toEqual(Array.from({ length: 3000 }, (_, i) => 2000 + i));
  });
  it('limits concurrency', async () => {
    const l = new Limiter(2);
    await l.acquire();
    await l.acquire();
    let third = false;
    const p = l.acquire().then(() => (third = true));
    await Promise.resolve();
    expect(third).toBe(false);
    l.release();
    await p;
    expect(third).toBe(true);
    expect(l.inUse).toBe(2);
  });
});

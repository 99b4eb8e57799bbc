import { describe, expect, it } from 'vitest';
import { KeySchema } from '../../../src/index/index.js';
import { WriteBuffer } from '../../../src/index/redis/write-buffer.js';
import { keys } from './helpers.js';

const raw = (...v: number[]) => new Uint8Array(keys(...v).buffer);

describe('Redis index write buffer', () => {
  it('keeps writes in call order and copies the keys', () => {
    const buf = new WriteBuffer(100, () => undefined);
    const scratch = keys(1, 2);
    buf.push('a', 'e', 'GPU', scratch, 7n);
    scratch.fill(0n);
    buf.push('r', 'e', 'CPU', keys(3), undefined);
    buf.push('a', 'e', 'GPU', keys(), undefined); // nothing to write
    expect(buf.bufferedKeys).toBe(3);
    expect(buf.take()).toEqual([
      { kind: 'a', endpoint: 'e', tier: 'GPU', keys: raw(1, 2), anchor: 7n },
      { kind: 'r', endpoint: 'e', tier: 'CPU', keys: raw(3), anchor: undefined },
    ]);
    expect([buf.size, buf.bufferedKeys]).toEqual([0, 0]);
  });

  it('lets a clear supersede the endpoint’s earlier buffered writes only', () => {
    const buf = new WriteBuffer(100, () => undefined);
    buf.push('a', 'x', 'GPU', keys(1), undefined);
    buf.push('a', 'y', 'GPU', keys(2), undefined);
    buf.clear('x');
    buf.push('a', 'x', 'GPU', keys(3), undefined);
    expect(buf.take().map((o) => [o.kind, o.endpoint])).toEqual([
      ['a', 'y'],
      ['c', 'x'],
      ['a', 'x'],
    ]);
  });

  it('on overflow drops the endpoint’s writes, reports it once, and ignores it until the next take', () => {
    const reported: string[] = [];
    const buf = new WriteBuffer(4, (e) => reported.push(e));
    buf.push('a', 'x', 'GPU', keys(1, 2), undefined);
    buf.push('a', 'y', 'GPU', keys(1), undefined);
    buf.push('a', 'x', 'GPU', keys(3, 4), undefined); // 5 > 4
    buf.push('a', 'x', 'GPU', keys(5), undefined);
    expect(reported).toEqual(['x']);
    expect(buf.bufferedKeys).toBe(1);
    expect(buf.take().map((o) => o.endpoint)).toEqual(['y']);
    buf.push('a', 'x', 'GPU', keys(6), undefined); // a fresh batch: accepted again
    expect(buf.bufferedKeys).toBe(1);
  });

  it('checks anchors: one per key, bigint or BigUint64Array', () => {
    const buf = new WriteBuffer(10, () => undefined);
    expect(() => buf.push('a', 'x', 'GPU', keys(1, 2), keys(1))).toThrow(RangeError);
    expect(() => buf.push('a', 'x', 'GPU', keys(1), 1 as unknown as bigint)).toThrow(TypeError);
    const anchors = keys(9, 9);
    buf.push('a', 'x', 'GPU', keys(1, 2), anchors);
    anchors.fill(0n);
    expect(buf.take()[0]).toMatchObject({ anchor: keys(9, 9) });
    expect(() => new WriteBuffer(0, () => undefined)).toThrow(RangeError);
  });
});

describe('Redis key schema', () => {
  it('uses one tag under placement single and spreads anchors over tags under placement anchor', () => {
    expect(new KeySchema('p:', 'single').tagOf(123n)).toBe('0');
    const schema = new KeySchema('p:', 'anchor', 64);
    const tags = new Set<string>();
    for (let i = 0n; i < 1000n; i++) tags.add(schema.tagOf(i * 0x9e3779b97f4a7c15n));
    expect(tags.size).toBe(64);
    expect(schema.tagOfKeys(keys(5, 6))).toBe(schema.tagOf(5n));
    expect(schema.tagOf(undefined)).toBe('0');
    // An endpoint's key-set buckets are divided among the tags under placement anchor.
    expect([schema.endpointBuckets, new KeySchema('p:', 'single').endpointBuckets]).toEqual([64, 4096]);
    expect(new KeySchema('p:', 'anchor', 1024, 100).endpointBuckets).toBe(1);
    expect(schema.tagPrefix('t1')).toBe('p:{t1}');
    expect(schema.block('t1', raw(1)).toString('latin1')).toBe('p:{t1}b\x01\0\0\0\0\0\0\0');
  });

  it('rejects prefixes with hash-tag braces and bad tag counts', () => {
    expect(() => new KeySchema('a{b}', 'single')).toThrow(RangeError);
    expect(() => new KeySchema('p:', 'anchor', 0)).toThrow(RangeError);
    expect(() => new KeySchema('p:', 'anchor', 1.5)).toThrow(RangeError);
    expect(() => new KeySchema('p:', 'single', 1024, 0)).toThrow(RangeError);
  });
});

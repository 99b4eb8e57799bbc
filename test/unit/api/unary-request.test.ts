import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { callDeadline, UnaryRequest } from '../../../src/api/unary-request.js';

const prefix = (length: number, flag = 0) => {
  const head = Buffer.alloc(5);
  head[0] = flag;
  head.writeUInt32BE(length, 1);
  return head;
};
const PATH = '/kvindexer.v1.KvIndexer/Score';

describe('callDeadline', () => {
  it('keeps no timer past a timer’s range (grpc-go’s 30 days) but still a deadline; none without the header', () => {
    const before = Date.now();
    const month = callDeadline('2592000S');
    const after = Date.now();
    expect('code' in month).toBe(false);
    if ('code' in month) return;
    expect(month.timerMs).toBeNull();
    expect(month.deadlineMs).toBeGreaterThanOrEqual(before + 2_592_000_000);
    expect(month.deadlineMs).toBeLessThanOrEqual(after + 2_592_000_000);
    expect(callDeadline('50m')).toMatchObject({ timerMs: 50 });
    expect(callDeadline(undefined)).toEqual({ deadlineMs: Infinity, timerMs: null });
    expect(callDeadline('12x')).toEqual({ code: status.INTERNAL, details: 'Invalid grpc-timeout value "12x"' });
  });
});

describe('UnaryRequest', () => {
  it('assembles one message from a prefix split over chunks, copying when asked', () => {
    const request = new UnaryRequest(PATH, 100, true);
    const source = Buffer.concat([prefix(4), Buffer.from('abcd')]);
    expect(request.push(source.subarray(0, 3))).toBeNull();
    expect(request.push(source.subarray(3, 7))).toBeNull();
    expect(request.push(source.subarray(7))).toBeNull();
    source.fill(0); // the socket's buffer is reused: the copies are not
    expect(request.message()).toEqual(Buffer.from('abcd'));
  });

  it('keeps chunks as they are without copying', () => {
    const request = new UnaryRequest(PATH, 100, false);
    const body = Buffer.from('xyz');
    expect(request.push(prefix(3))).toBeNull();
    expect(request.push(body)).toBeNull();
    const message = request.message();
    expect(message).toBe(body);
  });

  it('refuses what grpc-js refuses, with its words', () => {
    expect(new UnaryRequest(PATH, 100, false).push(prefix(1, 1))).toEqual({
      code: status.UNIMPLEMENTED,
      details: 'Received a compressed message but no grpc-encoding was declared',
    });
    expect(new UnaryRequest(PATH, 100, false).push(prefix(101))).toEqual({
      code: status.RESOURCE_EXHAUSTED,
      details: 'Received message larger than max (101 vs 100)',
    });
    expect(new UnaryRequest(PATH, 100, false).push(Buffer.concat([prefix(1), Buffer.from('ab')]))).toEqual({
      code: status.UNIMPLEMENTED,
      details: `Received a second request message for unary method ${PATH}`,
    });
    const incomplete = new UnaryRequest(PATH, 100, false);
    expect(incomplete.push(Buffer.concat([prefix(4), Buffer.from('ab')]))).toBeNull();
    expect(incomplete.message()).toEqual({
      code: status.UNIMPLEMENTED,
      details: `Received no complete request message for unary method ${PATH}`,
    });
    expect(new UnaryRequest(PATH, 100, false).message()).toMatchObject({ code: status.UNIMPLEMENTED });
    const empty = new UnaryRequest(PATH, 100, false);
    expect(empty.push(prefix(0))).toBeNull();
    expect(empty.message()).toEqual(Buffer.alloc(0));
  });
});

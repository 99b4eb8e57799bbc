import { describe, expect, it } from 'vitest';
import { decodeScoreRequest } from '../../../src/api/wire/score-request.js';
import { UndecodableRequest } from '../../../src/api/wire/undecodable.js';
import { len, varint } from '../../support/protobuf-wire.js';

// The token-id reader (api/wire/token-ids.ts) through the Score decoder, with exact values. Malformed runs must give
// the messages the two-pass reader gave (recorded from it before the one-pass reader replaced it).

const noGeneric = () => {
  throw new Error('the generic decoder must not be needed here');
};
const decode = (bytes: number[]) => decodeScoreRequest(Buffer.from(bytes), noGeneric);

const packed = (ids: number[]) =>
  len(
    1,
    ids.flatMap((id) => varint(id)),
  );
const request = (tokenInput: number[]) => [...len(1, [0x6d]), ...len(6, tokenInput)];

function tokensOf(bytes: number[]): number[] {
  const msg = decode(bytes);
  if (msg instanceof UndecodableRequest) throw new Error(msg.message);
  const ids = msg.tokens!.tokenIds;
  expect(ids).toBeInstanceOf(Uint32Array);
  return Array.from(ids);
}

describe('token-id reader', () => {
  it('reads 1- to 5-byte ids of one packed run', () => {
    const ids = [0, 1, 127, 128, 16383, 16384, 151642, 2097151, 2097152, 268435455, 268435456, 4294967295];
    expect(tokensOf(request(packed(ids)))).toEqual(ids);
  });

  it('reads packed and unpacked runs in any mix, and over-long encodings', () => {
    const bytes = request([
      ...packed([5, 6]),
      0x08, // token_ids unpacked: field 1, varint
      ...varint(300),
      ...len(1, [...varint(7, 4), ...varint(8), ...varint(9, 10)]),
      0x08,
      ...varint(4294967295),
    ]);
    expect(tokensOf(bytes)).toEqual([5, 6, 300, 7, 8, 9, 4294967295]);
  });

  it('reads an empty run and no tokens at all as empty arrays', () => {
    expect(tokensOf(request(len(1, [])))).toEqual([]);
    expect(tokensOf(request([]))).toEqual([]);
  });

  it('keeps each request its own ids: a later request does not overwrite an earlier one', () => {
    const first = decode(request(packed([1, 2, 3])));
    const big = Array.from({ length: 100_000 }, (_, i) => (i * 7919) % 151_643);
    const second = decode(request(packed(big)));
    const third = decode(request(packed([4, 5])));
    expect(Array.from((first as { tokens: { tokenIds: Uint32Array } }).tokens.tokenIds)).toEqual([1, 2, 3]);
    expect(Array.from((second as { tokens: { tokenIds: Uint32Array } }).tokens.tokenIds)).toEqual(big);
    expect(Array.from((third as { tokens: { tokenIds: Uint32Array } }).tokens.tokenIds)).toEqual([4, 5]);
  });

  it('a decode that failed half-way leaves nothing behind for the next request', () => {
    expect(decode(request([...packed([1, 2]), ...len(1, [0x81])]))).toBeInstanceOf(UndecodableRequest);
    expect(tokensOf(request(packed([9])))).toEqual([9]);
  });

  const bad: [string, number[], string][] = [
    ['a run ending inside a varint', request(len(1, [1, 2, 0x81])), 'tokens.token_ids: truncated varint at byte 10'],
    ['a run of one continuation byte', request(len(1, [0x81])), 'tokens.token_ids: truncated varint at byte 8'],
    [
      'a run ending inside a 4-byte varint',
      request(len(1, [1, 0xff, 0xff, 0xff])),
      'tokens.token_ids: truncated varint at byte 11',
    ],
    [
      'a varint longer than 10 bytes in a run',
      request(len(1, [1, ...Array(10).fill(0x80), 0x01])),
      'tokens.token_ids: varint longer than 10 bytes at byte 18',
    ],
    [
      'a run longer than its message',
      request([0x0a, 0x05, 1, 2]),
      'tokens.token_ids: length 5 runs past the end of the message (2 bytes left) at byte 7',
    ],
    ['a truncated run length', request([0x0a, 0x80]), 'tokens.token_ids: truncated varint at byte 7'],
    ['a truncated unpacked id', request([...packed([1]), 0x08, 0x80]), 'tokens.token_ids: truncated varint at byte 10'],
  ];
  for (const [name, bytes, message] of bad) {
    it(`malformed: ${name}`, () => {
      expect(decode(bytes)).toEqual(new UndecodableRequest(`malformed ScoreRequest: ${message}`));
    });
  }
});

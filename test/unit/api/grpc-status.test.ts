import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { parseGrpcTimeout, percentEncode, toStatus } from '../../../src/api/grpc-status.js';
import { invalid } from '../../../src/api/errors.js';

describe('grpc-status: shared status mapping, grpc-message encoding, grpc-timeout parsing', () => {
  it('maps an IndexerError to its status and an unexpected error to a logged INTERNAL', () => {
    const logged: unknown[] = [];
    const log = { error: (obj: unknown) => logged.push(obj) };
    expect(toStatus(invalid('candidates[0]', 'bad'), '/p', log)).toEqual({
      code: status.INVALID_ARGUMENT,
      details: 'candidates[0]: bad',
    });
    expect(logged).toEqual([]);
    const err = new Error('boom');
    expect(toStatus(err, '/p', log)).toEqual({
      code: status.INTERNAL,
      details: 'internal error (logged by the server)',
    });
    expect(logged).toEqual([{ err, path: '/p' }]);
  });

  it('percent-encodes bytes outside 0x20–0x7E and % itself, as UTF-8, and decodes back', () => {
    expect(percentEncode('plain text: ok [1]')).toBe('plain text: ok [1]');
    expect(percentEncode('100% é\n')).toBe('100%25 %C3%A9%0A');
    for (const s of ['a%b', 'ü→∞ 😀', 'tab\there', '"quoted"']) expect(decodeURIComponent(percentEncode(s))).toBe(s);
  });

  it('parses grpc-timeout in every unit and rejects malformed values', () => {
    expect(parseGrpcTimeout('2H')).toBe(7_200_000);
    expect(parseGrpcTimeout('3M')).toBe(180_000);
    expect(parseGrpcTimeout('5S')).toBe(5_000);
    expect(parseGrpcTimeout('250m')).toBe(250);
    expect(parseGrpcTimeout('1500u')).toBe(1.5);
    expect(parseGrpcTimeout('2000000n')).toBe(2);
    expect(parseGrpcTimeout('99999999m')).toBe(99_999_999);
    for (const bad of ['', '5', 'S', '123456789S', '5s', '-1S', '1.5S', ' 5S'])
      expect(parseGrpcTimeout(bad)).toBeNull();
  });
});

import { describe, expect, it } from 'vitest';
import { ApiError, loadProtos } from '../../../src/api/index.js';
import { toStatus } from '../../../src/api/grpc-status.js';
import { SpeculationQuota } from '../../../src/api/speculation-quota.js';
import { endpointField, speculationRefused } from '../../../src/service/process-protocol.js';

const bytes = (...parts: (number | string)[]) =>
  new Uint8Array(parts.flatMap((p) => (typeof p === 'number' ? [p] : [...Buffer.from(p, 'utf8')])));

describe('endpointField (the key of the primary’s endpoint log)', () => {
  it('reads field 1 of AddEndpointRequest and RemoveEndpointRequest as protobuf encodes them', () => {
    const { kvIndexer } = loadProtos();
    const add = kvIndexer.AddEndpoint.requestSerialize({
      endpoint: '10.0.0.5:8000',
      zmqAddress: 'tcp://10.0.0.5:5557',
      replayAddress: 'tcp://10.0.0.5:5558',
      ranks: 2,
    });
    expect(endpointField(add)).toBe('10.0.0.5:8000');
    expect(endpointField(kvIndexer.RemoveEndpoint.requestSerialize({ endpoint: 'pod-a:8000' }))).toBe('pod-a:8000');
  });

  it('finds field 1 after other fields of every wire type, and gives null when it is absent or cut', () => {
    // field 2 (string), field 4 (varint 300), field 9 (fixed64), field 10 (fixed32), then field 1
    const message = bytes(
      0x12,
      3,
      'abc',
      0x20,
      0xac,
      0x02,
      0x49,
      1,
      2,
      3,
      4,
      5,
      6,
      7,
      8,
      0x55,
      1,
      2,
      3,
      4,
      0x0a,
      5,
      '1.2:3',
    );
    expect(endpointField(message)).toBe('1.2:3');
    expect(endpointField(bytes(0x12, 3, 'abc'))).toBeNull();
    expect(endpointField(bytes(0x0a, 9, 'short'))).toBeNull();
    expect(endpointField(bytes(0x20, 0xff))).toBeNull();
    expect(endpointField(bytes(0x0b))).toBeNull(); // wire type 3 (group): not in these messages
    expect(endpointField(new Uint8Array(0))).toBeNull();
  });
});

describe('speculationRefused (a Select’s or Score’s speculative entries refused on their way to every replica)', () => {
  it('is the error the local quota would have thrown: same code, the caller’s own field, same message', () => {
    const refusal = (field: string) => {
      const quota = new SpeculationQuota(4, () => 0);
      try {
        quota.take('10.9.9.9:4000', 5, 1_000, field);
      } catch (err) {
        return err as ApiError;
      }
      throw new Error('the quota took 5 of 4');
    };
    // What the Reserve applied through the primary answers (its quota names `block_keys`), as a status.
    const reply = toStatus(refusal('block_keys'), '/kvindexer.v1.KvIndexer/Reserve', { error: () => undefined });
    expect(reply.code).toBe(8);
    for (const field of ['reserve', 'speculate']) {
      const err = speculationRefused(reply, field);
      expect(err).toBeInstanceOf(ApiError);
      expect({ code: err.code, field: err.field, message: err.message }).toEqual({
        code: refusal(field).code,
        field: refusal(field).field,
        message: refusal(field).message,
      });
    }
    // Any other refusal keeps its code and text as they came.
    const down = speculationRefused(
      { code: 14, details: 'this serving process is starting: retry shortly' },
      'reserve',
    );
    expect({ code: down.code, field: down.field, message: down.message }).toEqual({
      code: 'unavailable',
      field: '',
      message: 'this serving process is starting: retry shortly',
    });
  });
});

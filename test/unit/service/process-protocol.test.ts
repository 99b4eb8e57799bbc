import { describe, expect, it } from 'vitest';
import { loadProtos } from '../../../src/api/index.js';
import { endpointField } from '../../../src/service/process-protocol.js';

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

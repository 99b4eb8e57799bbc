import { encode } from '@msgpack/msgpack';
import { describe, expect, it } from 'vitest';
import { decodeEventBatch, DECODE_REASONS, PayloadError } from '../../../src/events/decode/index.js';

const pack = (value: unknown) => encode(value, { useBigInt64: true });
const GOOD = ['BlockRemoved', [1]];

function payloadError(payload: Uint8Array): { reason: string; field: string; message: string } {
  try {
    decodeEventBatch(payload);
  } catch (err) {
    if (err instanceof PayloadError) return { reason: err.reason, field: err.field, message: err.message };
    throw err;
  }
  throw new Error('expected a PayloadError');
}

/** Decode `bad` between two good events: the bad one yields exactly one issue, the good ones still apply. */
function issueOf(bad: unknown) {
  const batch = decodeEventBatch(pack([0, [GOOD, bad, GOOD]]));
  expect(batch.events).toHaveLength(2);
  expect(batch.issues).toHaveLength(1);
  return batch.issues[0];
}

describe('malformed events are skipped with a precise issue', () => {
  const cases: [string, unknown, string, string, string][] = [
    ['not an array or map', 42, 'bad_event', 'events[1]', 'expected array or map, got int (42)'],
    ['bytes as event', new Uint8Array(3), 'bad_event', 'events[1]', 'expected array or map, got bytes (3)'],
    ['empty array', [], 'bad_event', 'events[1].type', 'expected tag string, got nothing'],
    ['int tag', [7, [1]], 'bad_event', 'events[1].type', 'expected tag string, got int (7)'],
    ['map without type', { block_hashes: [1] }, 'bad_event', 'events[1].type', 'expected tag string, got nothing'],
    [
      'missing token_ids (array)',
      ['BlockStored', [1], null],
      'missing_field',
      'events[1].token_ids',
      'expected a value, got nothing',
    ],
    [
      'missing parent_block_hash (map)',
      { type: 'BlockStored', block_hashes: [1], token_ids: [], block_size: 0 },
      'missing_field',
      'events[1].parent_block_hash',
      'expected a value, got nothing',
    ],
    [
      'missing block_hashes (removed)',
      ['BlockRemoved'],
      'missing_field',
      'events[1].block_hashes',
      'expected a value, got nothing',
    ],
    [
      'string hash',
      ['BlockStored', [1, 2, 'x'], null, [], 0],
      'bad_hash',
      'events[1].block_hashes[2]',
      'expected int or bytes, got string',
    ],
    [
      'float hash',
      ['BlockRemoved', [0.5]],
      'bad_hash',
      'events[1].block_hashes[0]',
      'expected int or bytes, got float (0.5)',
    ],
    [
      'empty bytes hash',
      ['BlockRemoved', [new Uint8Array(0)]],
      'bad_hash',
      'events[1].block_hashes[0]',
      'expected 1..32 bytes, got 0 bytes',
    ],
    [
      '33-byte hash parent',
      ['BlockStored', [1], new Uint8Array(33), [], 0],
      'bad_hash',
      'events[1].parent_block_hash',
      'expected 1..32 bytes, got 33 bytes',
    ],
    [
      'hashes not a list',
      ['BlockRemoved', 5],
      'bad_field_type',
      'events[1].block_hashes',
      'expected array, got int (5)',
    ],
    ['nil hashes', ['BlockRemoved', null], 'bad_field_type', 'events[1].block_hashes', 'expected array, got nil'],
    [
      'negative token',
      ['BlockStored', [1], null, [1, 2, -1], 3],
      'bad_token_ids',
      'events[1].token_ids[2]',
      'expected uint32 token id, got int (-1)',
    ],
    [
      'token ≥ 2^32',
      ['BlockStored', [1], null, [4294967296], 1],
      'bad_token_ids',
      'events[1].token_ids[0]',
      'expected uint32 token id, got int (4294967296)',
    ],
    [
      'string token',
      ['BlockStored', [1], null, ['a'], 1],
      'bad_token_ids',
      'events[1].token_ids[0]',
      'expected uint32 token id, got string',
    ],
    [
      'token_ids a map',
      ['BlockStored', [1], null, {}, 1],
      'bad_field_type',
      'events[1].token_ids',
      'expected array, got map',
    ],
    [
      'negative block_size',
      ['BlockStored', [1], null, [], -16],
      'bad_field_type',
      'events[1].block_size',
      'expected non-negative int, got int (-16)',
    ],
    [
      'nil block_size',
      ['BlockStored', [1], null, [], null],
      'bad_field_type',
      'events[1].block_size',
      'expected non-negative int, got nil',
    ],
    [
      'float lora_id',
      ['BlockStored', [1], null, [], 0, 1.5],
      'bad_field_type',
      'events[1].lora_id',
      'expected int or nil, got float (1.5)',
    ],
    [
      'int medium',
      ['BlockStored', [1], null, [], 0, null, 3],
      'bad_field_type',
      'events[1].medium',
      'expected string or nil, got int (3)',
    ],
    // vLLM locality / ownership (decode/placement.ts), SGLang's metadata map and TensorRT-LLM's mm_keys on the vLLM wire.
    [
      'unknown locality (removed)',
      ['BlockRemoved', [1], 'STORAGE', null, 'NEARBY'],
      'unknown_locality',
      'events[1].locality',
      'unknown locality "NEARBY" (expected LOCAL, REMOTE or nil)',
    ],
    [
      'int locality',
      { type: 'BlockStored', block_hashes: [1], parent_block_hash: null, token_ids: [], block_size: 0, locality: 1 },
      'bad_field_type',
      'events[1].locality',
      'expected string or nil, got int (1)',
    ],
    [
      'int ownership',
      { type: 'BlockRemoved', block_hashes: [1], ownership: 2 },
      'bad_field_type',
      'events[1].ownership',
      'expected string or nil, got int (2)',
    ],
    [
      'int cache_salt in the metadata map',
      ['BlockStored', [1], null, [], 0, null, 'GPU', { cache_salt: 5 }],
      'bad_field_type',
      'events[1].lora_name.cache_salt',
      'expected string or nil, got int (5)',
    ],
    [
      'mm_keys not a list',
      { type: 'BlockStored', block_hashes: [1], parent_block_hash: null, token_ids: [], block_size: 0, mm_keys: 'x' },
      'bad_field_type',
      'events[1].mm_keys',
      'expected array or nil, got string',
    ],
    [
      'TensorRT-LLM mm_keys on a block',
      {
        type: 'BlockStored',
        block_hashes: [1, 2],
        parent_block_hash: null,
        token_ids: [],
        block_size: 0,
        mm_keys: [[], [{ type: 'mm_key', hash: 'ab', start_offset: 0 }]],
      },
      'unsupported_mm_keys',
      'events[1].mm_keys[1]',
      'block 1 carries 1 TensorRT-LLM multimodal key(s); such blocks are not indexed',
    ],
    [
      'bytes lora_name',
      ['BlockStored', [1], null, [], 0, null, null, new Uint8Array(1)],
      'bad_field_type',
      'events[1].lora_name',
      'expected string or nil, got bytes (1)',
    ],
    [
      'negative group_idx',
      { type: 'BlockStored', block_hashes: [1], parent_block_hash: null, token_ids: [], block_size: 0, group_idx: -1 },
      'bad_field_type',
      'events[1].group_idx',
      'expected non-negative int or nil, got int (-1)',
    ],
    [
      'bool kv_cache_spec_kind',
      {
        type: 'BlockStored',
        block_hashes: [1],
        parent_block_hash: null,
        token_ids: [],
        block_size: 0,
        kv_cache_spec_kind: true,
      },
      'bad_field_type',
      'events[1].kv_cache_spec_kind',
      'expected string or nil, got bool',
    ],
    [
      'string sliding window',
      {
        type: 'BlockStored',
        block_hashes: [1],
        parent_block_hash: null,
        token_ids: [],
        block_size: 0,
        kv_cache_spec_sliding_window: '4k',
      },
      'bad_field_type',
      'events[1].kv_cache_spec_sliding_window',
      'expected int or nil, got string',
    ],
    [
      'medium on removed',
      ['BlockRemoved', [1], []],
      'bad_field_type',
      'events[1].medium',
      'expected string or nil, got array',
    ],
  ];
  for (const [name, bad, reason, field, message] of cases) {
    it(name, () => {
      expect(issueOf(bad)).toStrictEqual({ reason, eventIndex: 1, field, message });
    });
  }

  it('cuts very long unknown tags in the message', () => {
    const issue = issueOf(['X'.repeat(1000)]);
    expect(issue.reason).toBe('unknown_tag');
    expect(issue.message).toBe(`unknown event tag "${'X'.repeat(64)}…"`);
  });

  it('every reason it reports is a registered one', () => {
    expect([...DECODE_REASONS]).toStrictEqual([
      'bad_msgpack',
      'bad_batch',
      'bad_event',
      'unknown_tag',
      'missing_field',
      'bad_field_type',
      'bad_hash',
      'bad_extra_keys',
      'bad_token_ids',
      'bad_token_pairs',
      'unknown_locality',
      'unsupported_mm_keys',
    ]);
  });
});

describe('unusable payloads throw PayloadError', () => {
  it('truncated msgpack', () => {
    const full = pack([1.5, [['BlockStored', [1, 2, 3], null, [1, 2, 3, 4], 2]], 0]);
    for (let cut = 0; cut < full.length; cut++) {
      expect(payloadError(full.subarray(0, cut)).reason).toBe('bad_msgpack');
    }
  });

  it('invalid type byte', () => {
    expect(payloadError(Uint8Array.from([0xc1]))).toStrictEqual({
      reason: 'bad_msgpack',
      field: '',
      message: 'payload is not one msgpack value: Unrecognized type byte: 0xc1',
    });
  });

  it('trailing bytes after the batch', () => {
    const one = pack([1.5, [], 0]);
    const two = new Uint8Array(one.length + 1);
    two.set(one);
    expect(payloadError(two).reason).toBe('bad_msgpack');
    expect(payloadError(two).message).toContain('Extra 1 of');
  });

  it('not a batch', () => {
    expect(payloadError(pack(42))).toStrictEqual({
      reason: 'bad_batch',
      field: 'batch',
      message: 'expected array or map, got int (42)',
    });
    expect(payloadError(pack('hello'))).toStrictEqual({
      reason: 'bad_batch',
      field: 'batch',
      message: 'expected array or map, got string',
    });
    expect(payloadError(pack([]))).toStrictEqual({
      reason: 'bad_batch',
      field: 'ts',
      message: 'expected finite float, got nothing',
    });
    expect(payloadError(pack([1.5]))).toStrictEqual({
      reason: 'bad_batch',
      field: 'events',
      message: 'expected array, got nothing',
    });
    expect(payloadError(pack(['x', []]))).toStrictEqual({
      reason: 'bad_batch',
      field: 'ts',
      message: 'expected finite float, got string',
    });
    expect(payloadError(pack([1.5, {}]))).toStrictEqual({
      reason: 'bad_batch',
      field: 'events',
      message: 'expected array, got map',
    });
    expect(payloadError(pack([1.5, [], -1]))).toStrictEqual({
      reason: 'bad_batch',
      field: 'data_parallel_rank',
      message: 'expected non-negative int or nil, got int (-1)',
    });
    expect(payloadError(pack([1.5, [], 'r0'])).field).toBe('data_parallel_rank');
    expect(payloadError(pack([Number.NaN, []]))).toStrictEqual({
      reason: 'bad_batch',
      field: 'ts',
      message: 'expected finite float, got float (NaN)',
    });
    expect(payloadError(pack({ ts: 1, events: null }))).toStrictEqual({
      reason: 'bad_batch',
      field: 'events',
      message: 'expected array, got nil',
    });
    expect(payloadError(pack({ events: [] }))).toStrictEqual({
      reason: 'bad_batch',
      field: 'ts',
      message: 'expected finite float, got nothing',
    });
  });

  it('map keys that msgpack-js refuses', () => {
    // {"__proto__": 1} and a map keyed by an array: the decoder rejects both; they must surface as PayloadError.
    expect(payloadError(Uint8Array.from([0x81, 0xa9, ...Buffer.from('__proto__'), 0x01])).reason).toBe('bad_msgpack');
    expect(payloadError(Uint8Array.from([0x81, 0x90, 0x01])).reason).toBe('bad_msgpack');
  });

  it('deep nesting and huge declared lengths do not crash', () => {
    const deep = new Uint8Array(200_000).fill(0x91);
    expect(payloadError(deep).reason).toBe('bad_msgpack');
    // An event nested 100k arrays deep, terminated properly: decodes, the event is rejected.
    const depth = 100_000;
    const bytes = new Uint8Array(3 + depth + 1);
    bytes.set([0x92, 0x00, 0x91]);
    bytes.fill(0x91, 3, 3 + depth);
    bytes[3 + depth] = 0xc0;
    const batch = decodeEventBatch(bytes);
    expect(batch.issues).toStrictEqual([
      { reason: 'bad_event', eventIndex: 0, field: 'events[0].type', message: 'expected tag string, got array' },
    ]);
    // array32 header declaring 2^32-1 elements with nothing after it
    expect(payloadError(Uint8Array.from([0xdd, 0xff, 0xff, 0xff, 0xff])).reason).toBe('bad_msgpack');
  });

  it('ext values and timestamps are just wrong types', () => {
    const ts = encode([0, [['BlockRemoved', [new Date(0)]]]]);
    expect(decodeEventBatch(ts).issues).toStrictEqual([
      {
        reason: 'bad_hash',
        eventIndex: 0,
        field: 'events[0].block_hashes[0]',
        message: 'expected int or bytes, got timestamp',
      },
    ]);
    // fixext1 type 5 as the tag
    const ext = Uint8Array.from([0x92, 0x00, 0x91, 0x91, 0xd4, 0x05, 0x00]);
    expect(decodeEventBatch(ext).issues).toStrictEqual([
      { reason: 'bad_event', eventIndex: 0, field: 'events[0].type', message: 'expected tag string, got ext' },
    ]);
  });
});

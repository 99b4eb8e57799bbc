// Writes fixtures/recordings/{trtllm-streaming,sglang-vllm-wire,vllm-storage-locality}.kvrec: what three publishers
// other than a plain vLLM GPU cache put on the vLLM wire, built by hand from the facts cited below (no engine was run;
// the payloads follow the engines' msgspec structs field by field). test/integration/publishers.test.ts publishes them
// over a real ZMQ socket and checks the index. Deterministic: `npm run fixtures` regenerates the same bytes.
//
// - TensorRT-LLM streaming KV events (NVIDIA/TensorRT-LLM tensorrt_llm/_torch/pyexecutor/kv_cache_events.py, #17023):
//   batch `[ts, events, data_parallel_rank]` (array_like); events are tagged maps (not array_like, omit_defaults):
//   `type, block_hashes (ints), parent_block_hash, token_ids (int | str), block_size, lora_id, medium "GPU",
//   lora_name` always present, `mm_keys` (per block `[{type: "mm_key", hash: hex, start_offset, uuid?}]`) only with
//   multimodal decoding; BlockRemoved `type, block_hashes, medium "GPU"`. Consecutive blocks are coalesced.
// - SGLang ≥ 0.5.18 (sgl-project/sglang python/sglang/srt/disaggregation/kv_events.py): array_like events,
//   batch `[ts, events, attn_dp_rank]`, BlockStored `tag, block_hashes, parent_block_hash, token_ids, block_size,
//   lora_id, medium?` and `BlockStoredWithMetadata` appending a `metadata` map `{cache_salt, session_id}` (position
//   7); signed int64 hashes; EAGLE-family speculative decoding sends token pairs (mem_cache/events.py record_store).
// - vLLM main (vllm/distributed/kv_events.py): map-form events with `medium: "STORAGE"` (#48123), `locality`
//   LOCAL/REMOTE (#48281) and `ownership` (#52067) on offload placeholders (empty token_ids, block_size 0).
import { encode } from '@msgpack/msgpack';
import { fileURLToPath } from 'node:url';
import { RecordingWriter, type RecordedMessage, type RecordingHeader } from '../src/events/recording/format.js';

export const PUBLISHER_MODEL = 'meta-llama/Llama-3.1-8B-Instruct';
export const TRT_ENDPOINT = '10.0.2.1:8000';
export const SGLANG_ENDPOINT = '10.0.3.1:30000';
export const VLLM_ENDPOINT = '10.0.4.1:8000';

const range = (n: number, from: number) => Array.from({ length: n }, (_, i) => from + i);
const T0 = 1_764_000_000;

function message(endpoint: string, seq: number, events: unknown[], rank: number | null): RecordedMessage {
  const seqFrame = Buffer.alloc(8);
  seqFrame.writeBigUInt64BE(BigInt(seq));
  const payload = Buffer.from(encode([T0 + seq * 0.01, events, rank], { useBigInt64: true }));
  return {
    time: (T0 + seq * 0.01) * 1000,
    frames: [Buffer.from(`kv@${endpoint}@${PUBLISHER_MODEL}`), seqFrame, payload],
  };
}

/** TensorRT-LLM engine hashes: the low 64 bits of its radix block key (any uint64, so half exceed 2^63). */
const TRT = [0xfedcba9876543210n, 0x0123456789abcdefn, 0x8000000000000001n, 0x7fffffffffffffffn, 0xaaaaaaaaaaaaaaaan];

export function trtllmMessages(): RecordedMessage[] {
  const stored = (
    hashes: bigint[],
    parent: bigint | null,
    tokens: (number | string)[],
    extra: Record<string, unknown> = {},
  ) => ({
    type: 'BlockStored',
    block_hashes: hashes,
    parent_block_hash: parent,
    token_ids: tokens,
    block_size: 16,
    lora_id: null,
    medium: 'GPU',
    lora_name: null,
    ...extra,
  });
  return [
    // Two complete blocks, coalesced into one event.
    message(TRT_ENDPOINT, 0, [stored([TRT[0], TRT[1]], null, range(32, 1))], 0),
    message(
      TRT_ENDPOINT,
      1,
      [
        stored([TRT[2]], TRT[1], range(16, 33)),
        // A block with an image segment: mm_keys names it; refused (unsupported_mm_keys), nothing indexed from it.
        stored([TRT[3]], TRT[2], range(16, 49), {
          mm_keys: [[{ type: 'mm_key', hash: '9f86d081884c7d659a2feaa0c55ad015', start_offset: 0 }]],
        }),
      ],
      0,
    ),
    // EventTokenId = int | str: a string token cannot be hashed (bad_token_ids), nothing indexed from the event.
    message(TRT_ENDPOINT, 2, [stored([TRT[4]], null, [...range(15, 100), '<image>'])], 0),
    message(TRT_ENDPOINT, 3, [{ type: 'BlockRemoved', block_hashes: [TRT[2]], medium: 'GPU' }], 0),
  ];
}

/** SGLang hashes: the signed int64 of the first 8 bytes of its SHA-256. */
const SG = [-8070450532247928832n, 1234567890123456789n, -2n, 42n, -9223372036854775808n, 9223372036854775807n];

export function sglangMessages(): RecordedMessage[] {
  const pairs = (raw: number[]) => raw.slice(0, -1).map((t, j) => [t, raw[j + 1]]);
  return [
    message(
      SGLANG_ENDPOINT,
      0,
      [
        // Legacy length: medium None is a trailing default, omitted.
        ['BlockStored', [SG[0]], null, range(16, 1), 16, null],
        ['BlockStored', [SG[1]], SG[0], range(16, 17), 16, null, 'GPU'],
        // BlockStoredWithMetadata: the metadata map at position 7 (where vLLM has lora_name).
        [
          'BlockStored',
          [SG[2], SG[3]],
          null,
          range(32, 1),
          16,
          null,
          'GPU',
          { cache_salt: 'tenant-a', session_id: 's-1' },
        ],
      ],
      0,
    ),
    message(
      SGLANG_ENDPOINT,
      1,
      [
        // EAGLE speculative decoding: 16 pairs over raw tokens 201..217 stand for positions 201..216.
        ['BlockStored', [SG[4]], null, pairs(range(17, 201)), 16, null, 'GPU'],
        // A broken pair chain: refused (bad_token_pairs).
        ['BlockStored', [SG[5]], SG[4], [[217, 218], [219, 220], ...pairs(range(15, 221))], 16, null, 'GPU'],
      ],
      0,
    ),
    message(SGLANG_ENDPOINT, 2, [['BlockRemoved', [SG[1]], 'GPU']], 0),
  ];
}

export function vllmStorageMessages(): RecordedMessage[] {
  const placeholder = (hashes: number[], extra: Record<string, unknown>) => ({
    type: 'BlockStored',
    block_hashes: hashes,
    parent_block_hash: null,
    token_ids: [],
    block_size: 0,
    lora_id: null,
    medium: 'STORAGE',
    lora_name: null,
    ...extra,
  });
  return [
    message(
      VLLM_ENDPOINT,
      0,
      [
        {
          type: 'BlockStored',
          block_hashes: [501, 502],
          parent_block_hash: null,
          token_ids: range(32, 1),
          block_size: 16,
          lora_id: null,
          medium: 'GPU',
          lora_name: null,
        },
      ],
      null,
    ),
    message(
      VLLM_ENDPOINT,
      1,
      [
        placeholder([501, 502], { locality: 'REMOTE', ownership: 'fs-shared', session_id: 'req-7' }),
        placeholder([501], { locality: 'LOCAL', ownership: 'fs-local' }),
        placeholder([503], { locality: 'ELSEWHERE' }),
      ],
      null,
    ),
    message(VLLM_ENDPOINT, 2, [{ type: 'BlockRemoved', block_hashes: [501, 502], medium: null }], null),
  ];
}

const root = new URL('../', import.meta.url);

export const PUBLISHER_RECORDINGS: { name: string; header: RecordingHeader; messages: () => RecordedMessage[] }[] = [
  {
    name: 'trtllm-streaming',
    header: header('TensorRT-LLM streaming KV events (map-form events, mm_keys, string token)'),
    messages: trtllmMessages,
  },
  {
    name: 'sglang-vllm-wire',
    header: header('SGLang ≥ 0.5.18 on the vLLM wire: metadata map at position 7, EAGLE token pairs'),
    messages: sglangMessages,
  },
  {
    name: 'vllm-storage-locality',
    header: header('vLLM main: STORAGE placeholders with locality and ownership'),
    messages: vllmStorageMessages,
  },
];

function header(note: string): RecordingHeader {
  return {
    createdAt: '2026-12-02T00:00:00.000Z',
    source: 'scripts/make-publisher-recordings.ts',
    format: 'vllm',
    note,
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const r of PUBLISHER_RECORDINGS) {
    const out = fileURLToPath(new URL(`fixtures/recordings/${r.name}.kvrec`, root));
    const writer = new RecordingWriter(out, r.header);
    for (const m of r.messages()) writer.write(m);
    await writer.close();
    console.log(`wrote ${out}`);
  }
}

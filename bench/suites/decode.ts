import { encode } from '@msgpack/msgpack';
import { decodeEventBatch, type WireFormat } from '../../src/events/index.js';
import { micro, randomKey, realisticTokens, rng, type Suite } from '../harness.js';

const BLOCKS = 16;
const BLOCK = 16;

/** One batch of 3 BlockStored events (16 blocks of 16 tokens each) and a BlockRemoved, as each wire version writes it. */
function payloads(): Record<string, { format: WireFormat; payload: Uint8Array }> {
  const random = rng(13);
  const stores = Array.from({ length: 3 }, () => ({
    hashes: Array.from({ length: BLOCKS }, () => randomKey(random)),
    tokens: Array.from(realisticTokens(BLOCKS * BLOCK, random)),
  }));
  const removed = stores[0].hashes.slice(0, 4);
  const bytes = (h: bigint) => {
    const b = new Uint8Array(32);
    new DataView(b.buffer).setBigUint64(24, h);
    return b;
  };
  return {
    // vLLM ≤ 0.22: positional events, int hashes
    'vllm-array-int': {
      format: 'vllm',
      payload: encode(
        [
          1.0,
          [
            ...stores.map((s) => ['BlockStored', s.hashes, null, s.tokens, BLOCK, null, 'GPU']),
            ['BlockRemoved', removed, 'GPU'],
          ],
          0,
        ],
        { useBigInt64: true },
      ),
    },
    // vLLM ≥ 0.23: tagged maps, defaults omitted, extra keys present
    'vllm-map-int': {
      format: 'vllm',
      payload: encode(
        [
          1.0,
          [
            ...stores.map((s) => ({
              type: 'BlockStored',
              block_hashes: s.hashes,
              parent_block_hash: null,
              token_ids: s.tokens,
              block_size: BLOCK,
              locality: 'local',
            })),
            { type: 'BlockRemoved', block_hashes: removed },
          ],
          0,
        ],
        { useBigInt64: true },
      ),
    },
    // VLLM_KV_EVENTS_USE_INT_BLOCK_HASHES=0: 32-byte sha256 hashes
    'vllm-map-bytes': {
      format: 'vllm',
      payload: encode(
        [
          1.0,
          [
            ...stores.map((s) => ({
              type: 'BlockStored',
              block_hashes: s.hashes.map(bytes),
              parent_block_hash: null,
              token_ids: s.tokens,
              block_size: BLOCK,
            })),
            { type: 'BlockRemoved', block_hashes: removed.map(bytes) },
          ],
          0,
        ],
        { useBigInt64: true },
      ),
    },
    // SGLang: positional events, signed int64 hashes
    'sglang-array': {
      format: 'sglang',
      payload: encode(
        [
          1.0,
          [
            ...stores.map((s) => [
              'BlockStored',
              s.hashes.map((h) => BigInt.asIntN(64, h)),
              null,
              s.tokens,
              BLOCK,
              null,
              'GPU',
            ]),
            ['BlockRemoved', removed.map((h) => BigInt.asIntN(64, h)), 'GPU'],
          ],
          0,
        ],
        { useBigInt64: true },
      ),
    },
  };
}

/** msgpack payloads of each wire version decoded into normalised events: messages/s and stored blocks/s. */
export const decodeSuite: Suite = {
  name: 'decode',
  description: 'msgpack decode per wire version (3 BlockStored × 16 blocks × 16 tokens + 1 BlockRemoved per message)',
  async run({ quick }) {
    const figures: Record<string, { value: number; unit: string }> = {};
    const samples: Record<string, number> = {};
    for (const [name, { format, payload }] of Object.entries(payloads())) {
      const check = decodeEventBatch(payload, format);
      if (check.issues.length > 0 || check.events.length !== 4)
        throw new Error(`decode bench: ${name} did not decode cleanly`);
      const run = await micro(`decode ${name}`, () => decodeEventBatch(payload, format), quick);
      samples[name] = run.samples;
      figures[`${name}MessagesPerSecond`] = { value: 1e9 / run.meanNs, unit: 'msgs/s' };
      figures[`${name}StoredBlocksPerSecond`] = { value: (3 * BLOCKS * 1e9) / run.meanNs, unit: 'blocks/s' };
      figures[`${name}P99`] = { value: run.p99Ns / 1e3, unit: 'µs/msg' };
    }
    return {
      parameters: { harness: 'tinybench', samples, storesPerMessage: 3, blocksPerStore: BLOCKS, blockSize: BLOCK },
      figures,
    };
  },
};

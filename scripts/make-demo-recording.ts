// Writes fixtures/recordings/demo-chat.kvrec.gz: what a vLLM pod running the demo model (fixtures/models/demo.yaml)
// publishes after serving one chat with an image — the README walk-through replays it and scores the same chat.
// Deterministic: `npm run fixtures` regenerates the same bytes.
import { encode } from '@msgpack/msgpack';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { RecordingWriter } from '../src/events/recording/format.js';
import { loadRegistryFile, PromptService } from '../src/prompt/index.js';

export const DEMO_MODEL = 'Qwen/Qwen2-VL-2B-Instruct';
export const DEMO_ENDPOINT = '10.0.0.1:8000';
const root = new URL('../', import.meta.url);
const png = readFileSync(new URL('fixtures/images/grey-640x480.png', root)).toString('base64');

/** The chat of the walk-through (also in README.md). */
export const DEMO_MESSAGES = [
  {
    role: 'user',
    content: [
      { type: 'image_url', image_url: { url: `data:image/png;base64,${png}` }, uuid: 'demo-image-1' },
      { type: 'text', text: 'What is in this image?' },
    ],
  },
];

export async function demoRecordingFrames(): Promise<Buffer[][]> {
  const { config, baseDir } = loadRegistryFile(fileURLToPath(new URL('fixtures/models/demo.yaml', root)));
  const prompts = await PromptService.create({ registry: config, keys: { blockSize: 16, hashSeed: '' }, baseDir });
  try {
    const p = await prompts.prepare({ model: DEMO_MODEL, messages: DEMO_MESSAGES });
    const blocks = Math.floor(p.tokenIds.length / 16);
    const [image] = p.items;
    // vLLM ≥ 0.19 extra_keys: each block the image overlaps carries [identifier, item_offset - block_start].
    const extraKeys = Array.from({ length: blocks }, (_, b) =>
      b * 16 < image.offset + image.length && (b + 1) * 16 > image.offset
        ? [[image.identifier, image.offset - b * 16]]
        : null,
    );
    // Engine hashes are opaque to the indexer: any distinct values do.
    const hashes = Array.from(
      { length: blocks },
      (_, b) => (0x9e3779b97f4a7c15n * BigInt(b + 1)) & 0xffffffffffffffffn,
    );
    const stored = {
      type: 'BlockStored',
      block_hashes: hashes,
      parent_block_hash: null,
      token_ids: Array.from(p.tokenIds.subarray(0, blocks * 16)),
      block_size: 16,
      extra_keys: extraKeys,
    };
    const topic = Buffer.from(`kv@${DEMO_ENDPOINT}@${DEMO_MODEL}`);
    const seq = Buffer.alloc(8);
    return [[topic, seq, Buffer.from(encode([1_763_700_000.0, [stored], null], { useBigInt64: true }))]];
  } finally {
    await prompts.close();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const out = fileURLToPath(new URL('fixtures/recordings/demo-chat.kvrec.gz', root));
  const writer = new RecordingWriter(out, {
    createdAt: '2026-11-21T00:00:00.000Z',
    source: 'scripts/make-demo-recording.ts',
    format: 'vllm',
    note: `${DEMO_ENDPOINT} after serving the README chat (one 640x480 image, uuid demo-image-1) with ${DEMO_MODEL}`,
  });
  for (const frames of await demoRecordingFrames()) writer.write({ time: 1_763_700_000_000, frames });
  await writer.close();
  console.log(`wrote ${out}`);
}

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keysReport, maxTokensOf, parsePyJson } from '../../src/prompt/index.js';
import { SHARED_DIR } from '../support/golden.js';
import { startTestService, type TestService } from '../support/service.js';

/**
 * Request fields that change vLLM's image identifier, end to end (gRPC, and the CLI `keys` request file):
 * - ChatInput.max_tokens (field 11): vLLM 0.16.x folds max_length = max_model_len − (max_completion_tokens or
 *   max_tokens or 0) + 1 into the hash (../shared/spec/vllm-mm-hash.md, "Tokenization kwargs");
 * - a float kwarg spelled `1003520.0`: Python's json.loads keeps it a float, hashed as float64, not int64.
 * Expected identifiers are the Python reference's (test/support/vllm_mm_hash_ref.py → test/unit/prompt/
 * mm-hash-vectors.json); the registry uses mmHasher sha256, so the identifier is the vector's sha256 itself.
 */

interface Vector {
  name: string;
  sha256: string;
}
const vectors = (
  JSON.parse(readFileSync(new URL('../unit/prompt/mm-hash-vectors.json', import.meta.url), 'utf8')) as {
    cases: Vector[];
  }
).cases;
const vector = (name: string): string => {
  const v = vectors.find((c) => c.name === name);
  if (!v) throw new Error(`no vector named ${name}`);
  return v.sha256;
};
const V016_NO_MAX_TOKENS = vector('golden image, 0.16.0, max_model_len 32768');
const V016_MAX_TOKENS_512 = vector('golden image, 0.16.0, max_model_len 32768, max_tokens 512');
const V019_FLOAT_KWARG = vector('golden image, 0.19.1, float kwarg max_pixels 1003520.0');
const V019_NO_KWARGS = vector('golden image, 0.19.1, no kwargs');

const png = readFileSync(`${SHARED_DIR}golden/images/coco-000000039769.png`);
const messages = [
  {
    role: 'user',
    content: [
      { type: 'image_url', image_url: { url: `data:image/png;base64,${png.toString('base64')}` } },
      { type: 'text', text: 'What is in this image?' },
    ],
  },
];
const ENGINE_MODEL = 'Qwen/Qwen2-VL-2B-Instruct';

describe('vLLM identifier inputs over gRPC and the CLI request file', () => {
  let t: TestService;
  let dir: string;
  let registry: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kvi-vllm-inputs-'));
    registry = join(dir, 'registry.json');
    const modelDir = new URL('../../fixtures/models/qwen2-vl', import.meta.url).pathname;
    writeFileSync(
      registry,
      JSON.stringify({
        models: [
          {
            name: 'vl-016',
            dir: modelDir,
            vllm: { version: '0.16.0', model: ENGINE_MODEL, mmHasher: 'sha256', maxModelLen: 32768 },
          },
          { name: 'vl-019', dir: modelDir, vllm: { version: '0.19.1', model: ENGINE_MODEL, mmHasher: 'sha256' } },
        ],
      }),
    );
    t = await startTestService({ registry });
  }, 60_000);

  afterAll(async () => {
    await t?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  type Items = { items: { identifier: string; identifierSource: string }[]; blockKeys: string[] };
  const chat = (model: string, extra: Record<string, unknown>) => ({
    model,
    chat: { messagesJson: JSON.stringify(messages), ...extra },
  });
  const score = (model: string, extra: Record<string, unknown> = {}) =>
    t.kv.call('Score', { ...chat(model, extra), returnBlockKeys: true }) as Promise<Items>;
  const computeKeys = (model: string, extra: Record<string, unknown> = {}) =>
    t.kv.call('ComputeBlockKeys', chat(model, extra)) as Promise<Items>;

  it('0.16: ChatInput.max_tokens reaches the identifier (Score and ComputeBlockKeys) as the Python reference computes it', async () => {
    const without = await score('vl-016');
    expect(without.items.map((i) => [i.identifier, i.identifierSource])).toEqual([
      [V016_NO_MAX_TOKENS, 'vllm-mm-hash'],
    ]);
    const withMax = await score('vl-016', { maxTokens: 512 });
    expect(withMax.items.map((i) => i.identifier)).toEqual([V016_MAX_TOKENS_512]);
    const keys = await computeKeys('vl-016', { maxTokens: 512 });
    expect(keys.items.map((i) => i.identifier)).toEqual([V016_MAX_TOKENS_512]);
    expect(keys.blockKeys).toEqual(withMax.blockKeys);
    // The identifier is folded into the image's blocks (from block 0: the image starts at token 15), so every key differs.
    expect(withMax.blockKeys).toHaveLength(26);
    expect(withMax.blockKeys.filter((k, i) => k === without.blockKeys[i])).toEqual([]);
    // max_tokens 0 is vLLM's "or 0": the same as unset.
    expect((await score('vl-016', { maxTokens: 0 })).items[0].identifier).toBe(V016_NO_MAX_TOKENS);
  });

  it('0.17+: max_tokens does not change the identifier', async () => {
    expect((await score('vl-019', { maxTokens: 512 })).items[0].identifier).toBe(V019_NO_KWARGS);
  });

  it('a float kwarg (1003520.0) gives the same identifier via a request file (what kv-indexer keys reads) as via gRPC mm_processor_kwargs_json', async () => {
    const grpc = await score('vl-019', { mmProcessorKwargsJson: '{"max_pixels": 1003520.0}' });
    expect(grpc.items[0].identifier).toBe(V019_FLOAT_KWARG);
    const file = join(dir, 'float-kwarg.json');
    const keysOf = async () =>
      keysReport(readFileSync(file, 'utf8'), { modelsPath: registry, blockSize: 16, hashSeed: '' });
    // Raw text: JSON.stringify would write 1003520 (an int, hashed as int64).
    writeFileSync(
      file,
      `{"model": "vl-019", "messages": ${JSON.stringify(messages)}, "mm_processor_kwargs": {"max_pixels": 1003520.0}}`,
    );
    expect((await keysOf()).items[0]).toMatchObject({ identifier: V019_FLOAT_KWARG });
    // The request file's max_tokens reaches a 0.16 identifier too.
    writeFileSync(file, `{"model": "vl-016", "messages": ${JSON.stringify(messages)}, "max_tokens": 512}`);
    expect((await keysOf()).items[0]).toMatchObject({ identifier: V016_MAX_TOKENS_512 });
  }, 30_000);
});

describe("kv-indexer score: the request file's max_completion_tokens / max_tokens → ChatInput.max_tokens", () => {
  const of = (json: string) => maxTokensOf(Object.fromEntries(parsePyJson(json) as Map<string, unknown>));
  it("takes vLLM's `max_completion_tokens or max_tokens` (a 0 falls through; neither → unset)", () => {
    expect(of('{"max_completion_tokens": 512, "max_tokens": 100}')).toBe(512);
    expect(of('{"max_completion_tokens": null, "max_tokens": 100}')).toBe(100);
    expect(of('{"max_completion_tokens": 0, "max_tokens": 100}')).toBe(100);
    expect(of('{"model": "m"}')).toBeUndefined();
    expect(() => of('{"max_tokens": 1.5}')).toThrow('max_tokens must be a non-negative integer');
    expect(() => of('{"max_completion_tokens": "9"}')).toThrow('max_completion_tokens must be a non-negative integer');
  });
});

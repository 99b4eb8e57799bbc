import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  detectContentFormat,
  detectStrategy,
  PromptError,
  PromptService,
  TokenizerPool,
} from '../../../src/prompt/index.js';
import { readModelDirForTest } from './read-model-dir.js';
import { MODELS, QWEN3, QWEN_TOKENIZER_DIR, dataUrl, imagePart, textPart } from './helpers.js';

let svc: PromptService;
let pool: TokenizerPool;
const PAD = 151655;

beforeAll(async () => {
  pool = new TokenizerPool({ size: 1 });
  svc = await PromptService.create({
    pool,
    keys: { blockSize: 16, hashSeed: '' },
    registry: {
      models: [
        // A text-only tokenizer stands in for the vision models: the rules only need the placeholder tokens.
        { name: 'llava-like', dir: QWEN3.dir, image: { strategy: 'llava', placeholderToken: '<|image_pad|>' } },
        {
          name: 'dims',
          dir: QWEN3.dir,
          image: {
            strategy: 'dimension',
            placeholderToken: '<|image_pad|>',
            pixelsPerToken: 784,
            beginToken: '<|vision_start|>',
            endToken: '<|vision_end|>',
          },
        },
        {
          name: 'fixed',
          dir: QWEN3.dir,
          image: {
            strategy: 'fixed',
            placeholderToken: '<|image_pad|>',
            imageToken: '<|video_pad|>',
            tokensPerImage: 7,
          },
        },
        { name: 'text-only', dir: QWEN3.dir, aliases: ['text-alias'] },
      ],
    },
  });
});
afterAll(async () => {
  await svc?.close();
  await pool?.close();
});

const one = (model: string, url = dataUrl('grey-640x480.png')) => ({
  model,
  messages: [{ role: 'user', content: [imagePart(url), textPart('Hi')] }],
});

describe('image strategies', () => {
  it('rules detected from config.json model_type', () => {
    const types = ['qwen2-vl', 'qwen3-vl', 'gemma3', 'qwen3'].map((d) =>
      detectStrategy(readModelDirForTest(`${MODELS}${d}`)),
    );
    expect(types).toEqual(['qwen2-vl', 'qwen3-vl', 'gemma3', 'none']);
  });

  it('content format detected from the template, as vLLM does: loops over message content → "openai"', () => {
    const formats = ['qwen2-vl', 'gemma3', 'qwen3'].map((d) =>
      detectContentFormat(readModelDirForTest(`${MODELS}${d}`).chatTemplate!.source),
    );
    expect(formats).toEqual(['openai', 'openai', 'string']);
    expect(
      detectContentFormat('{% for m in messages %}{% for c in m.content | reverse %}{% endfor %}{% endfor %}'),
    ).toBe('openai');
  });

  it('aliases resolve to the served name, which roots the keys', () => {
    expect(svc.registry.resolve('text-alias')).toMatchObject({ keyModel: 'text-only', lora: null });
  });

  it('LLaVA-1.5: 576 tokens per image whatever its size', async () => {
    const r = await svc.prepare(one('llava-like'));
    expect(r.items[0].length).toBe(576);
    expect(r.tokenIds.subarray(r.items[0].offset, r.items[0].offset + 576).every((t) => t === PAD)).toBe(true);
  });

  it('dimension-based: ceil(w·h / pixelsPerToken), wrapped in begin/end tokens inside the range', async () => {
    const r = await svc.prepare(one('dims'));
    const n = Math.ceil((640 * 480) / 784);
    expect(r.items[0].length).toBe(n + 2);
    expect(r.tokenIds[r.items[0].offset]).toBe(151652);
    expect(r.tokenIds[r.items[0].offset + n + 1]).toBe(151653);
  });

  it('fixed: tokensPerImage copies of the configured image token', async () => {
    const r = await svc.prepare(one('fixed', 'https://example.com/x.jpg'));
    expect(r.items[0]).toMatchObject({ length: 7, estimated: false });
    expect([...r.tokenIds.subarray(r.items[0].offset, r.items[0].offset + 7)]).toEqual(new Array(7).fill(151656));
  });

  it('a model without a rule rejects images with a clear error naming the part', async () => {
    const err = await svc.prepare(one('text-only')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PromptError);
    expect(err).toMatchObject({ code: 'invalid_argument', field: 'messages[0].content[0].image_url' });
    expect((err as Error).message).toMatch(/has no image rule/);
  });

  it('a generic strategy without its placeholder token is a configuration error', async () => {
    await expect(
      PromptService.create({
        pool,
        keys: { blockSize: 16, hashSeed: '' },
        registry: { models: [{ name: 'bad', dir: QWEN3.dir, image: { strategy: 'fixed', tokensPerImage: 3 } }] },
      }),
    ).rejects.toMatchObject({ code: 'failed_precondition', field: 'models[0].image' });
  });
});

describe('token ids come from the tokenizer, not constants', () => {
  let dir: string;
  let local: PromptService;
  beforeAll(async () => {
    // A "Qwen3.5" directory whose processor names a different image token: the rule must follow the strings.
    dir = mkdtempSync(join(tmpdir(), 'qwen35-'));
    symlinkSync(`${QWEN_TOKENIZER_DIR}tokenizer.json`, join(dir, 'tokenizer.json'));
    const tc = JSON.parse(readFileSync(`${QWEN_TOKENIZER_DIR}tokenizer_config.json`, 'utf8'));
    delete tc.chat_template;
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ ...tc, image_token: '<|video_pad|>' }));
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: 'qwen3_5' }));
    writeFileSync(
      join(dir, 'chat_template.jinja'),
      "{% for m in messages %}{% for c in m['content'] %}{% if c['type'] == 'image' %}<|vision_start|><|video_pad|><|vision_end|>{% else %}{{ c['text'] }}{% endif %}{% endfor %}{% endfor %}",
    );
    local = await PromptService.create({
      pool,
      keys: { blockSize: 16, hashSeed: '' },
      registry: { models: [{ name: 'qwen35-like', dir }] },
    });
  });
  afterAll(async () => {
    await local?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('qwen3_5 → factor 32; the pad is whatever tokenizer_config names (here <|video_pad|> = 151656)', async () => {
    const r = await local.prepare({
      model: 'qwen35-like',
      messages: [{ role: 'user', content: [imagePart(dataUrl('grey-640x480.png'))] }],
    });
    expect(r.items.map((i) => [i.offset, i.length])).toEqual([[1, 300]]);
    expect([r.tokenIds[0], r.tokenIds[1], r.tokenIds[300], r.tokenIds[301]]).toEqual([151652, 151656, 151656, 151653]);
  });
});

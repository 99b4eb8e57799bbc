import { copyFileSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PromptError, PromptService, TokenizerPool, type PromptErrorCode } from '../../../src/prompt/index.js';
import { QWEN2_VL, QWEN3, QWEN_TOKENIZER_DIR, dataUrl, imageBytes, imagePart, textPart } from './helpers.js';

let svc: PromptService;
let pool: TokenizerPool;
let tmp: string;

beforeAll(async () => {
  pool = new TokenizerPool({ size: 1 });
  // A model directory whose own chat_template.jinja (which wins over tokenizer_config.json) raises on long chats.
  tmp = mkdtempSync(join(tmpdir(), 'prompt-model-'));
  symlinkSync(`${QWEN_TOKENIZER_DIR}tokenizer.json`, join(tmp, 'tokenizer.json'));
  copyFileSync(`${QWEN_TOKENIZER_DIR}tokenizer_config.json`, join(tmp, 'tokenizer_config.json'));
  writeFileSync(
    join(tmp, 'chat_template.jinja'),
    "{% if messages|length > 1 %}{{ raise_exception('only one message, please') }}{% endif %}[{{ messages[0].content }}]",
  );
  svc = await PromptService.create({
    pool,
    keys: { blockSize: 16, hashSeed: '' },
    registry: {
      models: [
        { ...QWEN2_VL, limits: { maxImages: 2, maxTokens: 2000 } },
        QWEN3,
        { name: 'Qwen/Qwen3-8B-vision', dir: QWEN3.dir, image: { strategy: 'qwen2-vl' } },
        { name: 'strict-template', dir: tmp },
      ],
    },
  });
});
afterAll(async () => {
  await svc?.close();
  await pool?.close();
  rmSync(tmp, { recursive: true, force: true });
});

/** A PNG whose IHDR says width×height (the rest of the file is the 70×70 fixture). */
function pngHeader(width: number, height: number): string {
  const b = Buffer.from(imageBytes('grey-70x70.png'));
  b.writeUInt32BE(width, 16);
  b.writeUInt32BE(height, 20);
  return `data:image/png;base64,${b.toString('base64')}`;
}

const user = (content: unknown) => ({ model: QWEN2_VL.name, messages: [{ role: 'user', content }] });
const img = (url: string, extra: Record<string, unknown> = {}) => user([textPart('look'), imagePart(url, extra)]);
const IMG = 'messages[0].content[1]';

async function expectError(
  request: unknown,
  code: PromptErrorCode,
  field: string | undefined,
  pattern: RegExp,
): Promise<void> {
  const err = await svc.prepare(request).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err, 'expected a PromptError').toBeInstanceOf(PromptError);
  expect({ code: (err as PromptError).code, field: (err as PromptError).field }).toEqual({ code, field: field ?? '' }); // '' = the whole request (src/common/errors.ts)
  expect((err as Error).message).toMatch(pattern);
}

describe('bad input → one PromptError naming the field', () => {
  it.each<[string, unknown, PromptErrorCode, string | undefined, RegExp]>([
    [
      'unknown model (lists the known ones)',
      { model: 'nope', prompt: 'x' },
      'not_found',
      'model',
      /unknown model "nope"; known models: Qwen\/Qwen2-VL-2B-Instruct, Qwen\/Qwen3-8B, Qwen\/Qwen3-8B-vision, sql-adapter, strict-template/,
    ],
    ['model not a string', { model: 3, prompt: 'x' }, 'invalid_argument', 'model', /non-empty string/],
    [
      'unknown LoRA adapter',
      { model: QWEN3.name, lora: 'other', prompt: 'x' },
      'not_found',
      'lora',
      /unknown LoRA adapter "other".*known: sql-adapter/,
    ],
    ['not an object', 'hello', 'invalid_argument', undefined, /JSON object/],
    ['no prompt at all', { model: QWEN3.name }, 'invalid_argument', undefined, /exactly one of/],
    ['two prompts', { model: QWEN3.name, prompt: 'x', messages: [] }, 'invalid_argument', undefined, /exactly one of/],
    [
      'messages not an array',
      { model: QWEN3.name, messages: { role: 'user' } },
      'invalid_argument',
      'messages',
      /non-empty array/,
    ],
    ['empty messages', { model: QWEN3.name, messages: [] }, 'invalid_argument', 'messages', /non-empty array/],
    [
      'message not an object',
      { model: QWEN3.name, messages: ['hi'] },
      'invalid_argument',
      'messages[0]',
      /must be an object/,
    ],
    [
      'role of the wrong type',
      { model: QWEN3.name, messages: [{ role: 1, content: 'x' }] },
      'invalid_argument',
      'messages[0].role',
      /non-empty string/,
    ],
    [
      'missing content',
      { model: QWEN3.name, messages: [{ role: 'system', content: 'x' }, { role: 'user' }] },
      'invalid_argument',
      'messages[1].content',
      /missing content/,
    ],
    [
      'content of the wrong type',
      user(42),
      'invalid_argument',
      'messages[0].content',
      /string, an array of parts, or null/,
    ],
    [
      'part not an object',
      user([textPart('a'), 'b']),
      'invalid_argument',
      'messages[0].content[1]',
      /must be an object/,
    ],
    [
      'text part without text',
      user([{ type: 'text', content: 'a' }]),
      'invalid_argument',
      'messages[0].content[0].text',
      /must be a string/,
    ],
    [
      'unknown part type',
      user([textPart('a'), { type: 'input_audio', input_audio: {} }]),
      'invalid_argument',
      `${IMG}.type`,
      /unknown content part type "input_audio"/,
    ],
    [
      'image_url missing',
      user([textPart('a'), { type: 'image_url' }]),
      'invalid_argument',
      `${IMG}.image_url`,
      /image_url must be an object/,
    ],
    [
      'image url not a string',
      user([textPart('a'), { type: 'image_url', image_url: { url: 5 } }]),
      'invalid_argument',
      `${IMG}.image_url`,
      /non-empty string/,
    ],
    ['bad base64', img('data:image/png;base64,@@@@'), 'invalid_argument', `${IMG}.image_url`, /not valid base64/],
    [
      'unknown image format',
      img(`data:image/bmp;base64,${Buffer.from('BM' + 'x'.repeat(30)).toString('base64')}`),
      'invalid_argument',
      `${IMG}.image_url`,
      /unknown image format/,
    ],
    [
      'truncated image',
      img(`data:image/png;base64,${imageBytes('grey-640x480.png').subarray(0, 16).toString('base64')}`),
      'invalid_argument',
      `${IMG}.image_url`,
      /truncated PNG/,
    ],
    ['zero width', img(pngHeader(0, 70)), 'invalid_argument', `${IMG}.image_url`, /zero dimension/],
    [
      'oversized side',
      img(pngHeader(70_000, 10)),
      'invalid_argument',
      `${IMG}.image_url`,
      /exceeds 65500 pixels per side/,
    ],
    [
      'oversized area',
      img(pngHeader(20_000, 20_000)),
      'invalid_argument',
      `${IMG}.image_url`,
      /exceeds 178956970 pixels/,
    ],
    ['aspect ratio over 200', img(pngHeader(10, 2010)), 'invalid_argument', `${IMG}.image_url`, /aspect ratio/],
    [
      'unsupported url scheme',
      img('file:///etc/passwd'),
      'invalid_argument',
      `${IMG}.image_url`,
      /data: URL or an http\(s\) URL/,
    ],
    [
      'http image without a size and no default',
      img('https://example.com/a.png'),
      'invalid_argument',
      `${IMG}.image_url`,
      /no default image size/,
    ],
    [
      'http image with only a width',
      img('https://example.com/a.png', { width: 10 }),
      'invalid_argument',
      `${IMG}.image_url`,
      /both width and height/,
    ],
    [
      'negative width',
      img('https://example.com/a.png', { width: -1, height: 5 }),
      'invalid_argument',
      `${IMG}.width`,
      /positive integer/,
    ],
    ['empty uuid', img(dataUrl('grey-70x70.png'), { uuid: '' }), 'invalid_argument', `${IMG}.uuid`, /non-empty string/],
    [
      'too many images',
      user([
        imagePart(dataUrl('grey-70x70.png')),
        imagePart(dataUrl('grey-70x70.png')),
        imagePart(dataUrl('grey-70x70.png')),
      ]),
      'resource_exhausted',
      'messages[0].content[2].image_url',
      /3 images, more than the limit of 2/,
    ],
    [
      'prompt over the token limit',
      user([textPart('word '.repeat(2500))]),
      'resource_exhausted',
      'messages',
      /more than the limit of 2000/,
    ],
    [
      'completion over the token limit',
      { model: QWEN2_VL.name, prompt: 'word '.repeat(2500) },
      'resource_exhausted',
      'prompt',
      /limit of 2000/,
    ],
    [
      'placeholder token typed by the user next to an image',
      user([textPart('<|image_pad|>'), imagePart(dataUrl('grey-70x70.png'))]),
      'invalid_argument',
      'messages',
      /2 image placeholder\(s\) for 1 image/,
    ],
    [
      'more typed placeholders than images (string content format)',
      {
        model: 'Qwen/Qwen3-8B-vision',
        messages: [
          {
            role: 'user',
            content: [
              textPart('<|vision_start|><|image_pad|><|vision_end|> twice <|vision_start|><|image_pad|><|vision_end|>'),
              imagePart(dataUrl('grey-70x70.png')),
            ],
          },
        ],
      },
      'invalid_argument',
      'messages',
      /more "<\|vision_start\|><\|image_pad\|><\|vision_end\|>" placeholders in the text than images/,
    ],
    [
      'tool call arguments not JSON',
      {
        model: QWEN3.name,
        messages: [
          { role: 'user', content: 'x' },
          { role: 'assistant', tool_calls: [{ type: 'function', function: { name: 'f', arguments: '{oops' } }] },
        ],
      },
      'invalid_argument',
      'messages[1].tool_calls[0].function.arguments',
      /JSON/,
    ],
    [
      'tool calls on a user message',
      { model: QWEN3.name, messages: [{ role: 'user', content: 'x', tool_calls: [] }] },
      'invalid_argument',
      'messages[0].tool_calls',
      /only assistant/,
    ],
    [
      'add_generation_prompt with continue_final_message',
      { model: QWEN3.name, messages: [{ role: 'user', content: 'x' }], continue_final_message: true },
      'invalid_argument',
      'continue_final_message',
      /add_generation_prompt/,
    ],
    [
      'add_generation_prompt not a boolean',
      { model: QWEN3.name, messages: [{ role: 'user', content: 'x' }], add_generation_prompt: 'yes' },
      'invalid_argument',
      'add_generation_prompt',
      /boolean/,
    ],
    [
      'chat_template_kwargs not an object',
      { model: QWEN3.name, messages: [{ role: 'user', content: 'x' }], chat_template_kwargs: [1] },
      'invalid_argument',
      'chat_template_kwargs',
      /object/,
    ],
    [
      'template raises',
      {
        model: 'strict-template',
        messages: [
          { role: 'user', content: 'a' },
          { role: 'user', content: 'b' },
        ],
      },
      'invalid_argument',
      'messages',
      /only one message, please/,
    ],
    [
      'bad token id',
      { model: QWEN3.name, prompt_token_ids: [1, -2] },
      'invalid_argument',
      'prompt_token_ids[1]',
      /uint32/,
    ],
    [
      'item beyond the tokens',
      { model: QWEN3.name, prompt_token_ids: [1, 2, 3], mm_items: [{ offset: 2, length: 5, identifier: 'x' }] },
      'invalid_argument',
      'mm_items[0]',
      /beyond the 3 tokens/,
    ],
    [
      'item without identifier',
      { model: QWEN3.name, prompt_token_ids: [1, 2, 3], mm_items: [{ offset: 0, length: 1 }] },
      'invalid_argument',
      'mm_items[0].identifier',
      /non-empty/,
    ],
    [
      'empty cache salt',
      { model: QWEN3.name, prompt: 'x', cache_salt: '' },
      'invalid_argument',
      'cache_salt',
      /non-empty/,
    ],
    [
      'bad mm_processor_kwargs',
      { ...img(dataUrl('grey-70x70.png')), mm_processor_kwargs: { max_pixels: 'big' } },
      'invalid_argument',
      'mm_processor_kwargs.max_pixels',
      /positive integer/,
    ],
  ])('%s', async (_name, request, code, field, pattern) => {
    await expectError(request, code, field, pattern);
  });

  it('the model directory’s chat_template.jinja wins over tokenizer_config.json', async () => {
    const r = await svc.prepare({ model: 'strict-template', messages: [{ role: 'user', content: 'only' }] });
    expect(r.text).toBe('[only]');
  });

  it('a chat far over the token limit is refused after about the limit’s worth of tokenizing, not all of it', async () => {
    // 40 messages of 50k characters (~2M characters, ~450k tokens) against a limit of 2,000 tokens.
    const messages = Array.from({ length: 40 }, (_, i) => ({
      role: i % 2 ? 'assistant' : 'user',
      content: `${i} ${'many words here '.repeat(3_125)}`,
    }));
    const sentBefore = pool.encodedChars;
    await expectError(
      { model: QWEN2_VL.name, messages },
      'resource_exhausted',
      'messages',
      /^messages: prompt has at least \d+ tokens, more than the limit of 2000$/,
    );
    const sent = pool.encodedChars - sentBefore;
    const rendered = messages.reduce((n, m) => n + m.content.length, 0);
    // One wave of 256 Ki characters (whole chunks: up to one more message) is enough to know.
    expect(sent).toBeGreaterThan(0);
    expect(sent).toBeLessThan(256 * 1024 + 2 * 50_100);
    expect(rendered).toBeGreaterThan(5 * sent);
  });

  it('a request given as objects nested past 512 levels is refused the same way every time, naming the field', async () => {
    // Found by test/fuzz/prompt-input.test.ts: chat_template_kwargs 4,619 levels deep overflowed the stack on the
    // first call ('chat template rejected the conversation: Maximum call stack size exceeded') and was prepared on
    // the retry, once the render code was optimised into smaller frames. JSON text was already bounded by its parser.
    let deep: unknown = 'x';
    for (let i = 0; i < 5_000; i++) deep = { content: deep };
    for (const field of ['chat_template_kwargs', 'mm_processor_kwargs', 'tools']) {
      for (let attempt = 0; attempt < 2; attempt++) {
        await expectError(
          {
            model: QWEN2_VL.name,
            messages: [{ role: 'user', content: 'hi' }],
            [field]: field === 'tools' ? [deep] : deep,
          },
          'invalid_argument',
          field,
          new RegExp(`^${field}: nested deeper than 512 levels$`),
        );
      }
    }
    await expectError(
      user([{ type: 'text', text: 'hi', extra: deep }]),
      'invalid_argument',
      'messages',
      /^messages: nested deeper than 512 levels$/,
    );
    // 500 levels are within the bound: prepared, as the same chat without the kwarg (the template never reads it).
    let ok: unknown = 'x';
    for (let i = 0; i < 500; i++) ok = { content: ok };
    const chat = { model: QWEN2_VL.name, messages: [{ role: 'user', content: 'hi' }] };
    const r = await svc.prepare({ ...chat, chat_template_kwargs: ok });
    expect(Array.from(r.tokenIds)).toEqual(Array.from((await svc.prepare(chat)).tokenIds));
  });

  it('a failed request leaves the cache as it was', async () => {
    const cache = svc.registry.cache!;
    const before = cache.size;
    await expectError(
      user([textPart('fresh words '.repeat(1500)), imagePart('data:image/png;base64,@@@@')]),
      'invalid_argument',
      `${IMG}.image_url`,
      /base64/,
    );
    await expectError(user([textPart('other fresh words '.repeat(1500))]), 'resource_exhausted', 'messages', /limit/);
    expect(cache.size).toBe(before);
  });
});

describe('registry configuration errors', () => {
  it('an invalid configuration lists its problems', async () => {
    await expect(
      PromptService.create({ pool, keys: { blockSize: 16, hashSeed: '' }, registry: { models: [] } }),
    ).rejects.toMatchObject({ code: 'failed_precondition', message: expect.stringMatching(/models/) });
  });

  it('a directory without tokenizer.json', async () => {
    await expect(
      PromptService.create({
        pool,
        keys: { blockSize: 16, hashSeed: '' },
        registry: { models: [{ name: 'x', dir: '/nonexistent' }] },
      }),
    ).rejects.toThrow(/no tokenizer.json/);
  });

  it('a name configured twice', async () => {
    await expect(
      PromptService.create({
        pool,
        keys: { blockSize: 16, hashSeed: '' },
        registry: { models: [QWEN3, { name: 'sql-adapter', dir: QWEN3.dir }] },
      }),
    ).rejects.toThrow(/configured twice/);
  });

  it('an unknown identifier hash', async () => {
    await expect(
      PromptService.create({
        pool,
        keys: { blockSize: 16, hashSeed: '' },
        registry: { models: [QWEN3], identifierHash: 'nohash' },
      }),
    ).rejects.toThrow(/unknown identifier hash/);
  });
});

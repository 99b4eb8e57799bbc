import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import tokenizers from 'tokenizers';
import { blockExtras } from '../../../src/keys/index.js';
import { PromptService, type PromptRequest } from '../../../src/prompt/index.js';
import {
  QWEN2_VL,
  QWEN25_VL,
  QWEN3,
  QWEN3_VL,
  QWEN_TOKENIZER_DIR,
  dataUrl,
  imageBytes,
  imagePart,
  textPart,
} from './helpers.js';

let svc: PromptService;
let rust: tokenizers.Tokenizer;
const rustIds = async (text: string, special = false) =>
  (await rust.encode(text, null, { addSpecialTokens: special })).getIds();

const QWEN3_IMAGES = { name: 'qwen3-with-images', dir: QWEN3.dir, image: { strategy: 'qwen2-vl' as const } };

beforeAll(async () => {
  svc = await PromptService.create({
    keys: { blockSize: 16, hashSeed: '' },
    registry: {
      workers: 2,
      models: [
        QWEN2_VL,
        { ...QWEN25_VL, image: { ...QWEN25_VL.image, defaultWidth: 1024, defaultHeight: 768 } },
        QWEN3_VL,
        QWEN3,
        QWEN3_IMAGES,
      ],
    },
  });
  rust = tokenizers.Tokenizer.fromFile(`${QWEN_TOKENIZER_DIR}tokenizer.json`);
});
afterAll(() => svc?.close());

const PAD = 151655;
const chat = (model: string, messages: unknown[], extra: Partial<PromptRequest> = {}): PromptRequest => ({
  model,
  messages,
  ...extra,
});

describe('Qwen2-VL chat with one image (spec worked check)', () => {
  it('"What is in this image?" + 640×480 → 418 tokens, placeholder at 15 of length 391', async () => {
    const r = await svc.keys(
      chat(QWEN2_VL.name, [
        { role: 'user', content: [imagePart(dataUrl('grey-640x480.png')), textPart('What is in this image?')] },
      ]),
    );
    expect(r.text).toBe(
      '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n' +
        '<|vision_start|><|image_pad|><|vision_end|>What is in this image?<|im_end|>\n<|im_start|>assistant\n',
    );
    expect(r.tokenIds.length).toBe(418);
    expect([...r.tokenIds.subarray(0, 15)]).toEqual([
      151644, 8948, 198, 2610, 525, 264, 10950, 17847, 13, 151645, 198, 151644, 872, 198, 151652,
    ]);
    expect(r.tokenIds.subarray(15, 406).every((t) => t === PAD)).toBe(true);
    expect([...r.tokenIds.subarray(406)]).toEqual([
      151653, 3838, 374, 304, 419, 2168, 30, 151645, 198, 151644, 77091, 198,
    ]);
    const sha = createHash('sha256').update(imageBytes('grey-640x480.png')).digest('hex');
    expect(r.items).toEqual([
      {
        offset: 15,
        length: 391,
        identifier: sha,
        estimated: false,
        field: 'messages[0].content[0].image_url',
        width: 640,
        height: 480,
        identifierSource: 'content-hash',
        fetchOutcome: null,
      },
    ]);
    // Blocks 0..25 (tokens 0..415) : blocks 0 (0-15) through 25 overlap [15, 406); the 2 trailing tokens form no block.
    expect(r.blockKeys.length).toBe(26);
    expect(r.extras).toEqual(blockExtras(r.items, 418, 16, null));
    expect(r.extras!.map((e) => (e ? e.length : 0))).toEqual([
      ...new Array(26).fill(0).map((_, b) => (b * 16 < 406 && b * 16 + 16 > 15 ? 1 : 0)),
    ]);
    expect(r.extras![25]).toEqual([sha]); // tokens 400..415 still overlap the pads (they end at 406)
    expect([...r.blockKeys]).toEqual([...svc.hasher.keysFor(QWEN2_VL.name, r.tokenIds, r.extras)]);
  });
});

describe('several images across turns', () => {
  const messages = [
    { role: 'user', content: [textPart('Compare:'), imagePart(dataUrl('grey-70x70.png'), { uuid: 'img-a' })] },
    { role: 'assistant', content: 'Both are grey.' },
    {
      role: 'user',
      content: [
        imagePart(dataUrl('grey-1024x768.jpg', 'image/jpeg')),
        imagePart(dataUrl('solid-100x100.webp', 'image/webp'), { identifier: 'caller-id' }),
        textPart('And these?'),
      ],
    },
  ];

  it('renders, expands each image by its size and taints the blocks each item overlaps (Qwen2-VL)', async () => {
    const r = await svc.keys(chat(QWEN2_VL.name, messages));
    const text =
      '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nCompare:<|vision_start|><|image_pad|><|vision_end|><|im_end|>\n' +
      '<|im_start|>assistant\nBoth are grey.<|im_end|>\n<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|><|vision_start|><|image_pad|><|vision_end|>' +
      'And these?<|im_end|>\n<|im_start|>assistant\n';
    expect(r.text).toBe(text);
    const rendered = await rustIds(text);
    const counts = [4, 999, 16];
    const expected: number[] = [];
    const ranges: { offset: number; length: number }[] = [];
    let k = 0;
    for (const t of rendered) {
      if (t === PAD) {
        ranges.push({ offset: expected.length, length: counts[k] });
        for (let i = 0; i < counts[k]; i++) expected.push(PAD);
        k++;
      } else expected.push(t);
    }
    expect([...r.tokenIds]).toEqual(expected);
    expect(r.items.map((i) => ({ offset: i.offset, length: i.length }))).toEqual(ranges);
    expect(r.items.map((i) => [i.identifier, i.identifierSource])).toEqual([
      ['img-a', 'uuid'],
      [createHash('sha256').update(imageBytes('grey-1024x768.jpg')).digest('hex'), 'content-hash'],
      ['caller-id', 'caller'],
    ]);
    // Every block overlapping an item lists exactly the items it overlaps, in offset order.
    const n = Math.floor(r.tokenIds.length / 16);
    for (let b = 0; b < n; b++) {
      const ids = r.items
        .filter((i) => i.offset < (b + 1) * 16 && i.offset + i.length > b * 16)
        .map((i) => i.identifier);
      expect(r.extras![b]).toEqual(ids.length ? ids : null);
    }
    // The block holding the end of the 1024×768 image and the start of the 100×100 one carries both.
    expect(r.extras!.some((e) => e?.length === 2)).toBe(true);
  });

  it('Qwen3-VL (factor 32) expands the same chat to 64 + 768 + 64 pads', async () => {
    const r = await svc.prepare(chat(QWEN3_VL.name, messages));
    expect(r.items.map((i) => i.length)).toEqual([64, 768, 64]);
    const one = await svc.prepare(
      chat(QWEN3_VL.name, [
        { role: 'user', content: [imagePart(dataUrl('grey-640x480.png')), textPart('What is in this image?')] },
      ]),
    );
    expect(one.items.map((i) => [i.offset, i.length])).toEqual([[15, 300]]);
    expect(one.tokenIds.length).toBe(15 + 300 + 12);
  });

  it('Qwen2.5-VL 70×70 → 4 pads (round half to even)', async () => {
    const r = await svc.prepare(
      chat(QWEN25_VL.name, [{ role: 'user', content: [imagePart(dataUrl('grey-70x70.png'))] }]),
    );
    expect(r.items[0].length).toBe(4);
  });

  it('mm_processor_kwargs change the pixel bounds per request', async () => {
    const r = await svc.prepare(
      chat(QWEN2_VL.name, [{ role: 'user', content: [imagePart(dataUrl('grey-1024x768.jpg'))] }], {
        mm_processor_kwargs: { max_pixels: 200704 },
      }),
    );
    expect(r.items[0].length).toBe(234); // smart_resize(768, 1024, max 200704) = 364×504 → 13×18 (Python)
  });
});

describe('http(s) images', () => {
  it('uses caller-supplied width/height, exact', async () => {
    const url = 'https://example.com/cat.png';
    const r = await svc.prepare(
      chat(QWEN2_VL.name, [
        { role: 'user', content: [{ type: 'image_url', image_url: { url }, width: 640, height: 480 }] },
      ]),
    );
    expect(r.items[0]).toMatchObject({
      length: 391,
      estimated: false,
      width: 640,
      height: 480,
      identifier: createHash('sha256').update(url).digest('hex'),
    });
  });

  it("falls back to the model's default size and flags the item estimated", async () => {
    const r = await svc.prepare(
      chat(QWEN25_VL.name, [{ role: 'user', content: [imagePart('https://example.com/cat.png', { uuid: 'u-1' })] }]),
    );
    expect(r.items[0]).toMatchObject({ length: 999, estimated: true, width: 1024, height: 768, identifier: 'u-1' });
  });
});

describe('templates, roles and options', () => {
  it('string content format (text-only template): placeholders are prepended on their own line, as vLLM does', async () => {
    const r = await svc.prepare(
      chat('qwen3-with-images', [
        { role: 'user', content: [textPart('What is this?'), imagePart(dataUrl('grey-70x70.png'))] },
      ]),
    );
    expect(r.text).toBe(
      '<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>\nWhat is this?<|im_end|>\n<|im_start|>assistant\n',
    );
    expect(r.items.map((i) => [i.offset, i.length])).toEqual([[4, 4]]);
  });

  it('system/user/assistant/tool roles with tools and tool calls (Qwen3 template)', async () => {
    const tools = [
      {
        type: 'function',
        function: {
          name: 'get_weather',
          description: 'Weather by city',
          parameters: { type: 'object', properties: { city: { type: 'string' } } },
        },
      },
    ];
    const r = await svc.prepare(
      chat(
        QWEN3.name,
        [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: 'Weather in Paris?' },
          {
            role: 'assistant',
            content: null,
            tool_calls: [
              { id: 'c1', type: 'function', function: { name: 'get_weather', arguments: '{"city": "Paris"}' } },
            ],
          },
          { role: 'tool', tool_call_id: 'c1', content: '{"temp": 21}' },
        ],
        { tools, chat_template_kwargs: { enable_thinking: false } },
      ),
    );
    const expectedText =
      '<|im_start|>system\nBe brief.\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n' +
      'You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n' +
      '{"type": "function", "function": {"name": "get_weather", "description": "Weather by city", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}' +
      '\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n' +
      '<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call><|im_end|>\n' +
      '<|im_start|>user\nWeather in Paris?<|im_end|>\n' +
      '<|im_start|>assistant\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call><|im_end|>\n' +
      '<|im_start|>user\n<tool_response>\n{"temp": 21}\n</tool_response><|im_end|>\n' +
      '<|im_start|>assistant\n<think>\n\n</think>\n\n';
    expect(r.text).toBe(expectedText);
    expect([...r.tokenIds]).toEqual(await rustIds(expectedText));
  });

  it('add_generation_prompt=false and continue_final_message', async () => {
    const messages = [
      { role: 'user', content: 'Say hi' },
      { role: 'assistant', content: 'Hi, I am ' },
    ];
    const noGen = await svc.prepare(chat(QWEN3.name, messages.slice(0, 1), { add_generation_prompt: false }));
    expect(noGen.text).toBe('<|im_start|>user\nSay hi<|im_end|>\n');
    const cont = await svc.prepare(
      chat(QWEN3.name, messages, { add_generation_prompt: false, continue_final_message: true }),
    );
    // The Qwen3 template adds an empty think block to the final assistant turn; the text is cut right after the
    // final message, keeping its trailing space (transformers' rule).
    expect(cont.text).toBe(
      '<|im_start|>user\nSay hi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nHi, I am ',
    );
    expect([...cont.tokenIds]).toEqual(await rustIds(cont.text!));
  });

  it('assistant reasoning reaches the template as reasoning_content; empty tool-call arguments become {}', async () => {
    const r = await svc.prepare(
      chat(
        QWEN3.name,
        [
          { role: 'user', content: [{ type: 'input_text', text: 'Hi' }] },
          {
            role: 'assistant',
            content: 'Hello!',
            reasoning: 'greet back',
            tool_calls: [{ type: 'function', function: { name: 'wave', arguments: '' } }],
          },
        ],
        { add_generation_prompt: false },
      ),
    );
    expect(r.text).toBe(
      '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\ngreet back\n</think>\n\nHello!\n<tool_call>\n{"name": "wave", "arguments": {}}\n</tool_call><|im_end|>\n',
    );
  });

  it('exact ids of a plain text chat', async () => {
    const r = await svc.prepare(chat(QWEN3.name, [{ role: 'user', content: 'Hello, world! 你好' }]));
    expect([...r.tokenIds]).toEqual([
      151644, 872, 198, 9707, 11, 1879, 0, 220, 108386, 151645, 198, 151644, 77091, 198,
    ]);
  });

  it('completion prompts are tokenized as given (Qwen adds no BOS)', async () => {
    const r = await svc.prepare({ model: QWEN3.name, prompt: 'def f(x):\n    return x * 2\n' });
    expect(r.kind).toBe('completion');
    expect([...r.tokenIds]).toEqual(await rustIds('def f(x):\n    return x * 2\n', true));
  });
});

describe('keys: LoRA and cache salt', () => {
  const req = { model: QWEN3.name, messages: [{ role: 'user', content: 'x'.repeat(100) }] };

  it('a LoRA adapter name replaces the model in the root, by model name or by the lora field', async () => {
    const base = await svc.keys(req);
    const byName = await svc.keys({ ...req, model: 'sql-adapter' });
    const byField = await svc.keys({ ...req, lora: 'sql-adapter' });
    expect(byName.keyModel).toBe('sql-adapter');
    expect(byName.model).toBe(QWEN3.name);
    expect([...byName.tokenIds]).toEqual([...base.tokenIds]);
    expect([...byField.blockKeys]).toEqual([...byName.blockKeys]);
    expect([...byName.blockKeys]).toEqual([...svc.hasher.keysFor('sql-adapter', base.tokenIds)]);
    expect(byName.blockKeys[0]).not.toBe(base.blockKeys[0]);
  });

  it('the cache salt goes into block 0 only', async () => {
    const salted = await svc.keys({ ...req, cache_salt: 'tenant-a' });
    expect(salted.extras![0]).toEqual(['tenant-a']);
    expect(salted.extras!.slice(1).every((e) => e === null)).toBe(true);
    const plain = await svc.keys(req);
    expect(salted.blockKeys[0]).not.toBe(plain.blockKeys[0]);
  });
});

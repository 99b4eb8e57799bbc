import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import tokenizers from 'tokenizers';
import { PromptService } from '../../../src/prompt/index.js';
import { GEMMA3, GEMMA_TOKENIZER_DIR, corpus, dataUrl, imagePart, textPart } from './helpers.js';

let svc: PromptService;
let rust: tokenizers.Tokenizer;
const rustIds = async (text: string, special = false) =>
  (await rust.encode(text, null, { addSpecialTokens: special })).getIds();

const GEMMA4 = { name: 'gemma4-like', dir: GEMMA3.dir, image: { strategy: 'gemma4' as const } };
const BOI = 255999;
const SOFT = 262144;
const EOI = 256000;
// vLLM's replacement text for one Gemma 3 image; tokenizing the text with it in place is what the merge reproduces.
const GEMMA3_IMAGE_TEXT = `\n\n<start_of_image>${'<image_soft_token>'.repeat(256)}<end_of_image>\n\n`;

beforeAll(async () => {
  svc = await PromptService.create({
    keys: { blockSize: 16, hashSeed: '' },
    registry: { workers: 1, models: [GEMMA3, GEMMA4] },
  });
  rust = tokenizers.Tokenizer.fromFile(`${GEMMA_TOKENIZER_DIR}tokenizer.json`);
});
afterAll(() => svc?.close());

describe('Gemma 3 (fixed 256, newline merging)', () => {
  it('system + image first: "\\n" from the template merges with the replacement\'s "\\n\\n"', async () => {
    const r = await svc.keys({
      model: GEMMA3.name,
      messages: [
        { role: 'system', content: 'Be brief.' },
        {
          role: 'user',
          content: [imagePart(dataUrl('grey-640x480.png'), { uuid: 'g-1' }), textPart(' Describe it. ')],
        },
      ],
    });
    const text =
      '<bos><start_of_turn>user\nBe brief.\n\n<start_of_image>Describe it.<end_of_turn>\n<start_of_turn>model\n';
    expect(r.text).toBe(text);
    const expected = await rustIds(text.replace('<start_of_image>', GEMMA3_IMAGE_TEXT));
    expect([...r.tokenIds]).toEqual(expected);
    // "Be brief." then "\n\n" (template) + "\n\n" (replacement) became one "\n\n\n\n" token (110), which opens the range.
    const at = r.items[0].offset;
    expect(r.tokenIds[at]).toBe(110);
    expect(r.items[0]).toMatchObject({ length: 260, identifier: 'g-1' });
    expect([...r.tokenIds.subarray(at + 1, at + 3)]).toEqual([BOI, SOFT]);
    expect(r.tokenIds[at + 258]).toBe(EOI);
    expect(r.tokenIds[at + 259]).toBe(108);
    expect([...r.tokenIds.subarray(0, 4)]).toEqual([2, 105, 2364, 107]);
  });

  it('image right after "user\\n" → "\\n\\n\\n" (109) opens the range; two adjacent images meet in "\\n\\n\\n\\n"', async () => {
    const r = await svc.prepare({
      model: GEMMA3.name,
      messages: [
        {
          role: 'user',
          content: [imagePart(dataUrl('grey-70x70.png')), imagePart(dataUrl('dots-64x48.gif')), textPart('Same?')],
        },
      ],
    });
    const text = '<bos><start_of_turn>user\n<start_of_image><start_of_image>Same?<end_of_turn>\n<start_of_turn>model\n';
    expect(r.text).toBe(text);
    expect([...r.tokenIds]).toEqual(await rustIds(text.replaceAll('<start_of_image>', GEMMA3_IMAGE_TEXT)));
    expect(r.items.map((i) => [i.offset, i.length])).toEqual([
      [3, 260],
      [262, 260],
    ]);
    expect(r.tokenIds[3]).toBe(109);
    expect(r.tokenIds[262]).toBe(110);
    expect(r.tokenIds.length).toBe(
      3 + 259 + 259 + 1 + (await rustIds('Same?<end_of_turn>\n<start_of_turn>model\n')).length,
    );
  });

  it('chat requests add no special tokens unless add_special_tokens is set (then <bos> appears twice, as in vLLM)', async () => {
    const messages = [{ role: 'user', content: 'Hi' }];
    const plain = await svc.prepare({ model: GEMMA3.name, messages });
    const doubled = await svc.prepare({ model: GEMMA3.name, messages, add_special_tokens: true });
    expect([...plain.tokenIds]).toEqual([2, 105, 2364, 107, 10979, 106, 107, 105, 4368, 107]);
    expect([...plain.tokenIds]).toEqual(await rustIds(plain.text!));
    expect([...doubled.tokenIds]).toEqual([2, ...plain.tokenIds]);
  });

  it('completion prompts get <bos> from add_special_tokens (default true)', async () => {
    const withBos = await svc.prepare({ model: GEMMA3.name, prompt: 'Hello world' });
    expect([...withBos.tokenIds]).toEqual(await rustIds('Hello world', true));
    expect(withBos.tokenIds[0]).toBe(2);
    const without = await svc.prepare({ model: GEMMA3.name, prompt: 'Hello world', add_special_tokens: false });
    expect([...without.tokenIds]).toEqual([...withBos.tokenIds.subarray(1)]);
  });
});

describe('Gemma 4 rule (budgets; token strings from tokenizer_config)', () => {
  const req = (extra: Record<string, unknown> = {}) => ({
    model: GEMMA4.name,
    messages: [{ role: 'user', content: [imagePart(dataUrl('grey-1024x768.jpg'))] }],
    ...extra,
  });

  it('1024×768 at the default budget 280 → 266 soft tokens; the range covers begin + N + end', async () => {
    const r = await svc.prepare(req());
    expect(r.items[0].length).toBe(268);
    const at = r.items[0].offset;
    expect(r.tokenIds[at]).toBe(BOI);
    expect(r.tokenIds.subarray(at + 1, at + 267).every((t) => t === SOFT)).toBe(true);
    expect(r.tokenIds[at + 267]).toBe(EOI);
    expect(r.tokenIds[at - 1]).toBe(107); // no newline wrapping or merging for Gemma 4
  });

  it('per-request max_soft_tokens budgets', async () => {
    const lengths = [];
    for (const b of [70, 140, 560, 1120])
      lengths.push((await svc.prepare(req({ mm_processor_kwargs: { max_soft_tokens: b } }))).items[0].length - 2);
    expect(lengths).toEqual([63, 130, 540, 1064]);
    await expect(svc.prepare(req({ mm_processor_kwargs: { max_soft_tokens: 100 } }))).rejects.toThrow(
      /max_soft_tokens must be one of/,
    );
  });
});

describe('parity with the Rust tokenizers binding (Gemma 3 tokenizer.json)', () => {
  it('the multi-language corpus, whole and line by line, with and without <bos>', async () => {
    const text = corpus();
    const lines = text.split('\n').filter(Boolean);
    const [whole, ...each] = await svc.registry.pool.encode(GEMMA3.dir, [text, ...lines], false);
    expect([...whole]).toEqual(await rustIds(text));
    for (let i = 0; i < lines.length; i++) expect([...each[i]], lines[i]).toEqual(await rustIds(lines[i]));
    const [withBos] = await svc.registry.pool.encode(GEMMA3.dir, [text], true);
    expect([...withBos]).toEqual(await rustIds(text, true));
  });
});

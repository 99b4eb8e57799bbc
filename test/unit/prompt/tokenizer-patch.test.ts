import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Tokenizer } from '@huggingface/tokenizers';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { TOKENIZER_PATCH_SOURCE } from '../../../src/prompt/tokenizer-patch.js';
import { TokenizerPool } from '../../../src/prompt/tokenizer-pool.js';

/**
 * The tokenizer speed-ups (src/prompt/tokenizer-patch.ts) must not change a single id: each fixture tokenizer, patched,
 * against the same tokenizer unpatched, on real documents, hostile Unicode, random text, and through the real pool.
 */

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const install = (0, eval)(TOKENIZER_PATCH_SOURCE) as (tokenizer: unknown) => number;

function load(model: string): Tokenizer {
  const dir = `${ROOT}fixtures/models/${model}`;
  return new Tokenizer(
    JSON.parse(readFileSync(`${dir}/tokenizer.json`, 'utf8')),
    JSON.parse(readFileSync(`${dir}/tokenizer_config.json`, 'utf8')),
  );
}

const documents = ['docs/architecture.md', 'README.md', 'src/keys/block-hasher.ts', 'docs/models.md'].map((f) =>
  readFileSync(`${ROOT}${f}`, 'utf8'),
);
const hostile = [
  '',
  ' ',
  '   leading and trailing   ',
  '\n\n\r\n\t\t  \n',
  'naïve café – “quotes” … 1234567890 3.14159',
  '日本語のテキストと中文字符，还有한국어 문장.',
  '😀👍🏽👩‍👩‍👧‍👦 emoji 🇫🇷 flags',
  'e\u0301 combining, \u200b zero width, \ufeff BOM, \u00a0 nbsp',
  'lone \ud800 high and \udc00 low surrogates',
  "it's they're we've I'm you'll he'd IT'S",
  '<|im_start|>user\nhello<|im_end|>\n<|vision_start|><|image_pad|><|vision_end|>',
  'x'.repeat(300) + ' ' + 'ab'.repeat(200),
  'function f(a, b) {\n  return a + b; // sum\n}\n',
];

describe.each([
  ['qwen2-vl', 5],
  ['qwen3', 5],
  ['qwen3-vl', 5],
  ['gemma3', 2],
])('%s', (model, steps) => {
  const plain = load(model);
  const patched = load(model);
  const replaced = install(patched);
  const same = (text: string, addSpecialTokens = false) => {
    const options = { add_special_tokens: addSpecialTokens };
    expect(patched.encode(text, options).ids).toEqual(plain.encode(text, options).ids);
  };

  it(`replaces ${steps} steps`, () => {
    expect(replaced).toBe(steps);
  });

  it('gives the same ids on documents, hostile Unicode and special tokens (with and without add_special_tokens)', () => {
    for (const text of [...documents, ...hostile]) {
      same(text);
      same(text, true);
    }
    // Twice: the second pass is served from the patch's caches.
    for (const text of hostile) same(text);
  });

  it('gives the same ids on random text', () => {
    const piece = fc.oneof(
      fc.string({ unit: 'grapheme', maxLength: 40 }),
      fc.string({ unit: 'binary', maxLength: 20 }),
      fc.constantFrom(' ', '\n', '\t', "'s", '<|im_end|>', '<start_of_turn>', '123', 'Hello', ' world'),
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 30 }), (pieces) => same(pieces.join(''))),
      { seed: 0x70c_0001, numRuns: 300 },
    );
  });
});

it('stays exact after its caches fill up and are cleared (more than 16,384 distinct pieces), and with pieces too long to cache', () => {
  const plain = load('qwen3');
  const patched = load('qwen3');
  install(patched);
  const text = [
    ...Array.from({ length: 20_000 }, (_, i) => `w${i.toString(36)}`),
    'x'.repeat(65),
    'abc'.repeat(40),
  ].join(' ');
  expect(patched.encode(text, { add_special_tokens: false }).ids).toEqual(
    plain.encode(text, { add_special_tokens: false }).ids,
  );
});

describe('in the tokenizer workers', () => {
  const pool = new TokenizerPool({ size: 2 });
  afterAll(() => pool.close());

  it('every worker runs the patched tokenizer and returns the library’s ids', async () => {
    const dir = `${ROOT}fixtures/models/qwen2-vl`;
    const description = await pool.describe(dir, []);
    expect(description.patchedSteps).toBe(5);
    const plain = load('qwen2-vl');
    const texts = [...documents, ...hostile];
    const [first, second] = await Promise.all([
      pool.encode(dir, texts, false),
      pool.encode(dir, texts.slice().reverse(), false),
    ]);
    texts.forEach((text, i) => {
      const expected = Uint32Array.from(plain.encode(text, { add_special_tokens: false }).ids);
      expect(first[i]).toEqual(expected);
      expect(second[texts.length - 1 - i]).toEqual(expected);
    });
  });
});

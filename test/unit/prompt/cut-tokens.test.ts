import { describe, expect, it } from 'vitest';
import { safeCutTokens } from '../../../src/prompt/model-tokenizer.js';

const tok = (
  content: string,
  extra: Partial<{ special: boolean; lstrip: boolean; singleWord: boolean; normalized: boolean }> = {},
) => ({
  id: 0,
  content,
  special: true,
  lstrip: false,
  rstrip: false,
  singleWord: false,
  normalized: false,
  ...extra,
});

describe('cache cut points', () => {
  it('keeps plain special tokens, longest first', () => {
    expect(safeCutTokens([tok('<|im_end|>'), tok('<|im_start|>'), tok('<s>')])).toEqual([
      '<|im_start|>',
      '<|im_end|>',
      '<s>',
    ]);
  });

  it('drops tokens that could change their neighbours or are matched in context', () => {
    const added = [
      tok('<a>', { lstrip: true }),
      tok('<b>', { singleWord: true }),
      tok('<c>', { normalized: true }),
      tok('<d>', { special: false }),
      tok('<e>', { lstrip: false }),
    ];
    expect(safeCutTokens(added)).toEqual(['<e>']);
  });

  it('drops tokens found inside, or straddling the end of, another added token', () => {
    const added = [
      tok('<x>'),
      tok('[<x>]', { special: false }),
      tok('<|im_start|>'),
      tok('ab<|im', { special: false }),
      tok('<ok>'),
    ];
    expect(safeCutTokens(added)).toEqual(['<ok>']);
  });
});

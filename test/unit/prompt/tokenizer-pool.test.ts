import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import tokenizers from 'tokenizers';
import { PromptError, PromptService, TokenizerPool } from '../../../src/prompt/index.js';
import { QWEN3, QWEN_TOKENIZER_DIR, corpus } from './helpers.js';

const DIR = QWEN3.dir;
let pool: TokenizerPool;
let rust: tokenizers.Tokenizer;
const rustIds = async (text: string, special = false) =>
  (await rust.encode(text, null, { addSpecialTokens: special })).getIds();

beforeAll(() => {
  pool = new TokenizerPool({ size: 2 });
  rust = tokenizers.Tokenizer.fromFile(`${QWEN_TOKENIZER_DIR}tokenizer.json`);
});
afterAll(() => pool?.close());

describe('parity with the Rust tokenizers binding (Qwen3 tokenizer.json)', () => {
  it('the multi-language corpus, whole and line by line', async () => {
    const text = corpus();
    const [whole] = await pool.encode(DIR, [text], false);
    expect(whole.length).toBeGreaterThan(3000);
    expect([...whole]).toEqual(await rustIds(text));
    const lines = text.split('\n').filter(Boolean);
    const mine = await pool.encode(DIR, lines, false);
    for (let i = 0; i < lines.length; i++) expect([...mine[i]], lines[i]).toEqual(await rustIds(lines[i]));
  });

  it('special tokens inside text are parsed as special tokens', async () => {
    const text = '<|im_start|>user\nHi<|im_end|>\n<|vision_start|><|image_pad|><|vision_end|><think>x</think>';
    const [ids] = await pool.encode(DIR, [text], false);
    expect([...ids]).toEqual(await rustIds(text));
    expect([...ids]).toEqual([151644, 872, 198, 13048, 151645, 198, 151652, 151655, 151653, 151667, 87, 151668]);
  });
});

describe('worker pool', () => {
  it('concurrent long prompts give the same ids as serial ones, without blocking the event loop', async () => {
    const base = corpus();
    const prompts = Array.from({ length: 6 }, (_, i) => `${i} ${base.repeat(3 + (i % 3))}`);
    const serial: Uint32Array[] = [];
    for (const p of prompts) serial.push((await pool.encode(DIR, [p], false))[0]);
    let settled = false;
    const pending = Promise.all(prompts.map((p) => pool.encode(DIR, [p], false).then((r) => r[0]))).then((all) => {
      settled = true;
      return all;
    });
    // The event loop gets a turn while the workers tokenize: tokenizing on this thread would settle first.
    await new Promise((r) => setImmediate(r));
    expect(settled).toBe(false);
    const concurrent = await pending;
    expect(concurrent.map((a) => [...a])).toEqual(serial.map((a) => [...a]));
    expect(serial[0].length).toBeGreaterThan(10_000);
  });

  it('a crashed worker fails only its own request, with a clear error, and is replaced', async () => {
    const solo = new TokenizerPool({ size: 1 });
    try {
      const crash = solo.crashOne();
      const after = solo.encode(DIR, ['still works'], false);
      await expect(crash).rejects.toBeInstanceOf(PromptError);
      await expect(crash).rejects.toThrow(/tokenizer worker died \(exit code 3\)/);
      expect([...(await after)[0]]).toEqual(await rustIds('still works'));
      expect(solo.respawns).toBe(1);
    } finally {
      await solo.close();
    }
  });

  it('a full queue fails fast; closing the pool fails what is in flight instead of leaving it pending', async () => {
    const small = new TokenizerPool({ size: 1, maxQueue: 1 });
    const busy = small.encode(DIR, [corpus().repeat(4)], false);
    const queued = small.encode(DIR, ['queued'], false);
    await expect(small.encode(DIR, ['one too many'], false)).rejects.toMatchObject({ code: 'resource_exhausted' });
    const settled = Promise.allSettled([busy, queued]);
    await small.close();
    const results = await settled;
    expect(results.map((r) => (r.status === 'rejected' ? (r.reason as Error).message : 'fulfilled'))).toEqual([
      'tokenizer pool closed',
      'tokenizer pool closed',
    ]);
  });

  it('one huge "word" is stopped at the budget with resource_exhausted; the pool keeps working (issue 17 bug 4)', async () => {
    const solo = new TokenizerPool({ size: 1, budgetMs: 300 });
    try {
      await solo.encode(DIR, ['warm'], false); // the budget counts from the loaded tokenizer, not the load
      // 200k letters without a space: one pre-tokenizer piece, seconds of BPE work (~1 s per 50k on this machine).
      const word = 'q' + 'abcdefghij'.repeat(20_000);
      const err = await solo.encode(DIR, [word], false).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PromptError);
      expect(err).toMatchObject({ code: 'resource_exhausted' });
      expect((err as Error).message).toBe(
        'tokenizing 200001 characters took longer than the budget of 300 ms (one very long word?)',
      );
      expect(solo.counters).toMatchObject({ overBudget: 1, cancelledRunning: 0 });
      expect([...(await solo.encode(DIR, ['still works'], false))[0]]).toEqual(await rustIds('still works'));
      expect(solo.size).toBe(1);
    } finally {
      await solo.close();
    }
  }, 60_000);

  it('a cancelled call is dropped from the queue and a large running one is stopped', async () => {
    const solo = new TokenizerPool({ size: 1 });
    try {
      await solo.encode(DIR, ['warm'], false);
      const signal = { aborted: false };
      const running = solo
        .encode(DIR, ['r' + 'abcdefghij'.repeat(20_000)], false, signal)
        .catch((e: { code: string }) => e.code);
      const queued = solo.encode(DIR, ['queued text'], false, signal).catch((e: { code: string }) => e.code);
      const other = solo.encode(DIR, ['not cancelled'], false);
      signal.aborted = true;
      expect(await Promise.all([running, queued])).toEqual(['deadline_exceeded', 'deadline_exceeded']);
      expect([...(await other)[0]]).toEqual(await rustIds('not cancelled'));
      expect(solo.counters).toMatchObject({
        cancelledRunning: 1,
        cancelledQueued: 1,
        overBudget: 0,
        completedChars: 'warm'.length + 'not cancelled'.length,
      });
      await expect(solo.encode(DIR, ['late'], false, signal)).rejects.toMatchObject({ code: 'deadline_exceeded' });
    } finally {
      await solo.close();
    }
  }, 60_000);

  it('defaults to one worker per core', async () => {
    const { availableParallelism } = await import('node:os');
    const dflt = new TokenizerPool();
    try {
      expect(dflt.size).toBe(availableParallelism());
    } finally {
      await dflt.close();
    }
  });

  it('a missing tokenizer directory is an error, not a crash', async () => {
    await expect(pool.encode('/nonexistent/model', ['x'], false)).rejects.toThrow(/tokenizer failed: .*ENOENT/);
  });
});

describe('prefix cache (chunks cut at special tokens)', () => {
  let svc: PromptService;
  beforeAll(async () => {
    svc = await PromptService.create({
      pool,
      keys: { blockSize: 16, hashSeed: '' },
      registry: { models: [{ ...QWEN3, limits: { maxTokens: 20_000 } }] },
    });
  });
  afterAll(() => svc?.close());

  it('cached ids equal uncached ids for a multi-turn chat, and the shared prefix is served from the cache', async () => {
    // The corpus's last 40,000 characters (the multilingual text and code): its head is docs/architecture.md, which
    // grows with the project and once took this chat past the 20,000-token limit.
    const system = corpus().slice(-40_000);
    const tok = svc.registry.models[0].tokenizer;
    const turns = [{ role: 'system', content: system }];
    const cache = svc.registry.cache!;
    for (let t = 0; t < 4; t++) {
      turns.push({ role: 'user', content: `question ${t}: ${'why? '.repeat(t)}` });
      const hitsBefore = cache.hits;
      const r = await svc.prepare({
        model: QWEN3.name,
        messages: turns,
        chat_template_kwargs: { enable_thinking: false },
      });
      expect([...r.tokenIds]).toEqual([...(await tok.encodeUncached(r.text!, false))]);
      if (t > 0) expect(cache.hits - hitsBefore).toBeGreaterThanOrEqual(2 * t); // every earlier message chunk hit
      expect(svc.stats()).toMatchObject({
        cacheHits: cache.hits,
        cacheMisses: cache.misses,
        cacheEntries: cache.size,
        workers: 2,
      });
      turns.push({ role: 'assistant', content: `answer ${t}` });
    }
  });

  it('chunked + cached encoding equals whole-text encoding for arbitrary mixes of text and special tokens (property)', async () => {
    const tok = svc.registry.models[0].tokenizer;
    const pieces = [
      '<|im_start|>',
      '<|im_end|>',
      '<|vision_start|>',
      '<|image_pad|>',
      '<think>',
      '\n',
      '\n\n',
      ' ',
      '  ',
      'user',
      'Hello',
      ' world',
      '你好',
      '🎉',
      "'s",
      'x1',
      '\t',
      '<|im_start',
      '|>',
      '<tool_call>',
    ];
    await fc.assert(
      fc.asyncProperty(fc.array(fc.constantFrom(...pieces), { maxLength: 30 }), async (parts) => {
        const text = parts.join('');
        const cached = await tok.encode(text, false, []);
        const whole = await tok.encodeUncached(text, false);
        expect([...cached]).toEqual([...whole]);
      }),
      { numRuns: 60 },
    );
  });

  it('nothing is cached from a failed request', async () => {
    const cache = svc.registry.cache!;
    const size = cache.size;
    const long = `fresh text ${'lorem ipsum '.repeat(12_000)}`;
    await expect(svc.prepare({ model: QWEN3.name, messages: [{ role: 'user', content: long }] })).rejects.toMatchObject(
      { code: 'resource_exhausted', field: 'messages' },
    );
    expect(cache.size).toBe(size);
  });
});

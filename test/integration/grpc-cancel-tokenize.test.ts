import { status } from '@grpc/grpc-js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { embeddedConfig, startEmbedded, type EmbeddedService } from '../../src/service/embedded.js';
import { PromptServiceFrontend } from '../../src/service/prompt-frontend.js';
import { grpcClient } from '../support/grpc-client.js';

const MODEL = 'Qwen/Qwen2-VL-2B-Instruct';
const MODEL_DIR = fileURLToPath(new URL('../../fixtures/models/qwen2-vl', import.meta.url));
const HUGE = 512 * 1024;

/** One 0.5 MB "word" (no spaces: one pre-tokenizer piece, seconds of BPE work), different per call (no cache hit). */
const hugeWord = (i: number) => `${String.fromCharCode(97 + i)}${'abcdefghij'.repeat(HUGE / 10)}`;
const chat = (text: string) => ({
  model: MODEL,
  chat: { messagesJson: JSON.stringify([{ role: 'user', content: text }]) },
  candidates: ['10.0.0.1:8000'],
});

/**
 * Issue 17 bug 4: five 0.5 MB chats cancelled at a 300 ms deadline made the next small chat wait ~20 s, because the
 * tokenizer finished every abandoned request. With one tokenizer worker, the first one is running and the other four
 * are queued when the deadline passes: the pool must stop the running one (replacing the worker) and drop the queued
 * ones, so none of the 2.5 MB is ever tokenized and the small chat is served next. Asserted on the pool's counters,
 * not on a timing threshold.
 */
describe('cancelled chats release the tokenizer', () => {
  let dir: string;
  let prompts: PromptServiceFrontend;
  let svc: EmbeddedService;
  let kv: ReturnType<typeof grpcClient>;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kvi-cancel-'));
    writeFileSync(
      join(dir, 'registry.yaml'),
      `models:\n  - name: ${MODEL}\n    dir: ${JSON.stringify(MODEL_DIR)}\nworkers: 1\n`,
    );
    const config = embeddedConfig({ api: { maxMessageBytes: 4 * 1024 * 1024 } });
    prompts = await PromptServiceFrontend.load(join(dir, 'registry.yaml'), config.keys);
    svc = await startEmbedded(config, prompts);
    kv = grpcClient(svc.grpcAddress, 'kvindexer/v1/kvindexer.proto', 'kvindexer.v1.KvIndexer');
  }, 60_000);

  afterAll(async () => {
    kv?.close();
    await svc?.stop();
    await prompts?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('drops queued and stops running tokenization of calls past their deadline', async () => {
    expect(prompts.service.stats().workers).toBe(1);
    const before = prompts.service.stats();
    // 1 s: time for the five 0.5 MB requests to arrive and be rendered, far less than tokenizing one of them.
    const outcomes = await Promise.all(
      Array.from({ length: 5 }, (_, i) =>
        kv.call('Score', chat(hugeWord(i)), 1_000).then(
          () => 'answered',
          (e: { code: number }) => e.code,
        ),
      ),
    );
    expect(outcomes).toEqual(Array(5).fill(status.DEADLINE_EXCEEDED));
    const reached = Math.floor((prompts.service.stats().tokenizeRequestedChars - before.tokenizeRequestedChars) / HUGE);

    const small = await kv.call('Score', chat('Hello there, how are you?'), 30_000);
    expect(small.tokenCount).toBeGreaterThan(5);
    const after = prompts.service.stats();
    const queued = after.tokenizeCancelledQueued - before.tokenizeCancelledQueued;
    const running = after.tokenizeCancelledRunning - before.tokenizeCancelledRunning;
    // With one worker: a huge word was running (stopped, the worker replaced; a second one may have started in the
    // milliseconds between two deadlines), the others were dropped from the queue (a call that arrived after its
    // deadline is refused at the pool's door, counted as queued).
    expect(reached).toBe(5);
    expect(running).toBeGreaterThanOrEqual(1);
    expect(running + queued).toBe(5);
    // None of the 2.5 MB was tokenized: the small chat was served next, not after ~20 s of abandoned work.
    expect(after.tokenizedChars - before.tokenizedChars).toBeLessThan(1000);
    expect(after.workers).toBe(1);
    // The same counters on /metrics.
    const text = await (await fetch(`http://127.0.0.1:${svc.api.metricsPort}/metrics`)).text();
    const sample = (labels: string) =>
      Number(
        / ([\d.]+)$/.exec(
          text.split('\n').find((l) => l.startsWith(`kv_indexer_tokenizer_dropped_total{${labels}}`)) ?? '',
        )?.[1],
      );
    expect([sample('reason="cancelled_queued"'), sample('reason="cancelled_running"')]).toEqual([
      after.tokenizeCancelledQueued,
      after.tokenizeCancelledRunning,
    ]);
  }, 60_000);
});

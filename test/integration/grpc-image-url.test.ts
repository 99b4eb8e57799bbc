import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SHARED_DIR } from '../support/golden.js';
import { waitFor } from '../support/zmq.js';
import { startTestService, type TestService } from '../support/service.js';

const MODEL = 'Qwen/Qwen2-VL-2B-Instruct';
const png = readFileSync(`${SHARED_DIR}golden/images/coco-000000039769.png`);
const golden = JSON.parse(readFileSync(`${SHARED_DIR}golden/mm-hash.json`, 'utf8')) as {
  cases: { identifier: string }[];
};

/**
 * End to end over gRPC: a model entry naming its vLLM engine (0.19.1) and image URL fetching allowed for a real
 * HTTP server on 127.0.0.1. An image URL then gets the same identifier (the real vLLM golden), tokens and block keys
 * as the same image sent as a data URL, and each item says where its identifier came from.
 */
describe('gRPC Score with an image URL (fetching enabled, vLLM 0.19.1 identifiers)', () => {
  let t: TestService;
  let server: Server;
  let base: string;
  let dir: string;
  let hits = 0;
  let slowHits = 0;
  let slowServed = 0;

  beforeAll(async () => {
    server = createServer((req, res) => {
      hits++;
      if (req.url === '/slow.png') {
        // Answers after 600 ms: a caller with a 200 ms deadline is gone by then.
        slowHits++;
        setTimeout(() => {
          res.writeHead(200, { 'content-type': 'image/png' });
          res.end(png, () => slowServed++);
        }, 600);
      } else if (req.url === '/coco.png') {
        res.writeHead(200, { 'content-type': 'image/png' });
        res.end(png);
      } else {
        res.writeHead(404);
        res.end();
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    dir = mkdtempSync(join(tmpdir(), 'kvi-image-url-'));
    const registry = join(dir, 'registry.json');
    const modelDir = new URL('../../fixtures/models/qwen2-vl', import.meta.url).pathname;
    writeFileSync(
      registry,
      JSON.stringify({
        models: [
          {
            name: MODEL,
            dir: modelDir,
            image: { defaultWidth: 1024, defaultHeight: 768 },
            vllm: { version: '0.19.1' },
          },
        ],
      }),
    );
    t = await startTestService({
      registry,
      overrides: {
        images: { fetch: { enabled: true, allowHosts: ['127.0.0.1'], allowPrivateAddresses: true, timeoutMs: 2000 } },
      },
    });
  }, 60_000);

  afterAll(async () => {
    await t?.stop();
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const score = (url: string, text = 'What is in this image?', deadlineMs?: number) =>
    t.kv.call(
      'Score',
      {
        model: MODEL,
        chat: {
          messagesJson: JSON.stringify([
            {
              role: 'user',
              content: [
                { type: 'image_url', image_url: { url } },
                { type: 'text', text },
              ],
            },
          ]),
        },
        returnBlockKeys: true,
      },
      deadlineMs,
    ) as Promise<{ blockKeys: string[]; tokenCount: number; items: Record<string, unknown>[] }>;

  it('the fetched image gives the same block keys as the data URL; identifier = vLLM 0.19.1 golden', async () => {
    const data = await score(`data:image/png;base64,${png.toString('base64')}`);
    const fetched = await score(`${base}/coco.png`);
    expect(fetched.blockKeys).toEqual(data.blockKeys);
    expect(fetched.blockKeys).toHaveLength(Math.floor(418 / 16)); // full blocks only
    expect(data.items).toEqual([
      {
        offset: 15,
        length: 391,
        identifier: golden.cases[0].identifier,
        estimated: false,
        identifierSource: 'vllm-mm-hash',
        fetchOutcome: '',
      },
    ]);
    expect(fetched.items).toEqual([{ ...data.items[0], fetchOutcome: 'fetched' }]);
    const cached = await score(`${base}/coco.png`);
    expect(cached.items[0].fetchOutcome).toBe('cached');
    expect(cached.blockKeys).toEqual(data.blockKeys);
    expect(hits).toBe(1);
  });

  it('a failing URL falls back to the estimate, with its reason; metrics count sources and outcomes', async () => {
    const missing = await score(`${base}/missing.png`);
    expect(missing.items[0]).toMatchObject({
      estimated: true,
      identifierSource: 'content-hash',
      fetchOutcome: 'status',
    });
    const text = await (await fetch(`http://127.0.0.1:${t.api.metricsPort}/metrics`)).text();
    expect(text).toContain('kv_indexer_image_identifiers_total{source="vllm-mm-hash"} 3');
    expect(text).toContain('kv_indexer_image_identifiers_total{source="content-hash"} 1');
    expect(text).toContain('kv_indexer_image_url_fetches_total{outcome="fetched"} 1');
    expect(text).toContain('kv_indexer_image_url_fetches_total{outcome="cached"} 1');
    expect(text).toContain('kv_indexer_image_url_fetches_total{outcome="status"} 1');
  });

  it('a chat cancelled while its image URL is fetched: DEADLINE_EXCEEDED, nothing cached, no unhandled rejection', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const stats = () => t.prompts!.service.stats();
      const before = stats();
      const text = 'Describe the slow image, please.';
      const outcome = await score(`${base}/slow.png`, text, 200).then(
        () => 'answered',
        (e: { code: number }) => e.code,
      );
      expect(outcome).toBe(4); // DEADLINE_EXCEEDED
      // The fetch finishes after the caller left; the vLLM identifier is computed, then tokenization is refused at
      // the pool's door (the tokenizer signal reached the chat path) and neither the body nor the tokens are cached.
      await waitFor(
        () => slowServed === 1 && stats().tokenizeCancelledQueued === before.tokenizeCancelledQueued + 1,
        'the abandoned chat dropped at tokenization',
      );
      await new Promise((r) => setTimeout(r, 50));
      expect([stats().fetchCacheEntries, stats().cacheEntries]).toEqual([
        before.fetchCacheEntries,
        before.cacheEntries,
      ]);
      expect(stats().tokenizedChars).toBe(before.tokenizedChars);
      expect(unhandled).toEqual([]);
      // Asked again without a deadline: fetched again (not cached), the vLLM identifier as for the same bytes.
      const again = await score(`${base}/slow.png`, text, 10_000);
      expect(again.items).toEqual([
        {
          offset: 15,
          length: 391,
          identifier: golden.cases[0].identifier,
          estimated: false,
          identifierSource: 'vllm-mm-hash',
          fetchOutcome: 'fetched',
        },
      ]);
      expect(slowHits).toBe(2);
      expect(stats().fetchCacheEntries).toBe(before.fetchCacheEntries + 1);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});

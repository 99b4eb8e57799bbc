import { status } from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Publisher } from 'zeromq';
import { parsePromText, type ScrapeThread } from '../../src/scoring/load/index.js';
import { FakeMetricsServer } from '../support/metrics-server.js';
import { freePort } from '../support/redis-server.js';
import { startTestService, type TestService } from '../support/service.js';
import { connectedPublisher, kvMessage, tokenRange, waitFor } from '../support/zmq.js';

const FIXTURE = readFileSync(new URL('../../fixtures/vllm-metrics/vllm-0.11-dp2.prom', import.meta.url), 'utf8');
const MODEL = 'Qwen/Qwen3-0.6B';
// A page bound of 64 KiB (the 30 kB fixture fits): the 50 MB page is cut off within milliseconds, well inside the
// timeout even on a busy machine, so it ends as too_large and never as a timeout.
const SCRAPE = { enabled: true, intervalMs: 50, timeoutMs: 1000, staleMs: 1_500, maxBytes: 65_536 };

interface Row {
  endpoint: string;
  scrapedRunning?: number;
  scrapedWaiting?: number;
  scrapedKvUsage?: number;
  scrapeAgeSeconds: number;
  scrapeError: string;
  metricsUrl: string;
}

/** The fields of this feature, as a real gRPC client decodes them (the optional ones only when present). */
function scrapeView(r: Row) {
  const view: Record<string, unknown> = { error: r.scrapeError, url: r.metricsUrl };
  for (const k of ['scrapedRunning', 'scrapedWaiting', 'scrapedKvUsage'] as const)
    if (r[k] !== undefined && r[k] !== null) view[k] = r[k];
  return view;
}

describe.each([
  ['in a worker thread', true],
  ['in the event loop', false],
])('load scraping %s through the service (real gRPC client, real HTTP metric servers)', (_shape, thread) => {
  let svc: TestService;
  let pub: Publisher;
  const servers: Record<string, FakeMetricsServer> = {};
  const rows = async (): Promise<Map<string, Row>> =>
    new Map((await svc.kv.call('ListEndpoints', {})).endpoints.map((r: Row) => [r.endpoint, r]));

  beforeAll(async () => {
    servers.vllm = await FakeMetricsServer.start({ page: FIXTURE });
    servers.pod7 = await FakeMetricsServer.start({ page: FIXTURE });
    servers.hang = await FakeMetricsServer.start({ hang: true });
    servers.huge = await FakeMetricsServer.start({ hugeBytes: 50 * 1024 * 1024 });
    servers.junk = await FakeMetricsServer.start({
      page: '\u0000\u0001 binary junk\n{oops} 1\n<html>\nvllm:num_requests_running{engine="0" 2\n',
    });
    servers.dying = await FakeMetricsServer.start({ page: FIXTURE });
    svc = await startTestService({ overrides: { load: { scrape: { ...SCRAPE, thread } } } });
    pub = await connectedPublisher(
      svc.service.subscriber.lastEndpoint!,
      kvMessage('kv@10.9.9.9:1@probe', 0, [0, [], null]),
      () => svc.service.pipeline.endpoints().has('10.9.9.9:1'),
    );
    // Known from events: rank 0 and rank 1 of a vLLM server whose API port is the fake server's.
    const stored = (dpRank: number | null) => [
      1,
      [['BlockStored', [11n + BigInt(dpRank ?? 0)], null, tokenRange(16), 16, null, null]],
      dpRank,
    ];
    await pub.send(kvMessage(`kv@${servers.vllm.hostPort}@${MODEL}`, 0, stored(null)));
    await pub.send(kvMessage(`kv@${servers.vllm.hostPort}@${MODEL}`, 0, stored(1)));
    // Each pod its own PUB address (nothing listens there: they never publish, they are known by AddEndpoint alone).
    const add = async (endpoint: string, metricsUrl: string, ranks = 1) =>
      svc.kv.call('AddEndpoint', { endpoint, zmqAddress: `tcp://127.0.0.1:${await freePort()}`, ranks, metricsUrl });
    await add('10.0.0.7:8000', servers.pod7.url('/pod7/metrics'), 2);
    await add('10.0.0.8:8000', servers.hang.url());
    await add('10.0.0.9:8000', servers.huge.url());
    await add('10.0.0.10:8000', servers.junk.url());
    await add('10.0.0.11:8000', servers.dying.url());
  });

  afterAll(async () => {
    pub?.close();
    await svc?.stop();
    await Promise.all(Object.values(servers).map((s) => s.close()));
  });

  it("shows each rank's figures, read from its engine series, for endpoints known from events and from AddEndpoint", async () => {
    const ids = [servers.vllm.hostPort, `${servers.vllm.hostPort}@dp1`, '10.0.0.7:8000', '10.0.0.7:8000@dp1'];
    // A worker started from TypeScript compiles its modules first (tsx): the first figures may take seconds.
    await waitFor(() => ids.every((id) => svc.api.load?.get(id) !== undefined), 'figures of every rank', 20_000);
    const listed = await rows();
    expect(ids.map((id) => scrapeView(listed.get(id)!))).toEqual([
      { error: '', url: servers.vllm.url(), scrapedRunning: 3, scrapedWaiting: 1, scrapedKvUsage: 0.25 },
      { error: '', url: servers.vllm.url(), scrapedRunning: 5, scrapedWaiting: 7, scrapedKvUsage: 0.625 },
      { error: '', url: servers.pod7.url('/pod7/metrics'), scrapedRunning: 3, scrapedWaiting: 1, scrapedKvUsage: 0.25 },
      {
        error: '',
        url: servers.pod7.url('/pod7/metrics'),
        scrapedRunning: 5,
        scrapedWaiting: 7,
        scrapedKvUsage: 0.625,
      },
    ]);
    for (const id of ids) expect(listed.get(id)!.scrapeAgeSeconds).toBeGreaterThanOrEqual(0);
    // One page per vLLM server, whatever its ranks: every request went to the one path.
    expect([...servers.vllm.paths.keys()]).toEqual(['/metrics']);
    expect([...servers.pod7.paths.keys()]).toEqual(['/pod7/metrics']);
  });

  it('feeds Select: the scraper of the service is the load Select prices (running, waiting, KV usage per rank)', async () => {
    const A = '10.0.0.7:8000';
    const B = '10.0.0.7:8000@dp1';
    await waitFor(
      () => svc.api.load?.get(A) !== undefined && svc.api.load?.get(B) !== undefined,
      'figures of both ranks',
    );
    const res = await svc.kv.call('Select', {
      model: MODEL,
      tokens: { tokenIds: tokenRange(64) },
      candidates: [B, A],
      policy: 'cache+load',
    });
    const view = res.candidates.map((c: Record<string, unknown>) => [
      c.endpoint,
      c.running,
      c.waiting,
      c.kvUsage,
      c.loadScraped,
      c.predictedTtftMs,
    ]);
    // Nothing cached, nothing reserved: TTFT = (waiting × 1024 + 64) / 8000 tok/s × 1000 + running × 1 ms.
    expect(view).toEqual([
      [B, 5, 7, 0.625, true, ((7 * 1024 + 64) / 8000) * 1000 + 5],
      [A, 3, 1, 0.25, true, ((1 * 1024 + 64) / 8000) * 1000 + 3],
    ]);
    expect(res.endpoint).toBe(A);
  });

  it('names why a target failed (timeout, too_large, parse_error) while the others stay fresh', async () => {
    await waitFor(
      () => ['10.0.0.8:8000', '10.0.0.9:8000', '10.0.0.10:8000'].every((id) => svc.api.load?.status(id)?.error),
      'three failures',
    );
    const listed = await rows();
    expect(scrapeView(listed.get('10.0.0.8:8000')!)).toEqual({
      error: 'timeout: no complete answer within 1000 ms',
      url: servers.hang.url(),
    });
    expect(scrapeView(listed.get('10.0.0.9:8000')!)).toEqual({
      error: 'too_large: page longer than 65536 bytes',
      url: servers.huge.url(),
    });
    expect(scrapeView(listed.get('10.0.0.10:8000')!)).toEqual({
      error: 'parse_error: no vLLM load series on the page',
      url: servers.junk.url(),
    });
    for (const id of ['10.0.0.8:8000', '10.0.0.9:8000', '10.0.0.10:8000'])
      expect(listed.get(id)!.scrapeAgeSeconds).toBe(-1);
    expect(svc.api.load!.get(servers.vllm.hostPort)).toMatchObject({
      running: 3,
      waiting: 1,
      kvUsage: 0.25,
      stale: false,
    });
    // The 50 MB page was cut off: the server never got to write it all.
    await waitFor(() => servers.huge.written > 0 && !servers.huge.hugeFinished, 'the huge page cut off');
    expect(servers.huge.written).toBeLessThan(50 * 1024 * 1024);
  });

  it('exports the outcomes, the skipped lines and the scrape duration on /metrics (no endpoint label)', async () => {
    const text = await (await fetch(`http://127.0.0.1:${svc.api.metricsPort}/metrics`)).text();
    const { samples } = parsePromText(text, { wanted: (n) => n.startsWith('kv_indexer_load_scrape') });
    const outcomes = Object.fromEntries(
      samples.filter((s) => s.name === 'kv_indexer_load_scrapes_total').map((s) => [s.labels.outcome, s.value]),
    );
    expect(Object.keys(outcomes).sort()).toEqual([
      'http_error',
      'ok',
      'parse_error',
      'refused',
      'timeout',
      'too_large',
    ]);
    for (const o of ['ok', 'parse_error', 'timeout', 'too_large']) expect(outcomes[o]).toBeGreaterThan(0);
    const skipped = samples.find((s) => s.name === 'kv_indexer_load_scrape_skipped_lines_total')!.value;
    // Each junk page has 4 invalid lines: three by their name, the vLLM one in full (no `}`); every junk scrape read
    // it whole (at most one more may be in flight, and from a worker one more finished but not reported yet).
    expect(skipped % 4).toBe(0);
    expect(skipped / 4).toBeGreaterThanOrEqual(servers.junk.requests - (thread ? 2 : 1));
    expect(samples.find((s) => s.name === 'kv_indexer_load_scrape_seconds_count')!.value).toBeGreaterThan(0);
    expect(samples.find((s) => s.name === 'kv_indexer_load_scrape_targets')!.value).toBe(7);
    expect(samples.find((s) => s.name === 'kv_indexer_load_scrape_worker_restarts_total')!.value).toBe(0);
    // Every finished scrape is counted once by outcome and once in the duration histogram (the worker reports both).
    const total = Object.values(outcomes).reduce((a, b) => a + b, 0);
    expect(samples.find((s) => s.name === 'kv_indexer_load_scrape_seconds_count')!.value).toBe(total);
    expect(samples.every((s) => s.labels.endpoint === undefined)).toBe(true);
  });

  it('reports a server that went away: the figures turn stale and leave ListEndpoints, the refusal stays', async () => {
    await waitFor(() => svc.api.load?.get('10.0.0.11:8000') !== undefined, 'a good scrape of the dying server');
    await servers.dying.close();
    await waitFor(() => svc.api.load!.get('10.0.0.11:8000')!.stale, 'stale figures');
    const row = (await rows()).get('10.0.0.11:8000')!;
    expect(scrapeView(row)).toEqual({
      error: expect.stringMatching(/^refused: ECONNREFUSED/),
      url: servers.dying.url(),
    });
    expect(row.scrapeAgeSeconds).toBeGreaterThan(SCRAPE.staleMs / 1000);
    expect(svc.api.load!.get('10.0.0.11:8000')).toMatchObject({ running: 3, waiting: 1, kvUsage: 0.25, stale: true });
  });

  it('stops scraping a removed endpoint (all its ranks) and drops its state', async () => {
    await svc.kv.call('RemoveEndpoint', { endpoint: '10.0.0.7:8000' });
    expect(svc.api.load!.get('10.0.0.7:8000')).toBeUndefined();
    expect(svc.api.load!.get('10.0.0.7:8000@dp1')).toBeUndefined();
    const listed = await rows();
    expect(listed.has('10.0.0.7:8000') || listed.has('10.0.0.7:8000@dp1')).toBe(false);
    const after = servers.pod7.requests;
    await new Promise((r) => setTimeout(r, 10 * SCRAPE.intervalMs));
    expect(servers.pod7.requests).toBe(after);
  });

  // The worker shape only (a LoadScraper in the event loop has no thread to lose).
  if (thread)
    it('keeps answering Select while the scrape worker is restarted, then prices fresh figures', async () => {
      const A = servers.vllm.hostPort;
      await waitFor(() => svc.api.load?.get(A)?.stale === false, 'fresh figures');
      const select = async () =>
        (
          await svc.kv.call('Select', {
            model: MODEL,
            tokens: { tokenIds: tokenRange(64) },
            candidates: [A],
            policy: 'cache+load',
          })
        ).candidates.map((c: Record<string, unknown>) => [c.endpoint, c.running, c.waiting, c.kvUsage, c.loadScraped]);
      (svc.api.load as ScrapeThread).crashWorker();
      const metric = async () => {
        const text = await (await fetch(`http://127.0.0.1:${svc.api.metricsPort}/metrics`)).text();
        return parsePromText(text, { wanted: new Set(['kv_indexer_load_scrape_worker_restarts_total']) }).samples[0]
          ?.value;
      };
      await waitFor(() => (svc.api.load as ScrapeThread).counters.restarts === 1, 'the worker to die');
      // No worker, or a new one still starting: Select answers from the last figures.
      expect(await select()).toEqual([[A, 3, 1, 0.25, true]]);
      expect(await metric()).toBe(1);
      const before = svc.api.load!.get(A)!.ageMs;
      await waitFor(() => svc.api.load!.get(A)!.ageMs < Math.min(before, 500), 'figures from the new worker', 20_000);
      expect(await select()).toEqual([[A, 3, 1, 0.25, true]]);
      expect((svc.api.load as ScrapeThread).counters.restarts).toBe(1);
    });

  it('refuses a metrics_url that is not an http(s) URL of an IP literal, naming the field, and adds nothing', async () => {
    const bad = async (metricsUrl: string) =>
      svc.kv.call('AddEndpoint', { endpoint: '10.0.0.20:8000', zmqAddress: 'tcp://127.0.0.1:5999', metricsUrl }).then(
        () => null,
        (e: { code: number; details: string }) => [e.code, e.details],
      );
    expect(await bad('ftp://10.0.0.20:8000/metrics')).toEqual([
      status.INVALID_ARGUMENT,
      'metrics_url: "ftp://10.0.0.20:8000/metrics" is not http(s)://<host>:<port>',
    ]);
    const named = await bad('http://metrics.internal:9000/metrics');
    expect(named?.[0]).toBe(status.INVALID_ARGUMENT);
    expect(named?.[1]).toMatch(/^metrics_url: /);
    expect((await rows()).has('10.0.0.20:8000')).toBe(false);
  });
});

describe('load scraping off (the default)', () => {
  it('makes no request and leaves the fields empty', async () => {
    const vllm = await FakeMetricsServer.start({ page: FIXTURE });
    const svc = await startTestService();
    try {
      expect(svc.api.load).toBeNull();
      await svc.kv.call('AddEndpoint', {
        endpoint: '10.0.0.30:8000',
        zmqAddress: 'tcp://127.0.0.1:5998',
        metricsUrl: vllm.url(),
      });
      await new Promise((r) => setTimeout(r, 300));
      expect(vllm.requests).toBe(0);
      const text = await (await fetch(`http://127.0.0.1:${svc.api.metricsPort}/metrics`)).text();
      expect(text).toContain('kv_indexer_load_scrapes_total{outcome="ok"} 0');
    } finally {
      await svc.stop();
      await vllm.close();
    }
  });
});

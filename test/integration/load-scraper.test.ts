import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  LoadScraper,
  PageFetcher,
  ScrapeThread,
  type KnownEndpoint,
  type LoadScraping,
} from '../../src/scoring/load/index.js';
import { FakeMetricsServer } from '../support/metrics-server.js';
import { waitFor } from '../support/zmq.js';

const FIXTURE = readFileSync(new URL('../../fixtures/vllm-metrics/vllm-0.11-dp2.prom', import.meta.url), 'utf8');
const SETTINGS = {
  intervalMs: 40,
  timeoutMs: 500,
  concurrency: 32,
  staleMs: 1_500,
  maxBytes: 4 * 1024 * 1024,
  urlTemplate: 'http://{host}:{port}/metrics',
};

const servers: FakeMetricsServer[] = [];
const scrapers: LoadScraping[] = [];
afterEach(async () => {
  await Promise.all(scrapers.splice(0).map((s) => s.stop()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function server(behaviour: Parameters<typeof FakeMetricsServer.start>[0]) {
  const s = await FakeMetricsServer.start(behaviour);
  servers.push(s);
  return s;
}

/** The two shapes (config load.scrape.thread): in the event loop, and in a worker thread. */
const SHAPES = [
  ['in the event loop (LoadScraper)', false],
  ['in a worker thread (ScrapeThread)', true],
] as const;

// A worker started from TypeScript compiles its modules first (tsx): its first figures can take seconds on a busy
// machine, hence the longer first waits of these tests.
const FIRST = 20_000;
vi.setConfig({ testTimeout: 60_000 });

describe.each(SHAPES)('load scraping %s against real HTTP servers', (_name, thread) => {
  function scraper(known: () => KnownEndpoint[], settings: Partial<typeof SETTINGS> = {}): LoadScraping {
    const options = { ...SETTINGS, ...settings, known, syncMs: 20 };
    const s = thread ? new ScrapeThread(options) : new LoadScraper(options);
    scrapers.push(s);
    s.start();
    return s;
  }

  it('scrapes one page for all ranks of a vLLM server and reads each rank by its engine label', async () => {
    const vllm = await server({ page: FIXTURE });
    const s = scraper(() => [
      { endpoint: vllm.hostPort, rank: 0, model: null },
      { endpoint: `${vllm.hostPort}@dp1`, rank: 1, model: 'Qwen/Qwen3-0.6B' },
    ]);
    await waitFor(() => s.counters.outcomes.ok >= 3, 'three good scrapes', FIRST);
    expect(s.targetCount).toBe(1);
    expect(vllm.paths.get('/metrics')).toBe(vllm.requests);
    const [r0, r1] = [s.get(vllm.hostPort)!, s.get(`${vllm.hostPort}@dp1`)!];
    expect([r0.running, r0.waiting, r0.kvUsage, r0.stale]).toEqual([3, 1, 0.25, false]);
    expect([r1.running, r1.waiting, r1.kvUsage, r1.stale]).toEqual([5, 7, 0.625, false]);
    expect(s.status(vllm.hostPort)).toMatchObject({ metricsUrl: vllm.url(), error: null });
    expect(s.get('10.0.0.9:8000')).toBeUndefined();
    expect(s.counters.skippedLines).toBe(0);
  });

  it('counts the garbage lines of every page read whole, and a page without vLLM figures as parse_error', async () => {
    // Lines of other names are checked up to their name: `{}` and `=1` are garbage, `not a metric` is not looked into;
    // the vLLM line is parsed whole and its unterminated label value makes it garbage.
    const junk = await server({
      page: 'not a metric\n{}\n=1\nvllm:num_requests_running{x="unterminated} 1\n# TYPE m gauge\nm 1\n',
    });
    const s = scraper(() => [{ endpoint: junk.hostPort, rank: 0, model: null }]);
    await waitFor(() => s.counters.outcomes.parse_error >= 3, 'three parse errors', FIRST);
    await s.stop();
    expect(s.counters.outcomes.ok).toBe(0);
    expect(s.counters.skippedLines).toBe(3 * s.counters.outcomes.parse_error);
    expect(s.status(junk.hostPort)).toBeUndefined(); // stopped: state dropped
  });

  it('aborts a target that hangs (timeout) while the others keep their fresh figures', async () => {
    const hang = await server({ hang: true });
    const good = await server({ page: FIXTURE });
    const s = scraper(() => [
      { endpoint: hang.hostPort, rank: 0, model: null },
      { endpoint: good.hostPort, rank: 0, model: null },
    ]);
    await waitFor(
      () => s.counters.outcomes.timeout >= 2 && s.counters.outcomes.ok >= 5,
      'timeouts and good scrapes',
      FIRST,
    );
    expect(s.status(hang.hostPort)).toEqual({
      metricsUrl: hang.url(),
      load: undefined,
      error: 'timeout: no complete answer within 500 ms',
    });
    expect(s.get(good.hostPort)).toMatchObject({ running: 3, waiting: 1, kvUsage: 0.25, stale: false });
    // No two scrapes of the hanging target overlap: each request was aborted before the next one started.
    expect(hang.requests).toBeLessThanOrEqual(s.counters.outcomes.timeout + 1);
  });

  it('reports the last figures as stale once the server is gone, with the refusal as the error', async () => {
    const vllm = await server({ page: FIXTURE });
    const s = scraper(() => [{ endpoint: vllm.hostPort, rank: 0, model: null }]);
    await waitFor(() => s.get(vllm.hostPort) !== undefined, 'a good scrape', FIRST);
    await vllm.close();
    servers.splice(servers.indexOf(vllm), 1);
    await waitFor(() => s.get(vllm.hostPort)!.stale, 'stale figures');
    const load = s.get(vllm.hostPort)!;
    expect([load.running, load.waiting, load.kvUsage, load.stale]).toEqual([3, 1, 0.25, true]);
    expect(load.ageMs).toBeGreaterThan(SETTINGS.staleMs);
    expect(s.status(vllm.hostPort)!.error).toMatch(/^refused: ECONNREFUSED/);
    expect(s.counters.outcomes.refused).toBeGreaterThan(0);
  });

  it('stops scraping an endpoint that is no longer known and drops its state', async () => {
    const vllm = await server({ page: FIXTURE });
    let known: KnownEndpoint[] = [{ endpoint: vllm.hostPort, rank: 0, model: null }];
    const s = scraper(() => known);
    await waitFor(() => vllm.requests >= 2, 'scrapes', FIRST);
    known = [];
    s.refresh();
    expect(s.get(vllm.hostPort)).toBeUndefined();
    expect(s.targetCount).toBe(0);
    const after = vllm.requests;
    await new Promise((r) => setTimeout(r, 10 * SETTINGS.intervalMs));
    expect(vllm.requests).toBe(after);
  });

  it('stop() aborts the scrapes in flight: the hanging connections are closed and nothing is scraped after', async () => {
    const hang = await server({ hang: true });
    const s = scraper(() => [{ endpoint: hang.hostPort, rank: 0, model: null }], { timeoutMs: 60_000 });
    await waitFor(() => hang.hanging === 1, 'a scrape hanging', FIRST);
    await s.stop();
    await waitFor(() => hang.hanging === 0, 'the hanging connection closed by the client');
    expect(s.counters.outcomes.timeout).toBe(0); // aborted by stop: not an outcome of the target
    const after = hang.requests;
    await new Promise((r) => setTimeout(r, 5 * SETTINGS.intervalMs));
    expect(hang.requests).toBe(after);
  });

  it('answers an HTTP error status as http_error', async () => {
    const down = await server({ status: 503 });
    const s = scraper(() => [{ endpoint: down.hostPort, rank: 0, model: null }]);
    await waitFor(() => s.counters.outcomes.http_error >= 1, 'an http error', FIRST);
    expect(s.status(down.hostPort)!.error).toBe('http_error: HTTP 503');
  });

  it('uses a metrics_url given for an endpoint, for its @dp ranks too', async () => {
    const vllm = await server({ page: FIXTURE });
    const s = scraper(() => [
      { endpoint: '10.1.2.3:8000', rank: 0, model: null },
      { endpoint: '10.1.2.3:8000@dp1', rank: 1, model: null },
    ]);
    s.setMetricsUrl('10.1.2.3:8000', vllm.url('/custom/metrics'));
    s.refresh();
    await waitFor(
      () => s.get('10.1.2.3:8000@dp1') !== undefined && s.get('10.1.2.3:8000') !== undefined,
      'both ranks read',
      FIRST,
    );
    expect(s.get('10.1.2.3:8000@dp1')).toMatchObject({ running: 5, waiting: 7, kvUsage: 0.625 });
    expect([...vllm.paths.keys()]).toEqual(['/custom/metrics']);
    expect(s.targetCount).toBe(1);
  });

  it('forgets a metrics_url once its endpoint is no longer known (it comes back on the template)', async () => {
    const custom = await server({ page: FIXTURE });
    const templated = await server({ page: FIXTURE });
    let known: KnownEndpoint[] = [{ endpoint: templated.hostPort, rank: 0, model: null }];
    const s = scraper(() => known);
    s.setMetricsUrl(templated.hostPort, custom.url('/custom'));
    s.refresh();
    expect(s.status(templated.hostPort)!.metricsUrl).toBe(custom.url('/custom'));
    known = [];
    s.refresh();
    known = [{ endpoint: templated.hostPort, rank: 0, model: null }];
    s.refresh();
    expect(s.status(templated.hostPort)!.metricsUrl).toBe(templated.url());
  });
});

describe('PageFetcher size bound', () => {
  it('cuts a 50 MB page off at the bound without reading (or buffering) the rest', async () => {
    const huge = await server({ hugeBytes: 50 * 1024 * 1024 });
    const fetcher = new PageFetcher();
    let handed = 0;
    const result = await fetcher.fetch(huge.url(), (text) => (handed += text.length), {
      timeoutMs: 10_000,
      maxBytes: 1024 * 1024,
    });
    fetcher.close();
    expect(result.outcome).toBe('too_large');
    expect(result.detail).toBe('page longer than 1048576 bytes');
    // Only whole chunks under the bound reached the parser; the chunk that crossed it was dropped.
    expect(handed).toBeLessThanOrEqual(1024 * 1024);
    expect(result.bytes).toBeGreaterThan(1024 * 1024);
    await waitFor(() => !huge.hugeFinished && huge.written > 0, 'the server side to see the hang-up');
    expect(huge.hugeFinished).toBe(false);
    expect(huge.written).toBeLessThan(50 * 1024 * 1024);
  });
});

describe('the scrape worker (ScrapeThread)', () => {
  function thread(known: () => KnownEndpoint[], extra: Partial<ConstructorParameters<typeof ScrapeThread>[0]> = {}) {
    const s = new ScrapeThread({ ...SETTINGS, known, syncMs: 20, ...extra });
    scrapers.push(s);
    s.start();
    return s;
  }

  it('is restarted after a crash (counted, reported) and its figures resume; the last ones are kept meanwhile', async () => {
    const vllm = await server({ page: FIXTURE });
    const restarts: string[] = [];
    const s = thread(() => [{ endpoint: vllm.hostPort, rank: 0, model: null }], { onRestart: (r) => restarts.push(r) });
    await waitFor(() => s.get(vllm.hostPort) !== undefined, 'a good scrape', FIRST);
    s.crashWorker();
    await waitFor(() => s.counters.restarts === 1, 'the worker to die');
    expect(restarts).toEqual(['scrape worker died (exit code 3); restarting in 100 ms']);
    // While no worker runs, the last figures stay readable (they turn stale as they age, never vanish).
    expect(s.get(vllm.hostPort)).toMatchObject({ running: 3, waiting: 1, kvUsage: 0.25 });
    // The new worker is handed the roster again: a changed page shows through it.
    vllm.behaviour = {
      page: FIXTURE.replace(
        'vllm:num_requests_running{engine="0",model_name="Qwen/Qwen3-0.6B"} 3.0',
        'vllm:num_requests_running{engine="0",model_name="Qwen/Qwen3-0.6B"} 11.0',
      ),
    };
    await waitFor(() => s.get(vllm.hostPort)?.running === 11, 'figures from the new worker', FIRST);
    expect(s.get(vllm.hostPort)).toMatchObject({ running: 11, waiting: 1, kvUsage: 0.25, stale: false });
    expect(s.status(vllm.hostPort)).toMatchObject({ metricsUrl: vllm.url(), load: { running: 11 }, error: null });
    expect(s.counters.restarts).toBe(1);
  });

  it('reports every finished scrape once: outcome counts and durations agree, and match the requests served', async () => {
    const vllm = await server({ page: FIXTURE });
    const down = await server({ status: 500 });
    const seen: string[] = [];
    const s = thread(
      () => [
        { endpoint: vllm.hostPort, rank: 0, model: null },
        { endpoint: down.hostPort, rank: 0, model: null },
      ],
      { onScrape: (outcome) => seen.push(outcome) },
    );
    await waitFor(() => s.counters.outcomes.ok >= 5 && s.counters.outcomes.http_error >= 5, 'scrapes', FIRST);
    await s.stop();
    const { ok, http_error, timeout, refused, too_large, parse_error } = s.counters.outcomes;
    expect([timeout, refused, too_large, parse_error]).toEqual([0, 0, 0, 0]);
    expect(seen.filter((o) => o === 'ok')).toHaveLength(ok);
    expect(seen.filter((o) => o === 'http_error')).toHaveLength(http_error);
    expect(seen).toHaveLength(ok + http_error);
    // A scrape still unreported when the worker stopped is not counted: never more counted than served.
    expect(ok).toBeLessThanOrEqual(vllm.requests);
    expect(http_error).toBeLessThanOrEqual(down.requests);
    expect(vllm.requests - ok).toBeLessThanOrEqual(3);
  });

  it("follows a changed metrics_url: the new page's figures, the old page no longer fetched", async () => {
    const before = await server({ page: FIXTURE });
    const after = await server({
      page: FIXTURE.replace(
        'vllm:num_requests_waiting{engine="0",model_name="Qwen/Qwen3-0.6B"} 1.0',
        'vllm:num_requests_waiting{engine="0",model_name="Qwen/Qwen3-0.6B"} 9.0',
      ),
    });
    const s = thread(() => [{ endpoint: '10.1.2.3:8000', rank: 0, model: null }]);
    s.setMetricsUrl('10.1.2.3:8000', before.url());
    s.refresh();
    await waitFor(() => s.get('10.1.2.3:8000') !== undefined, 'figures from the first page', FIRST);
    expect(s.get('10.1.2.3:8000')).toMatchObject({ running: 3, waiting: 1, kvUsage: 0.25 });
    s.setMetricsUrl('10.1.2.3:8000', after.url('/v2/metrics'));
    s.refresh();
    // At once: the new page, and no figures until it is read (the old page's are not its).
    expect(s.status('10.1.2.3:8000')).toEqual({ metricsUrl: after.url('/v2/metrics'), load: undefined, error: null });
    await waitFor(() => s.get('10.1.2.3:8000') !== undefined, 'figures from the new page');
    expect(s.get('10.1.2.3:8000')).toMatchObject({ running: 3, waiting: 9, kvUsage: 0.25 });
    await new Promise((r) => setTimeout(r, 4 * SETTINGS.intervalMs));
    const old = before.requests;
    await new Promise((r) => setTimeout(r, 10 * SETTINGS.intervalMs));
    expect(before.requests).toBe(old);
    expect([...after.paths.keys()]).toEqual(['/v2/metrics']);
  });

  it('drops a removed endpoint at once and its page is no longer fetched; the others go on', async () => {
    const a = await server({ page: FIXTURE });
    const b = await server({ page: FIXTURE });
    let known: KnownEndpoint[] = [
      { endpoint: a.hostPort, rank: 0, model: null },
      { endpoint: b.hostPort, rank: 0, model: null },
    ];
    const s = thread(() => known);
    await waitFor(() => s.get(a.hostPort) !== undefined && s.get(b.hostPort) !== undefined, 'both scraped', FIRST);
    known = [{ endpoint: b.hostPort, rank: 0, model: null }];
    s.forget(a.hostPort);
    expect(s.get(a.hostPort)).toBeUndefined();
    expect(s.status(a.hostPort)).toBeUndefined();
    expect(s.endpoints()).toEqual([b.hostPort]);
    expect(s.targetCount).toBe(1);
    // The worker gets the roster asynchronously: at most one scrape of a may still have been under way.
    await new Promise((r) => setTimeout(r, 4 * SETTINGS.intervalMs));
    const after = a.requests;
    const bAfter = b.requests;
    await new Promise((r) => setTimeout(r, 10 * SETTINGS.intervalMs));
    expect(a.requests).toBe(after);
    expect(b.requests).toBeGreaterThan(bAfter);
    expect(s.get(a.hostPort)).toBeUndefined();
  });
});

import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { LOAD_METRICS, LoadScraper, PageFetcher, PageLoads, PromTextParser } from '../../src/scoring/load/index.js';
import type { Suite } from '../harness.js';
import { forkChild } from '../support/child.js';

const PAGE = readFileSync(new URL('../../fixtures/vllm-metrics/vllm-0.11-dp2.prom', import.meta.url), 'utf8');

/**
 * Scrape cost (issue 14 "Measure"): 256 endpoints scraped every 200 ms (1,280 pages/s of a 30 kB vLLM DP=2 page,
 * fixtures/vllm-metrics/) by the service's LoadScraper with the default settings. The HTTP servers run in a child
 * process, so the CPU and event-loop figures are the scraper's (fetch over kept-alive connections + parse) alone.
 */
export const scrapeSuite: Suite = {
  name: 'scrape',
  description: 'Load scraping: 256 vLLM /metrics pages every 200 ms (servers in a child process)',
  async run({ quick }) {
    const endpoints = 256;
    const seconds = quick ? 3 : 15;
    const child = await forkChild(new URL('./scrape-servers.mjs', import.meta.url));
    try {
      const ports = await new Promise<number[]>((resolve) => {
        child.once('message', (m: { type: string; ports: number[] }) => resolve(m.ports));
        child.send({ type: 'start', count: endpoints, page: PAGE });
      });
      const perScrape = await sequentialCost(ports[0], quick ? 500 : 3_000);
      const scrapeSeconds: number[] = [];
      const scraper = new LoadScraper({
        intervalMs: 200,
        timeoutMs: 150,
        concurrency: 32,
        staleMs: 2_000,
        maxBytes: 4 * 1024 * 1024,
        urlTemplate: 'http://{host}:{port}/metrics',
        known: () => ports.map((port) => ({ endpoint: `127.0.0.1:${port}`, rank: 0, model: null })),
        onScrape: (_o, s) => scrapeSeconds.push(s),
      });
      scraper.start();
      // Warm-up: connections opened, JIT settled.
      await new Promise((r) => setTimeout(r, 1_000));
      const before = { ...scraper.counters.outcomes };
      scrapeSeconds.length = 0;
      const delay = monitorEventLoopDelay({ resolution: 1 });
      delay.enable();
      const cpu = process.cpuUsage();
      const started = performance.now();
      await new Promise((r) => setTimeout(r, seconds * 1_000));
      const used = process.cpuUsage(cpu);
      const elapsed = (performance.now() - started) / 1000;
      delay.disable();
      const outcomes = Object.fromEntries(
        Object.entries(scraper.counters.outcomes).map(([k, v]) => [k, v - before[k as keyof typeof before]]),
      );
      const fresh = ports.filter((p) => scraper.get(`127.0.0.1:${p}`)?.stale === false).length;
      await scraper.stop();
      scrapeSeconds.sort((a, b) => a - b);
      const pct = (p: number) =>
        scrapeSeconds[Math.min(scrapeSeconds.length - 1, Math.floor(p * scrapeSeconds.length))] ?? NaN;
      const total = Object.values(outcomes).reduce((a, b) => a + b, 0);
      return {
        figures: {
          cpuMsPerScrape: { value: perScrape, unit: 'CPU ms (one target, back to back: fetch + parse)' },
          cpuMsPerSecondExpected: { value: perScrape * endpoints * 5, unit: 'CPU ms/s (per-scrape cost × 1280/s)' },
          cpuMsPerSecond: {
            value: (used.user + used.system) / 1000 / elapsed,
            unit: 'CPU ms/s (measured, 256 targets)',
          },
          scrapesPerSecond: { value: total / elapsed, unit: 'scrapes/s', goal: '≥ 1280' },
          okShare: { value: (outcomes.ok ?? 0) / Math.max(1, total), unit: 'fraction', goal: '= 1' },
          eventLoopDelayP99: { value: delay.percentile(99) / 1e6, unit: 'ms' },
          eventLoopDelayMax: { value: delay.max / 1e6, unit: 'ms' },
          scrapeP50: { value: pct(0.5) * 1000, unit: 'ms' },
          scrapeP99: { value: pct(0.99) * 1000, unit: 'ms' },
          freshEndpoints: { value: fresh, unit: 'endpoints', goal: `= ${endpoints}` },
        },
        parameters: {
          endpoints,
          intervalMs: 200,
          timeoutMs: 150,
          concurrency: 32,
          pageBytes: Buffer.byteLength(PAGE),
          seconds,
          outcomes,
        },
      };
    } finally {
      if (child.connected) child.send({ type: 'exit' });
    }
  },
};

/** CPU per scrape of one page fetched back to back over one kept-alive connection (after a warm-up): the unit cost. */
async function sequentialCost(port: number, n: number): Promise<number> {
  const fetcher = new PageFetcher();
  const once = async () => {
    const loads = new PageLoads();
    const parser = new PromTextParser((s) => loads.add(s), { wanted: LOAD_METRICS });
    await fetcher.fetch(`http://127.0.0.1:${port}/metrics`, (text) => parser.push(text), {
      timeoutMs: 5_000,
      maxBytes: 4 * 1024 * 1024,
    });
    parser.end();
    loads.figures(0, null);
  };
  for (let i = 0; i < n; i++) await once();
  const cpu = process.cpuUsage();
  for (let i = 0; i < n; i++) await once();
  const used = process.cpuUsage(cpu);
  fetcher.close();
  return (used.user + used.system) / 1000 / n;
}

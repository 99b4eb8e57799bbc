import { loadavg } from 'node:os';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import {
  LOAD_METRICS,
  LoadScraper,
  PageFetcher,
  PageLoads,
  PromTextParser,
  ScrapeThread,
  type LoadScraping,
} from '../../src/scoring/load/index.js';
import { LoadScrapeSchema } from '../../src/ops/index.js';
import type { Figure, Suite } from '../harness.js';
import { forkChild } from '../support/child.js';
import { vllmPage } from '../support/vllm-page.js';

/** A DP=2 vLLM page with every family of vllm/v1/metrics/loggers.py (bench/support/vllm-page.ts): ~65 kB, ~740 lines. */
const PAGE = vllmPage(2);
/** The service's defaults (200 ms interval, 150 ms timeout, 32 at once, …), read from the schema that defines them. */
const { enabled: _enabled, thread: _thread, ...SETTINGS } = LoadScrapeSchema.parse(undefined);

/**
 * Scrape cost (issue 14 "Measure"): N endpoints scraped every 200 ms (N × 5 pages/s of a realistic vLLM DP=2 page) with
 * the default settings, by the two shapes of load.scrape.thread in the same run: LoadScraper in the event loop, and
 * ScrapeThread (the scraping in a worker thread, the event loop applying its reports). The HTTP servers run in a child
 * process, so the CPU figures are the scraper's alone (process CPU: all threads of this process); the main event loop
 * is measured by its delay (p99, max) and its utilisation (busy ms per second), which is what gRPC Score/Select and
 * ZMQ ingest would have lost. The unit costs come first: one page fetched back to back over one kept-alive
 * connection, fetch alone, and the parse of a page by its bytes (this version) against by a decoded string (before).
 */
export const scrapeSuite: Suite = {
  name: 'scrape',
  description: 'Load scraping: 64 and 256 vLLM /metrics pages every 200 ms, in the event loop vs in a worker thread',
  async run({ quick }) {
    const seconds = quick ? 3 : 10;
    const sizes = [64, 256];
    const child = await forkChild(new URL('./scrape-servers.mjs', import.meta.url));
    try {
      const ports = await new Promise<number[]>((resolve) => {
        child.once('message', (m: { type: string; ports: number[] }) => resolve(m.ports));
        child.send({ type: 'start', count: Math.max(...sizes), page: PAGE });
      });
      const n = quick ? 500 : 3_000;
      const unit = {
        fetchAndParse: await sequentialCost(ports[0], n, 'bytes'),
        fetchOnly: await sequentialCost(ports[0], n, 'none'),
        parseBytes: parseCost(n, 'bytes'),
        parseString: parseCost(n, 'string'),
      };
      const figures: Record<string, Figure> = {
        cpuMsPerScrape: { value: unit.fetchAndParse, unit: 'CPU ms (one target back to back: fetch + parse)' },
        cpuMsPerFetch: { value: unit.fetchOnly, unit: 'CPU ms (the same, page not parsed: HTTP client alone)' },
        parseMsPerPage: { value: unit.parseBytes, unit: 'CPU ms (pushBytes: only wanted lines decoded)' },
        parseMsPerPageString: {
          value: unit.parseString,
          unit: 'CPU ms (the page decoded, parsed as a string: before)',
        },
      };
      const loadBefore = loadavg();
      // What the measuring itself costs (the 1 ms delay monitor wakes an idle loop 1,000 times a second): subtracted.
      const idle = await idleCost(seconds);
      figures.idleCpuMsPerSecond = { value: idle, unit: 'CPU ms/s of the measuring alone (subtracted below)' };
      const runs: Record<string, unknown> = {};
      for (const endpoints of sizes) {
        for (const thread of [false, true]) {
          const r = await fleet(ports.slice(0, endpoints), thread, seconds, idle);
          const key = `${thread ? 'worker' : 'inLoop'}${endpoints}`;
          runs[key] = r;
          const goal = endpoints * (1000 / SETTINGS.intervalMs);
          figures[`${key}ScrapesPerSecond`] = { value: r.scrapesPerSecond, unit: 'scrapes/s', goal: `≥ ${goal}` };
          figures[`${key}CpuMsPerScrape`] = {
            value: r.cpuMsPerScrape,
            unit: 'CPU ms per scrape (all threads, measuring cost subtracted)',
          };
          figures[`${key}MainLoopBusyMsPerSecond`] = {
            value: r.mainBusyMsPerSecond,
            unit: 'ms/s main event loop busy',
          };
          figures[`${key}LoopDelayP99`] = { value: r.loopDelayP99, unit: 'ms main event loop delay p99' };
          figures[`${key}LoopDelayMax`] = { value: r.loopDelayMax, unit: 'ms main event loop delay max' };
          figures[`${key}OkShare`] = { value: r.okShare, unit: 'fraction', goal: '= 1' };
          figures[`${key}FreshEndpoints`] = { value: r.fresh, unit: 'endpoints', goal: `= ${endpoints}` };
        }
      }
      return {
        figures,
        parameters: {
          ...SETTINGS,
          sizes,
          pageBytes: Buffer.byteLength(PAGE),
          pageLines: PAGE.split('\n').length - 1,
          seconds,
          loadAverage: { before: loadBefore, after: loadavg() },
          runs,
        },
      };
    } finally {
      if (child.connected) child.send({ type: 'exit' });
    }
  },
};

/** One shape scraping `ports` for `seconds` after its first round (a worker started from TypeScript compiles first). */
async function fleet(ports: number[], thread: boolean, seconds: number, idleCpuMsPerSecond: number) {
  const options = {
    ...SETTINGS,
    known: () => ports.map((port) => ({ endpoint: `127.0.0.1:${port}`, rank: 0, model: null })),
  };
  const scraper: LoadScraping = thread ? new ScrapeThread(options) : new LoadScraper(options);
  scraper.start();
  const total = () => Object.values(scraper.counters.outcomes).reduce((a, b) => a + b, 0);
  const deadline = Date.now() + 60_000;
  while (total() < 2 * ports.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 1_000)); // warm-up: connections open, JIT settled
  const before = { ...scraper.counters.outcomes };
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  const elu = performance.eventLoopUtilization();
  const cpu = process.cpuUsage();
  const started = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1_000));
  const used = process.cpuUsage(cpu);
  const busy = performance.eventLoopUtilization(elu);
  const elapsed = (performance.now() - started) / 1000;
  delay.disable();
  const outcomes = Object.fromEntries(
    Object.entries(scraper.counters.outcomes).map(([k, v]) => [k, v - before[k as keyof typeof before]]),
  );
  const fresh = ports.filter((p) => scraper.get(`127.0.0.1:${p}`)?.stale === false).length;
  await scraper.stop();
  const scrapes = Object.values(outcomes).reduce((a, b) => a + b, 0);
  const cpuMs = (used.user + used.system) / 1000;
  return {
    scrapesPerSecond: scrapes / elapsed,
    cpuMsPerSecond: cpuMs / elapsed,
    cpuMsPerScrape: Math.max(0, cpuMs - idleCpuMsPerSecond * elapsed) / Math.max(1, scrapes),
    mainBusyMsPerSecond: (busy.active / elapsed / 1000) * 1000,
    loopDelayP99: delay.percentile(99) / 1e6,
    loopDelayMax: delay.max / 1e6,
    okShare: (outcomes.ok ?? 0) / Math.max(1, scrapes),
    fresh,
    outcomes,
  };
}

/** CPU ms/s of an idle process under the same event-loop delay monitor. */
async function idleCost(seconds: number): Promise<number> {
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  const cpu = process.cpuUsage();
  const started = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1_000));
  const used = process.cpuUsage(cpu);
  delay.disable();
  return (used.user + used.system) / 1000 / ((performance.now() - started) / 1000);
}

/** CPU per scrape of one page fetched back to back over one kept-alive connection (after a warm-up). */
async function sequentialCost(port: number, n: number, parse: 'bytes' | 'none'): Promise<number> {
  const fetcher = new PageFetcher();
  const once = async () => {
    const loads = new PageLoads();
    const parser = new PromTextParser((s) => loads.add(s), { wanted: LOAD_METRICS });
    await fetcher.fetch(`http://127.0.0.1:${port}/metrics`, parse === 'bytes' ? (c) => parser.pushBytes(c) : () => {}, {
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

/** CPU of parsing the page (in 16 kB chunks, as a socket hands it) and reading one rank's figures. */
function parseCost(n: number, how: 'bytes' | 'string'): number {
  const bytes = Buffer.from(PAGE);
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += 16_384) chunks.push(bytes.subarray(i, i + 16_384));
  const once = () => {
    const loads = new PageLoads();
    const parser = new PromTextParser((s) => loads.add(s), { wanted: LOAD_METRICS });
    const decoder = new TextDecoder();
    for (const c of chunks)
      if (how === 'bytes') parser.pushBytes(c);
      else parser.push(decoder.decode(c, { stream: true }));
    parser.end();
    loads.figures(0, null);
  };
  for (let i = 0; i < n; i++) once();
  const cpu = process.cpuUsage();
  for (let i = 0; i < n; i++) once();
  const used = process.cpuUsage(cpu);
  return (used.user + used.system) / 1000 / n;
}

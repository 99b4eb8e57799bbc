import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { SCRAPE_OUTCOMES, type ScrapeOutcome } from './page-fetch.js';
import { scrapedLoadNow } from './load-source.js';
import { ScrapeRoster } from './roster.js';
import type { LoadScrapeStatus, LoadScraping, ScrapedLoad } from './types.js';
import type { LoadScraperOptions } from './scraper.js';
import {
  FIGURE_STRIDE,
  type ToWorker,
  type WorkerInit,
  type WorkerReport,
  type WorkerTarget,
} from './scrape-worker.js';

export interface ScrapeThreadOptions extends Omit<LoadScraperOptions, 'random' | 'onMember'> {
  /** How often the worker reports what changed (figures, errors, counts). */
  flushMs?: number;
  /** A worker that died and was restarted: why (for the log). */
  onRestart?: (reason: string) => void;
}

interface Entry {
  id: number;
  endpoint: string;
  rank: number;
  model: string | null;
  url: string;
  /** performance.now() of this thread. */
  load: { running: number; waiting: number; kvUsage: number; at: number } | null;
  error: string | null;
}

/** The quickest restart; doubled (up to MAX_RESTART_DELAY_MS) while workers keep dying young. */
const MIN_RESTART_DELAY_MS = 100;
const MAX_RESTART_DELAY_MS = 5_000;
const YOUNG_MS = 5_000;

/**
 * Load scraping in a worker thread (config load.scrape.thread): the fetches and the parsing of every page run in
 * scrape-worker.ts, so that 256 endpoints at 200 ms cost the service's event loop (gRPC Score/Select, ZMQ ingest)
 * only the reports: a few small messages a second, applied as array writes. This side keeps the roster (which
 * endpoint on which page, resolved here so that status() answers at once), the last figures per endpoint (get() is a
 * map lookup and a subtraction) and the counters (the main thread owns prom-client).
 *
 * A worker that dies is restarted (counted in `restarts`, reported to onRestart) and handed the roster again;
 * meanwhile get() keeps the last figures, which turn stale as they age. Never throws into the caller.
 *
 * The in-loop shape (LoadScraper alone, `load.scrape.thread: false`) stays: it spends no second thread (the worker's
 * own wake-ups cost some CPU beyond the scrapes), its figures are visible the moment a scrape ends (here: within
 * `flushMs`), and it starts at once; for a few dozen endpoints its event-loop cost is small. The worker is the default
 * because the event loop's latency is what Score/Select and ingest need (bench/suites/scrape.ts measures both shapes).
 */
export class ScrapeThread implements LoadScraping {
  readonly counters = {
    outcomes: Object.fromEntries(SCRAPE_OUTCOMES.map((o) => [o, 0])) as Record<ScrapeOutcome, number>,
    skippedLines: 0,
    /** Workers that died and were replaced. */
    restarts: 0,
  };
  private readonly roster: ScrapeRoster;
  private readonly entries = new Map<string, Entry>();
  private readonly byId = new Map<number, Entry>();
  private nextId = 1;
  private worker: Worker | null = null;
  private workerStarted = 0;
  private restartDelay = MIN_RESTART_DELAY_MS;
  private restartTimer: NodeJS.Timeout | null = null;
  private syncTimer: NodeJS.Timeout | null = null;
  private targets = 0;
  private started = false;
  private stopped = false;

  constructor(private readonly options: ScrapeThreadOptions) {
    this.roster = new ScrapeRoster(options.urlTemplate, options.allowHostnames);
  }

  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    this.spawn();
    this.refresh();
    if (this.options.syncMs === 0) return;
    this.syncTimer = setInterval(() => this.refresh(), this.options.syncMs ?? 1_000);
    this.syncTimer.unref();
  }

  /** Stops the worker (its scrapes in flight aborted, its connections closed) and waits for it to exit. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.syncTimer) clearInterval(this.syncTimer);
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.entries.clear();
    this.byId.clear();
    this.targets = 0;
    const worker = this.worker;
    this.worker = null;
    if (!worker) return;
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.postMessage({ op: 'stop' } satisfies ToWorker);
    // A worker stuck past this is terminated: stop() always ends.
    const timer = setTimeout(() => void worker.terminate(), 5_000);
    await exited;
    clearTimeout(timer);
  }

  setMetricsUrl(endpoint: string, url: string | null): void {
    this.roster.setMetricsUrl(endpoint, url);
  }

  forget(endpoint: string): void {
    this.roster.forget(endpoint);
    this.refresh();
  }

  get(endpoint: string): ScrapedLoad | undefined {
    const load = this.entries.get(endpoint)?.load;
    return load ? scrapedLoadNow(load, this.options.staleMs) : undefined;
  }

  status(endpoint: string): LoadScrapeStatus | undefined {
    const entry = this.entries.get(endpoint);
    if (!entry) return undefined;
    return { metricsUrl: entry.url, load: this.get(endpoint), error: entry.error };
  }

  endpoints(): string[] {
    return [...this.entries.keys()].sort();
  }

  /** Metrics pages being scraped (the roster's distinct URLs). */
  get targetCount(): number {
    return this.targets;
  }

  /** Test hook: makes the worker exit at once, as a crash would. */
  crashWorker(): void {
    this.worker?.postMessage({ op: 'crash' } satisfies ToWorker);
  }

  /**
   * Re-reads `known()` and the metrics URLs: new endpoints get an entry (and an id), gone ones are dropped here at
   * once, an endpoint whose page changed starts afresh under a new id; the worker gets the roster when it changed.
   */
  refresh(): void {
    if (this.stopped || !this.started) return;
    const resolved = this.roster.resolve(this.options.known());
    let changed = resolved.length !== this.entries.size;
    const next = new Map<string, Entry>();
    for (const k of resolved) {
      let entry = this.entries.get(k.endpoint);
      if (entry && entry.url === k.url) {
        if (entry.rank !== k.rank || entry.model !== k.model) changed = true;
        entry.rank = k.rank;
        entry.model = k.model;
      } else {
        if (entry) this.byId.delete(entry.id);
        entry = {
          id: this.nextId++,
          endpoint: k.endpoint,
          rank: k.rank,
          model: k.model,
          url: k.url,
          load: null,
          error: null,
        };
        this.byId.set(entry.id, entry);
        changed = true;
      }
      next.set(k.endpoint, entry);
    }
    for (const [endpoint, entry] of this.entries) if (!next.has(endpoint)) this.byId.delete(entry.id);
    this.entries.clear();
    for (const [endpoint, entry] of next) this.entries.set(endpoint, entry);
    this.targets = new Set(resolved.map((k) => k.url)).size;
    if (changed) this.sendRoster();
  }

  private sendRoster(): void {
    const list: WorkerTarget[] = [...this.entries.values()].map((e) => ({
      id: e.id,
      endpoint: e.endpoint,
      rank: e.rank,
      model: e.model,
      url: e.url,
    }));
    this.worker?.postMessage({ op: 'targets', list } satisfies ToWorker);
  }

  private spawn(): void {
    const init: WorkerInit = {
      settings: {
        intervalMs: this.options.intervalMs,
        timeoutMs: this.options.timeoutMs,
        concurrency: this.options.concurrency,
        staleMs: this.options.staleMs,
        maxBytes: this.options.maxBytes,
        urlTemplate: this.options.urlTemplate,
        allowHostnames: this.options.allowHostnames ?? false,
      },
      flushMs: this.options.flushMs ?? Math.max(10, Math.min(50, Math.floor(this.options.intervalMs / 4))),
    };
    const worker = startWorker(init);
    this.worker = worker;
    this.workerStarted = performance.now();
    worker.on('message', (report: WorkerReport) => {
      if (this.worker === worker) this.apply(report);
    });
    let died = false;
    const onDeath = (why: string) => {
      if (died) return;
      died = true;
      if (this.worker !== worker || this.stopped) return;
      this.worker = null;
      this.counters.restarts++;
      const young = performance.now() - this.workerStarted < YOUNG_MS;
      const delay = young ? this.restartDelay : MIN_RESTART_DELAY_MS;
      this.restartDelay = young ? Math.min(MAX_RESTART_DELAY_MS, this.restartDelay * 2) : MIN_RESTART_DELAY_MS;
      this.options.onRestart?.(`scrape worker died (${why}); restarting in ${delay} ms`);
      this.restartTimer = setTimeout(() => {
        this.restartTimer = null;
        if (this.stopped) return;
        this.spawn();
        this.sendRoster();
      }, delay);
      this.restartTimer.unref();
    };
    worker.on('error', (err) => onDeath(err.message));
    worker.on('exit', (code) => onDeath(`exit code ${code}`));
    worker.unref();
  }

  /** A worker's report: figures and errors into the entries, counts into the counters and the duration histogram. */
  private apply(report: WorkerReport): void {
    const f = report.figures;
    const origin = performance.timeOrigin;
    for (let i = 0; i < f.length; i += FIGURE_STRIDE) {
      const entry = this.byId.get(f[i]);
      if (!entry) continue; // gone, or moved to another page since
      entry.load = Number.isNaN(f[i + 4])
        ? entry.load
        : { running: f[i + 1], waiting: f[i + 2], kvUsage: f[i + 3], at: f[i + 4] - origin };
    }
    for (const [id, error] of report.errors) {
      const entry = this.byId.get(id);
      if (entry) entry.error = error;
    }
    for (let i = 0; i < SCRAPE_OUTCOMES.length; i++) this.counters.outcomes[SCRAPE_OUTCOMES[i]] += report.outcomes[i];
    this.counters.skippedLines += report.skippedLines;
    const onScrape = this.options.onScrape;
    const d = report.durations;
    if (onScrape) for (let i = 0; i < d.length; i += 2) onScrape(SCRAPE_OUTCOMES[d[i]], d[i + 1]);
  }
}

/**
 * Starts scrape-worker as a worker thread from the built JavaScript (dist/, `npm start`), or, when this module is
 * TypeScript run by tsx or vitest, from its .ts source through tsx's loader (registered inside the worker).
 */
function startWorker(workerData: WorkerInit): Worker {
  const here = import.meta.url;
  if (!here.endsWith('.ts')) return new Worker(new URL('./scrape-worker.js', here), { workerData });
  const entry = new URL('./scrape-worker.ts', here).href;
  const boot = `import(${JSON.stringify(tsxEsmApi(here))}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); })`;
  return new Worker(boot, { eval: true, workerData });
}

/** tsx's ESM API module (its `import` export of `tsx/esm/api`), as a file URL: a worker has no loader of its own. */
function tsxEsmApi(from: string): string {
  const manifest = createRequire(from).resolve('tsx/package.json');
  const exports = (
    JSON.parse(readFileSync(manifest, 'utf8')) as { exports: Record<string, { import: { default: string } }> }
  ).exports;
  return pathToFileURL(join(dirname(manifest), exports['./esm/api'].import.default)).href;
}

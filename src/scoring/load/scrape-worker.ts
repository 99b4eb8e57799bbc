import { parentPort, workerData } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { SCRAPE_OUTCOMES, type ScrapeOutcome } from './page-fetch.js';
import { LoadScraper, type ScrapedMember } from './scraper.js';
import type { KnownEndpoint, LoadScrapeSettings } from './types.js';

/**
 * The scrape worker thread (started by scrape-thread.ts): runs a LoadScraper (fetch + parse of every page) off the
 * service's event loop and reports, every `flushMs`, only what changed, compactly:
 *
 *   main → worker: `{ op: 'targets', list: WorkerTarget[] }` (the whole roster: endpoint, its id, rank, model, URL),
 *                  `{ op: 'stop' }` (aborts the scrapes in flight, closes connections, then exits),
 *                  `{ op: 'crash' }` (exits at once: tests of the restart).
 *   worker → main: `WorkerReport` (figures in a transferred Float64Array, changed errors, counter deltas, durations).
 */

export interface WorkerInit {
  settings: LoadScrapeSettings & { allowHostnames: boolean };
  flushMs: number;
}

export interface WorkerTarget extends KnownEndpoint {
  /** The main thread's number for this endpoint on this URL: reports name it, so a late one for an old URL is dropped. */
  id: number;
  url: string;
}

export type ToWorker = { op: 'targets'; list: WorkerTarget[] } | { op: 'stop' } | { op: 'crash' };

/** Per figure row of `figures`: id, running, waiting, kvUsage, at (ms since the epoch; NaN: no good figures). */
export const FIGURE_STRIDE = 5;

export interface WorkerReport {
  figures: Float64Array;
  /** [id, error] for the members whose last error changed. */
  errors: [number, string | null][];
  /** Scrapes finished since the last report, per SCRAPE_OUTCOMES index. */
  outcomes: number[];
  /** [outcome index, seconds] pairs of those scrapes. */
  durations: Float64Array;
  skippedLines: number;
}

if (parentPort) run(parentPort, workerData as WorkerInit);

function run(port: NonNullable<typeof parentPort>, init: WorkerInit): void {
  let list: WorkerTarget[] = [];
  let ids = new Map<string, number>();
  const dirty = new Map<string, ScrapedMember>();
  const lastError = new Map<number, string | null>();
  const outcomes = SCRAPE_OUTCOMES.map(() => 0);
  let durations: number[] = [];
  let skippedReported = 0;
  const index = Object.fromEntries(SCRAPE_OUTCOMES.map((o, i) => [o, i])) as Record<ScrapeOutcome, number>;
  const scraper = new LoadScraper({
    ...init.settings,
    known: () => list,
    syncMs: 0, // the roster comes from the main thread: refreshed when it sends one
    onScrape: (outcome, seconds) => {
      outcomes[index[outcome]]++;
      durations.push(index[outcome], seconds);
    },
    onMember: (endpoint, member) => dirty.set(endpoint, member),
  });

  const flush = () => {
    const skipped = scraper.counters.skippedLines - skippedReported;
    if (dirty.size === 0 && durations.length === 0 && skipped === 0) return;
    const figures = new Float64Array(dirty.size * FIGURE_STRIDE);
    const errors: [number, string | null][] = [];
    let row = 0;
    for (const [endpoint, m] of dirty) {
      const id = ids.get(endpoint);
      if (id === undefined) continue;
      const load = m.load;
      figures.set(
        load
          ? [id, load.running, load.waiting, load.kvUsage, performance.timeOrigin + load.at]
          : [id, NaN, NaN, NaN, NaN],
        row,
      );
      row += FIGURE_STRIDE;
      if (lastError.get(id) !== m.error) {
        lastError.set(id, m.error);
        errors.push([id, m.error]);
      }
    }
    dirty.clear();
    const report: WorkerReport = {
      figures: figures.subarray(0, row),
      errors,
      outcomes: outcomes.splice(0, outcomes.length, ...SCRAPE_OUTCOMES.map(() => 0)),
      durations: Float64Array.from(durations),
      skippedLines: skipped,
    };
    skippedReported += skipped;
    durations = [];
    port.postMessage(report, [report.figures.buffer as ArrayBuffer, report.durations.buffer as ArrayBuffer]);
  };
  const timer = setInterval(flush, init.flushMs);

  port.on('message', (msg: ToWorker) => {
    if (msg.op === 'targets') {
      list = msg.list;
      ids = new Map(list.map((t) => [t.endpoint, t.id]));
      const live = new Set(ids.values());
      for (const id of [...lastError.keys()]) if (!live.has(id)) lastError.delete(id);
      scraper.refresh();
    } else if (msg.op === 'stop') {
      clearInterval(timer);
      void scraper.stop().then(() => process.exit(0));
    } else if (msg.op === 'crash') {
      process.exit(3);
    }
  });
  scraper.start();
}

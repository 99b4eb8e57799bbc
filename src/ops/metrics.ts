import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { CounterFamily } from '../common/index.js';
import { LabelledHistogram } from './histogram.js';

/**
 * A numeric snapshot read at scrape time: counters owned by other modules are never copied on the hot path. May be
 * async (a remote index's stats).
 */
export type Snapshot = () => Record<string, number> | Promise<Record<string, number>>;

/**
 * Prometheus metrics. Hot paths record only what has no owner elsewhere (Score latency and hit ratio); everything
 * else (index size, ingest counters, pipeline drops) is read from its owner when Prometheus scrapes.
 */
export class Metrics {
  readonly registry = new Registry();
  // Observed on every Score call: LabelledHistogram (histogram.ts), same /metrics text without per-observe label hashing.
  private readonly scoreSeconds: LabelledHistogram;
  private readonly scoreHitRatio: LabelledHistogram;
  private readonly degraded: Counter<'reason'>;
  private readonly prepareSeconds: LabelledHistogram;
  private readonly identifierSources: Counter<'source'>;
  private readonly imageFetches: Counter<'outcome'>;
  private readonly loadScrapeSeconds: Histogram;

  /**
   * `process: false` leaves out Node's process and runtime metrics (the index thread: the main thread reports them for
   * the process). `api: false` leaves out the API's own series (the main thread when the API runs in the index thread,
   * whose registry has them): one name is never exposed twice.
   */
  constructor(prefix = 'kv_indexer_', parts: { process?: boolean; api?: boolean } = {}) {
    if (parts.process !== false) collectDefaultMetrics({ register: this.registry, prefix });
    const registers = parts.api === false ? [] : [this.registry];
    this.scoreSeconds = new LabelledHistogram({
      name: `${prefix}score_seconds`,
      help: 'Score latency by input kind (chat, prompt, tokens, block_keys)',
      label: 'input',
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    this.scoreHitRatio = new LabelledHistogram({
      name: `${prefix}score_hit_ratio`,
      help: 'Best candidate matched blocks / total blocks per Score call',
      label: 'input',
      buckets: [0, 0.1, 0.25, 0.5, 0.75, 0.9, 1],
      registers,
    });
    this.prepareSeconds = new LabelledHistogram({
      name: `${prefix}prompt_prepare_seconds`,
      help: 'Time to turn a Score request into block keys (chat: render + tokenize + expand images + hash)',
      label: 'input',
      buckets: [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    this.identifierSources = new Counter({
      name: `${prefix}image_identifiers_total`,
      help: 'Multimodal items by identifier source (uuid, caller, vllm-mm-hash, content-hash)',
      labelNames: ['source'],
      registers,
    });
    this.imageFetches = new Counter({
      name: `${prefix}image_url_fetches_total`,
      help: 'http(s) image items by fetch outcome (fetched, cached, or why not fetched: disabled, timeout, too-large, …)',
      labelNames: ['outcome'],
      registers,
    });
    this.loadScrapeSeconds = new Histogram({
      name: `${prefix}load_scrape_seconds`,
      help: "Duration of one scrape of an endpoint's vLLM /metrics page (fetch + parse), every outcome",
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1],
      registers,
    });
    this.degraded = new Counter({
      name: `${prefix}score_degraded_total`,
      help: 'Score calls answered with zero scores because a dependency failed',
      labelNames: ['reason'],
      registers,
    });
  }

  observeScore(input: string, seconds: number, totalBlocks: number, bestMatched: number): void {
    this.scoreSeconds.observe(input, seconds);
    if (totalBlocks > 0) this.scoreHitRatio.observe(input, bestMatched / totalBlocks);
  }

  observePrepare(input: string, seconds: number): void {
    this.prepareSeconds.observe(input, seconds);
  }

  /** One request's multimodal items: their identifier sources, and the fetch outcome of http(s) images. */
  countItems(items: readonly { identifierSource?: string; fetchOutcome?: string | null }[]): void {
    for (const item of items) {
      if (item.identifierSource) this.identifierSources.inc({ source: item.identifierSource });
      if (item.fetchOutcome) this.imageFetches.inc({ outcome: item.fetchOutcome });
    }
  }

  observeLoadScrape(seconds: number): void {
    this.loadScrapeSeconds.observe(seconds);
  }

  countDegraded(reason: string): void {
    this.degraded.inc({ reason });
  }

  /**
   * A gauge family read at scrape time: `snapshot()` returns {labelValue: number}; with no label, use key ''.
   * A snapshot that fails (a remote index that is down) does not fail the scrape: the family shows NaN (no label) or
   * no samples (labelled) — "unknown", never a stale or zero figure — and the rest of /metrics renders.
   */
  gauge(name: string, help: string, label: string | null, snapshot: Snapshot): void {
    if (name.endsWith('_total')) throw new Error(`${name}: a *_total family only grows: register it with counter()`);
    new Gauge({
      name,
      help,
      labelNames: label ? [label] : [],
      registers: [this.registry],
      collect: collectFrom(label, snapshot, NaN),
    });
  }

  /**
   * A counter family read at scrape time from counts its owner keeps as plain numbers (never copied on the hot path):
   * exported with TYPE counter, so rate() and resets work as Prometheus expects. A failed snapshot keeps the last figure.
   */
  counter(name: string, help: string, label: string | null, snapshot: Snapshot): void {
    if (!name.endsWith('_total')) throw new Error(`${name}: a counter family's name ends in _total`);
    new Counter({
      name,
      help,
      labelNames: label ? [label] : [],
      registers: [this.registry],
      collect: collectFrom(label, snapshot, null),
    });
  }

  /** Registers an owner's counter families (common/counter-family.ts), each read from `counts()` at scrape time. */
  counterFamilies<C>(prefix: string, families: readonly CounterFamily<C>[], counts: () => C): void {
    for (const f of families) this.counter(`${prefix}${f.name}`, f.help, f.label, () => f.read(counts()));
  }
}

/**
 * The collect() of a family read from a snapshot. A gauge is set to the values; a counter is reset and incremented to
 * them. When the snapshot fails, a gauge shows `whenFailed` (NaN: unknown) or no samples, while a counter keeps its
 * last figure: a count only grows, so the last one read is still true, and dropping to zero would read as a reset.
 */
function collectFrom(label: string | null, snapshot: Snapshot, whenFailed: number | null) {
  return async function (this: Gauge | Counter) {
    let values: Record<string, number>;
    try {
      values = await snapshot();
    } catch {
      if (this instanceof Counter) return;
      this.reset();
      if (!label && whenFailed !== null) this.set(whenFailed);
      return;
    }
    this.reset();
    for (const [key, value] of Object.entries(values)) {
      const labels = label ? { [label]: key } : {};
      if (this instanceof Gauge) this.set(labels, value);
      else this.inc(labels, value > 0 ? value : 0);
    }
  };
}

export interface MetricsServerOptions {
  host: string;
  port: number;
  /** Readiness for /healthz (200 when true, 503 otherwise). */
  ready(): boolean;
  /**
   * The whole /metrics text made from this registry's: the index thread's registry appended (start-threaded.ts), or
   * every serving process's merged in (the primary of api.processes, ops/metrics-merge.ts). Absent: this registry's.
   */
  render?: (own: string) => Promise<string>;
}

/** /metrics (Prometheus text) and /healthz on their own port. */
export async function startMetricsServer(
  metrics: Metrics,
  options: MetricsServerOptions,
): Promise<{ port: number; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET') {
      res.writeHead(405).end();
      return;
    }
    if (req.url === '/metrics') {
      const { render } = options;
      const text = render ? metrics.registry.metrics().then(render) : metrics.registry.metrics();
      text.then(
        (body) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(body),
        (err: Error) => res.writeHead(500).end(err.message),
      );
    } else if (req.url === '/healthz') {
      const ready = options.ready();
      res.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' }).end(ready ? 'ok\n' : 'not ready\n');
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

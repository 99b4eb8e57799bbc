import { performance } from 'node:perf_hooks';
import { Limiter } from './limiter.js';
import { PageFetcher, SCRAPE_OUTCOMES, type ScrapeOutcome } from './page-fetch.js';
import { PromTextParser } from './prom-text.js';
import { scrapedLoadNow } from './load-source.js';
import { ScrapeRoster } from './roster.js';
import { LOAD_METRICS, PageLoads, type LoadFigures } from './vllm-load.js';
import type { KnownEndpoint, LoadScrapeSettings, LoadScrapeStatus, LoadScraping, ScrapedLoad } from './types.js';

export interface LoadScraperOptions extends LoadScrapeSettings {
  /** The endpoints the service knows now (events, AddEndpoint, discovery): the only ones scraped. */
  known: () => KnownEndpoint[];
  /** How often `known()` is read again (AddEndpoint / RemoveEndpoint also call refresh()); 0: only by refresh(). */
  syncMs?: number;
  /** Every finished scrape: its outcome and duration (the kv_indexer_load_scrape_seconds histogram). */
  onScrape?: (outcome: ScrapeOutcome, seconds: number) => void;
  /** Every member of a finished scrape's target, after its state was updated (the worker reports these). */
  onMember?: (endpoint: string, member: Readonly<ScrapedMember>) => void;
  /** Template URLs for host-name identities too (api.allowHostnameEndpoints); else IP literals only. */
  allowHostnames?: boolean;
  /** Start offsets are random in [0, interval) so that hundreds of targets do not fire together. */
  random?: () => number;
}

/** An endpoint's scraping state: the last good figures (`at`: performance.now() of their scrape) and last failure. */
export interface ScrapedMember {
  load: (LoadFigures & { at: number }) | null;
  error: string | null;
}

interface Member extends KnownEndpoint, ScrapedMember {}

/** One metrics URL: scraped by one timer chain (never two scrapes at once), read for each of its members. */
interface Target {
  url: string;
  members: Map<string, Member>;
  nextAt: number;
  timer: NodeJS.Timeout | null;
  abort: AbortController | null;
  running: Promise<void> | null;
  removed: boolean;
}

/**
 * Scrapes each known endpoint's vLLM /metrics page every `intervalMs` and keeps the last good figures per endpoint
 * (issue 14 §1). Implements LoadSource for Select; `status()` feeds ListEndpoints.
 */
export class LoadScraper implements LoadScraping {
  readonly counters = {
    outcomes: Object.fromEntries(SCRAPE_OUTCOMES.map((o) => [o, 0])) as Record<ScrapeOutcome, number>,
    /** Invalid lines on pages that were read whole. */
    skippedLines: 0,
  };
  private readonly targets = new Map<string, Target>();
  private readonly members = new Map<string, { target: Target; member: Member }>();
  /** The page of each endpoint (AddEndpoint's metrics_url, else the template). */
  private readonly roster: ScrapeRoster;
  private readonly limiter: Limiter;
  private readonly fetcher = new PageFetcher();
  private syncTimer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(private readonly options: LoadScraperOptions) {
    this.limiter = new Limiter(options.concurrency);
    this.roster = new ScrapeRoster(options.urlTemplate, options.allowHostnames);
  }

  start(): void {
    this.refresh();
    if (this.options.syncMs === 0) return;
    this.syncTimer = setInterval(() => this.refresh(), this.options.syncMs ?? 1_000);
    this.syncTimer.unref();
  }

  /** Stops every timer, aborts the scrapes in flight and waits for them; closes kept-alive connections. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.syncTimer) clearInterval(this.syncTimer);
    const running = [...this.targets.values()].map((t) => this.drop(t));
    await Promise.all(running);
    this.fetcher.close();
  }

  setMetricsUrl(endpoint: string, url: string | null): void {
    this.roster.setMetricsUrl(endpoint, url);
  }

  /** A removed endpoint: its metrics_url is forgotten and, once `known()` no longer lists it, its state. */
  forget(endpoint: string): void {
    this.roster.forget(endpoint);
    this.refresh();
  }

  get(endpoint: string): ScrapedLoad | undefined {
    const load = this.members.get(endpoint)?.member.load;
    return load ? scrapedLoadNow(load, this.options.staleMs) : undefined;
  }

  status(endpoint: string): LoadScrapeStatus | undefined {
    const found = this.members.get(endpoint);
    if (!found) return undefined;
    return { metricsUrl: found.target.url, load: this.get(endpoint), error: found.member.error };
  }

  /** Identities being scraped, sorted. */
  endpoints(): string[] {
    return [...this.members.keys()].sort();
  }

  get targetCount(): number {
    return this.targets.size;
  }

  /** Re-reads `known()`: new endpoints start being scraped, gone ones stop (in-flight scrape aborted, state dropped). */
  refresh(): void {
    if (this.stopped) return;
    const wanted = new Map<string, Map<string, KnownEndpoint>>();
    for (const k of this.roster.resolve(this.options.known())) {
      let group = wanted.get(k.url);
      if (!group) wanted.set(k.url, (group = new Map()));
      group.set(k.endpoint, k);
    }
    for (const target of [...this.targets.values()]) {
      const group = wanted.get(target.url);
      for (const endpoint of [...target.members.keys()]) {
        if (group?.has(endpoint)) continue;
        target.members.delete(endpoint);
        this.members.delete(endpoint);
      }
      if (target.members.size === 0) void this.drop(target);
    }
    for (const [url, group] of wanted) {
      const target = this.targets.get(url) ?? this.addTarget(url);
      for (const k of group.values()) {
        const existing = target.members.get(k.endpoint);
        if (existing) {
          existing.rank = k.rank;
          existing.model = k.model;
          continue;
        }
        const member: Member = { ...k, load: null, error: null };
        target.members.set(k.endpoint, member);
        this.members.set(k.endpoint, { target, member });
      }
    }
  }

  private addTarget(url: string): Target {
    const now = performance.now();
    const offset = (this.options.random ?? Math.random)() * this.options.intervalMs;
    const target: Target = {
      url,
      members: new Map(),
      nextAt: now + offset,
      timer: null,
      abort: null,
      running: null,
      removed: false,
    };
    this.targets.set(url, target);
    this.schedule(target, offset);
    return target;
  }

  private async drop(target: Target): Promise<void> {
    target.removed = true;
    this.targets.delete(target.url);
    for (const endpoint of target.members.keys()) this.members.delete(endpoint);
    if (target.timer) clearTimeout(target.timer);
    target.abort?.abort();
    await target.running;
  }

  private schedule(target: Target, delayMs: number): void {
    target.timer = setTimeout(
      () => {
        target.timer = null;
        target.running = this.scrape(target).finally(() => {
          target.running = null;
          if (target.removed || this.stopped) return;
          // Fixed rate; ticks missed by a slow scrape are skipped, not caught up in a burst.
          const now = performance.now();
          const interval = this.options.intervalMs;
          target.nextAt += interval;
          if (target.nextAt < now) target.nextAt += Math.ceil((now - target.nextAt) / interval) * interval;
          this.schedule(target, target.nextAt - now);
        });
      },
      Math.max(0, delayMs),
    );
    target.timer.unref();
  }

  private async scrape(target: Target): Promise<void> {
    const release = await this.limiter.acquire();
    try {
      if (target.removed || this.stopped) return;
      target.abort = new AbortController();
      const page = new PageLoads();
      const parser = new PromTextParser((s) => page.add(s), { wanted: LOAD_METRICS });
      const onChunk = (chunk: Buffer) => parser.pushBytes(chunk);
      const started = performance.now();
      const fetched = await this.fetcher.fetch(target.url, onChunk, {
        timeoutMs: this.options.timeoutMs,
        maxBytes: this.options.maxBytes,
        signal: target.abort.signal,
      });
      if (target.removed || this.stopped) return; // aborted by removal or shutdown: not an outcome of the target
      const at = performance.now();
      let outcome: ScrapeOutcome = fetched.outcome;
      if (fetched.outcome === 'ok') {
        this.counters.skippedLines += parser.end().skipped;
        for (const m of target.members.values()) {
          const figures = page.figures(m.rank, m.model);
          if (typeof figures === 'string') {
            m.error = `parse_error: ${figures}`;
            outcome = 'parse_error';
          } else {
            m.load = { ...figures, at };
            m.error = null;
          }
        }
      } else {
        for (const m of target.members.values()) m.error = `${fetched.outcome}: ${fetched.detail}`;
      }
      this.counters.outcomes[outcome]++;
      this.options.onScrape?.(outcome, (at - started) / 1000);
      const onMember = this.options.onMember;
      if (onMember) for (const m of target.members.values()) onMember(m.endpoint, m);
    } finally {
      target.abort = null;
      release();
    }
  }
}

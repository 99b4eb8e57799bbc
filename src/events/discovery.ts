import {
  DiscoveryError,
  fetchEventSources,
  type DiscoveredSource,
  type DiscoveryFailure,
  type DiscoveryLimits,
} from './discovery-sources.js';
import type { CounterFamily, Log } from '../common/index.js';

export interface DiscoveryOptions extends DiscoveryLimits {
  /** Time between two polls while answers are good (ms). */
  intervalMs: number;
  /** After n failed polls in a row the next waits min(maxBackoffMs, intervalMs × 2^n) (ms). */
  maxBackoffMs: number;
}

export const DEFAULT_DISCOVERY: DiscoveryOptions = {
  intervalMs: 5_000,
  timeoutMs: 2_000,
  maxBackoffMs: 60_000,
  maxBodyBytes: 65_536,
  maxSources: 64,
};

/** Poll outcomes and the changes they caused, over the process's life (metrics). */
export interface DiscoveryCounters {
  /** Polls by outcome: `ok` or a DiscoveryFailure. */
  polls: Record<string, number>;
  /** Rank sockets connected, moved to a new address (publisher restarted), removed (rank no longer listed). */
  changes: { added: number; moved: number; removed: number };
}

export function newDiscoveryCounters(): DiscoveryCounters {
  return { polls: {}, changes: { added: 0, moved: 0, removed: 0 } };
}

/** Discovery's counts on /metrics (registered by service/write-path-metrics.ts). */
export const DISCOVERY_COUNTER_FAMILIES: readonly CounterFamily<DiscoveryCounters>[] = [
  {
    name: 'discovery_polls_total',
    help: 'Discovery polls of vLLM /kv_event_sources, by outcome (ok or the refusal reason)',
    label: 'outcome',
    read: (d) => d.polls,
  },
  {
    name: 'discovery_changes_total',
    help: 'Rank sockets changed by discovery answers (added, moved, removed)',
    label: 'change',
    read: (d) => d.changes,
  },
];

/** One discovery URL as ListEndpoints shows it. */
export interface DiscoveryStatus {
  url: string;
  /** `pending` before the first answer, `ok` after a good one, `failing` after a bad one. */
  state: 'pending' | 'ok' | 'failing';
  /** The last failure, `<reason>: <detail>`, null once an answer is good again. */
  lastError: string | null;
  /** Failed polls in a row. */
  failures: number;
  /** The sources of the last good answer (what the sockets are connected to). */
  sources: DiscoveredSource[];
}

type PollerLog = Pick<Log, 'warn' | 'info'>;

/**
 * Polls one vLLM HTTP base URL for its KV-event sources and hands every good answer to `apply` (the transport
 * reconnects what changed). A bad answer changes nothing: it is counted by reason, shown in status(), logged when the
 * reason changes, and the next poll backs off exponentially. Polls never overlap; stop() ends the loop.
 */
export class DiscoveryPoller {
  private stopped = false;
  private wake: (() => void) | null = null;
  private timer: NodeJS.Timeout | null = null;
  private loop: Promise<void> | null = null;
  private current: DiscoveryStatus;
  /** Completed polls (tests wait on it). */
  polls = 0;

  constructor(
    readonly url: string,
    private readonly options: DiscoveryOptions,
    private readonly apply: (sources: DiscoveredSource[]) => Promise<void>,
    private readonly counters: DiscoveryCounters,
    private readonly log: PollerLog,
  ) {
    this.current = { url, state: 'pending', lastError: null, failures: 0, sources: [] };
  }

  start(): void {
    this.loop ??= this.run();
  }

  status(): DiscoveryStatus {
    return { ...this.current, sources: this.current.sources.map((s) => ({ ...s })) };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.wake?.();
    await this.loop;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      await this.pollOnce();
      if (this.stopped) return;
      await this.sleep(this.nextDelay());
    }
  }

  /** The wait before the next poll: the interval, doubled per failure in a row up to maxBackoffMs. */
  nextDelay(): number {
    const { intervalMs, maxBackoffMs } = this.options;
    const failures = this.current.failures;
    return failures === 0 ? intervalMs : Math.min(maxBackoffMs, intervalMs * 2 ** Math.min(failures, 30));
  }

  private async pollOnce(): Promise<void> {
    try {
      const sources = await fetchEventSources(this.url, this.options);
      if (this.stopped) return;
      await this.apply(sources);
      this.counters.polls.ok = (this.counters.polls.ok ?? 0) + 1;
      if (this.current.state === 'failing') this.log.info({ url: this.url }, 'KV-event discovery answers again');
      this.current = { url: this.url, state: 'ok', lastError: null, failures: 0, sources };
    } catch (err) {
      // Anything else (e.g. a socket that would not open) is a failed poll too: the loop must go on.
      const reason: DiscoveryFailure = err instanceof DiscoveryError ? err.reason : 'apply_failed';
      const message = err instanceof DiscoveryError ? err.message : `apply_failed: ${String(err)}`;
      this.counters.polls[reason] = (this.counters.polls[reason] ?? 0) + 1;
      const previous = this.current.lastError;
      this.current = { ...this.current, state: 'failing', lastError: message, failures: this.current.failures + 1 };
      if (previous === null || !previous.startsWith(`${reason}:`)) {
        this.log.warn(
          { url: this.url, reason, error: message },
          'KV-event discovery answer refused: sockets left as they were, retrying with backoff',
        );
      }
    } finally {
      this.polls++;
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
      this.timer = setTimeout(resolve, ms);
    });
  }
}

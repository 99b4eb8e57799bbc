import { decodeEventBatch, PayloadError, type WireFormat } from '../decode/index.js';
import { BoundedQueue, type Limiter } from '../bounded-queue.js';
import { bump, type TransportCounters } from '../counters.js';
import type { Ingestor } from '../ingest/index.js';
import { requestReplay, ReplayError } from '../replay-client.js';
import { classifySeq } from '../wire/sequence.js';
import type { KvEvent } from '../types.js';

/** What to do when replay cannot fill a hole (buffer exhausted, hole in the replies, undecodable replayed batch). */
export type UnrecoverablePolicy = 'clear' | 'degrade';

export interface StreamOptions {
  /** Decoded batches waiting per endpoint; beyond it new batches are dropped and the endpoint resyncs. */
  queueCapacity: number;
  replayEnabled: boolean;
  replayTimeoutMs: number;
  /** Longest pause between two replies of a started replay before it is resumed from the first missing batch (ms). */
  replayIdleTimeoutMs: number;
  /** After a failed replay, gaps of this endpoint are not replayed for this long (ms). */
  replayCooldownMs: number;
  onUnrecoverable: UnrecoverablePolicy;
  /** seq more than this below the last one is a publisher restart whatever its timestamp. */
  restartDistance: bigint;
  /** A long batch is applied in chunks of this many events, yielding to the event loop between chunks. */
  chunkEvents: number;
  /** A worker yields to the event loop after running this long (ms). */
  sliceMs: number;
}

export const DEFAULT_STREAM_OPTIONS: StreamOptions = {
  queueCapacity: 10_000,
  replayEnabled: true,
  replayTimeoutMs: 2_000,
  replayIdleTimeoutMs: 500,
  replayCooldownMs: 5_000,
  onUnrecoverable: 'clear',
  restartDistance: 1_000_000n,
  chunkEvents: 256,
  sliceMs: 5,
};

/** Why an endpoint was cleared from outside its stream (the `reason` label of endpoint_clears_total). */
export type ClearReason = 'api' | 'stale' | 'resync' | 'lease_takeover' | 'moved';

export interface StreamContext {
  ingestor: Ingestor;
  counters: TransportCounters;
  options: StreamOptions;
  limiter: Limiter;
  format: WireFormat;
  log: { warn(fields: object, message: string): void; info(fields: object, message: string): void };
  clock: () => number;
}

export interface QueuedBatch {
  seq: bigint;
  ts: number;
  /** When the message arrived (ms, the pipeline's clock); replayed batches have none. */
  receivedAt?: number;
  model: string;
  events: KvEvent[];
}

/** Per-stream figures for ListEndpoints. */
export interface StreamStats {
  applied: number;
  gaps: number;
  duplicates: number;
  replays: number;
  replayedBatches: number;
  unrecoverable: number;
  restarts: number;
  clears: number;
  overflowDrops: number;
}

/** Back-pressure marks (batches queued on one stream): see EndpointStream.backpressure(). */
const BACKLOG_HIGH = 256;
const BACKLOG_LOW = 64;

/** Batches applied between two flushes of the index writer (one round trip for a remote index). */
const FLUSH_EVERY = 64;

const yieldNow = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * One (endpoint, rank): its sequence state, its bounded queue of decoded batches, and a worker that applies them in
 * order (spec §1 sequence rules). Streams are independent: one waiting on a replay or a slow index write does not
 * stall the others. Live batches that arrive during a replay wait in the queue and are applied after it, each
 * sequence number once.
 */
/**
 * A publisher timestamp this far (seconds) from the receive time is not this moment's clock: a replayed recording, or
 * a publisher whose clock is off. Its stream's timestamps are then rebased on the receive time for the lag figure.
 */
export const MAX_TIMESTAMP_SKEW_SECONDS = 300;

export class EndpointStream {
  last: bigint | null = null;
  lastTs = -Infinity;
  /** lastTs on this host's clock (seconds), for endpoint_lag_seconds; -Infinity before the first batch. */
  lagTs = -Infinity;
  /** Seconds added to publisher timestamps to get lagTs: 0, or the rebase of a far-off clock (null: not decided yet). */
  private tsOffset: number | null = null;
  model = '';
  /** Why the endpoint's entries may be incomplete or stale (null = in sync). */
  degradedReason: string | null = null;
  lastEventAt = 0;
  replaying = false;
  /** The identity configured for the connection it arrives on (connect mode), if any. */
  expectedEndpoint: string | null = null;
  readonly stats: StreamStats = {
    applied: 0,
    gaps: 0,
    duplicates: 0,
    replays: 0,
    replayedBatches: 0,
    unrecoverable: 0,
    restarts: 0,
    clears: 0,
    overflowDrops: 0,
  };
  private readonly queue: BoundedQueue<QueuedBatch>;
  /** Highest seq dropped on overflow and not yet recovered. */
  private resyncTo: bigint | null = null;
  /** Highest seq applied from a replay (live batches up to it are overlap). */
  private replayedThrough: bigint | null = null;
  private cooldownUntil = 0;
  /** True from the moment a worker is started until its loop exits (set synchronously both ways: no lost wake-up). */
  private draining = false;
  private running: Promise<void> | null = null;
  /** Socket loops waiting for the backlog to drain (see backpressure()). */
  private drained: (() => void)[] = [];
  private closed = false;

  constructor(
    readonly identity: string,
    /** `<ip>:<port>` from the topic. */
    readonly endpoint: string,
    readonly rank: number,
    /** The replay ROUTER of this rank, when known. */
    public replayAddress: string | null,
    /** Where its messages come from: `bind` or the connect address. */
    readonly source: string,
    private readonly ctx: StreamContext,
  ) {
    this.queue = new BoundedQueue(ctx.options.queueCapacity);
  }

  get queued(): number {
    return this.queue.length;
  }

  /** A worker runs (applying, replaying or waiting for a replay slot) or batches wait. */
  get busy(): boolean {
    return this.draining || this.queue.length > 0;
  }

  get degraded(): boolean {
    return this.degradedReason !== null;
  }

  /**
   * Back-pressure for the socket that feeds this stream: when the backlog is CPU-bound (the worker is applying, not
   * waiting on a replay) and above BACKLOG_HIGH, a promise that resolves once it is down to BACKLOG_LOW. The socket
   * loop awaits it, so further messages wait in ZMQ's own buffer as raw frames instead of as decoded batches that
   * outlive young-generation GC. During a replay live batches still queue (up to the capacity), so one endpoint
   * waiting on its publisher never stalls a shared socket.
   */
  backpressure(): Promise<void> | undefined {
    if (this.queue.length <= BACKLOG_HIGH || this.replaying || this.closed) return undefined;
    return new Promise<void>((resolve) => this.drained.push(resolve));
  }

  private releaseBackpressure(): void {
    if (this.drained.length === 0 || (this.queue.length > BACKLOG_LOW && !this.replaying && !this.closed)) return;
    const waiting = this.drained;
    this.drained = [];
    for (const resolve of waiting) resolve();
  }

  /** Queues a decoded live batch; false when the queue is full (dropped, counted, resync scheduled). */
  offer(item: QueuedBatch): boolean {
    if (this.closed) return false;
    this.lastEventAt = item.receivedAt ?? this.ctx.clock();
    if (!this.queue.push(item)) {
      this.ctx.counters.overflowDrops++;
      this.stats.overflowDrops++;
      if (this.resyncTo === null || item.seq > this.resyncTo) this.resyncTo = item.seq;
      return false;
    }
    if (!this.draining) {
      this.draining = true;
      this.running = this.drain();
    }
    return true;
  }

  /** Resolves when the queue is empty and no replay runs. */
  async idle(): Promise<void> {
    while (this.draining) await this.running;
  }

  /** Stops the worker and drops queued batches (the caller clears the index). */
  async close(): Promise<void> {
    this.closed = true;
    this.queue.clear();
    this.releaseBackpressure();
    await this.running?.catch(() => undefined);
  }

  /**
   * The worker: applies queued batches in order. In-order batches apply synchronously (no promise per batch); the
   * writer is flushed every FLUSH_EVERY batches and before the worker stops, and the worker yields to the event loop
   * after each time slice. The loop only exits right after seeing an empty queue, in the same tick as `draining`
   * turns false, so a batch offered meanwhile always finds a worker.
   */
  private async drain(): Promise<void> {
    const { options } = this.ctx;
    let sliceStart = performance.now();
    let unflushed = 0;
    try {
      for (;;) {
        if (this.closed) break;
        const item = this.queue.shift();
        if (this.drained.length > 0) this.releaseBackpressure();
        if (item === undefined) {
          if (unflushed === 0) break;
          unflushed = 0;
          await this.flush();
          continue;
        }
        try {
          const pending = this.process(item);
          if (pending) await pending;
        } catch (err) {
          this.applyFailed(err);
        }
        const now = performance.now();
        if (++unflushed >= FLUSH_EVERY || now - sliceStart > options.sliceMs) {
          unflushed = 0;
          await this.flush();
          if (now - sliceStart > options.sliceMs) {
            await yieldNow();
            sliceStart = performance.now();
          }
        }
        if (this.queue.length === 0 && this.resyncTo !== null) await this.resyncAfterOverflow();
      }
    } catch (err) {
      this.applyFailed(err);
    } finally {
      this.draining = false;
      this.releaseBackpressure();
    }
  }

  private async flush(): Promise<void> {
    try {
      await this.ctx.ingestor.flush();
    } catch (err) {
      this.applyFailed(err);
    }
  }

  /**
   * An index write failed (a remote index unavailable). A batch that threw while applying did not advance the
   * sequence state, so the next one shows a gap and replay repairs it; a failed flush may have lost writes of
   * batches already counted as applied, so the endpoint is marked degraded until a clear or an AllBlocksCleared.
   */
  private applyFailed(err: unknown): void {
    this.ctx.counters.applyErrors++;
    this.degrade('index_write_failed');
    this.ctx.log.warn({ endpoint: this.identity, err: String(err) }, 'applying a batch to the index failed');
  }

  /**
   * Clear + resync (the API's ClearEndpoint, or an endpoint silent past endpoints.clearStaleSeconds): entries
   * dropped, sequence state forgotten so that the next batch replays from 0.
   */
  resetForResync(reason: ClearReason = 'api'): void {
    this.clear(reason);
    this.last = null;
    this.lastTs = -Infinity;
    this.tsOffset = null;
    this.replayedThrough = null;
  }

  private async resyncAfterOverflow(): Promise<void> {
    const to = this.resyncTo!;
    this.resyncTo = null;
    if (this.last !== null && this.last >= to) return;
    this.ctx.counters.overflowResyncs++;
    const from = this.last === null ? 0n : this.last + 1n;
    const outcome = await this.recover(from);
    if (outcome !== 'ok' || this.last === null || this.last < to) this.degrade('overflow');
  }

  /** Applies the sequence rules to one live batch; returns a promise only when it has to wait (replay, long batch). */
  private process(item: QueuedBatch): Promise<void> | undefined {
    const c = this.ctx.counters;
    // Replayed batches carry no model (old layout): they take the live stream's.
    this.model = item.model;
    const verdict = classifySeq(this, item.seq, item.ts, this.ctx.options.restartDistance);
    switch (verdict) {
      case 'apply':
      case 'first':
        return this.apply(item);
      case 'duplicate':
        // Live batches a replay already applied are expected overlap, not duplicates.
        if (this.replayedThrough !== null && item.seq <= this.replayedThrough) c.replayOverlap++;
        else {
          c.duplicates++;
          this.stats.duplicates++;
        }
        return;
      case 'restart':
        c.restarts++;
        this.stats.restarts++;
        this.ctx.log.info({ endpoint: this.identity, last: String(this.last), seq: String(item.seq) }, 'publisher restarted: endpoint cleared');
        this.clear('restart');
        return item.seq === 0n ? this.apply(item) : this.join(item);
      case 'join':
        return this.join(item);
      case 'gap':
        c.sequenceGaps++;
        this.stats.gaps++;
        return this.recover(this.last! + 1n).then((outcome) => this.afterRecovery(item, outcome, 'gap_no_replay'));
    }
  }

  private async join(item: QueuedBatch): Promise<void> {
    this.ctx.counters.joinedMidStream++;
    const outcome = await this.recover(0n);
    return this.afterRecovery(item, outcome, 'joined_no_replay');
  }

  /** After a replay attempt, the live batch that triggered it either was covered, follows on, or still leaves a hole. */
  private async afterRecovery(item: QueuedBatch, outcome: RecoverOutcome, reasonIfMissing: string): Promise<void> {
    if (this.closed) return;
    if (this.last !== null && item.seq <= this.last) {
      this.ctx.counters.replayOverlap++;
      return;
    }
    if (this.last === null ? item.seq !== 0n : item.seq !== this.last + 1n) {
      // The hole stays. Without a usable replay: apply anyway (better partial than nothing) and say so. With one
      // that did not reach this batch, the hole is unrecoverable.
      if (outcome === 'failed') this.degrade(reasonIfMissing);
      else this.unrecoverable('hole');
    }
    return this.apply(item);
  }

  /** Applies one batch (without flushing). Synchronous unless the batch is long enough to be applied in chunks. */
  private apply(item: QueuedBatch): Promise<void> | undefined {
    const events = item.events;
    this.model = item.model;
    if (events.length <= this.ctx.options.chunkEvents) {
      this.ctx.ingestor.applySync(this.identity, item.model, events);
      this.applied(item);
      return undefined;
    }
    return this.applyChunked(item);
  }

  private async applyChunked(item: QueuedBatch): Promise<void> {
    const { ingestor, options } = this.ctx;
    const events = item.events;
    const chunk = options.chunkEvents;
    for (let i = 0; i < events.length; i += chunk) {
      if (i > 0) {
        await yieldNow();
        if (this.closed) return;
      }
      ingestor.applySync(this.identity, item.model, events, i, Math.min(events.length, i + chunk));
    }
    this.applied(item);
  }

  private applied(item: QueuedBatch): void {
    this.last = item.seq;
    this.lastTs = item.ts;
    if (this.tsOffset === null) {
      const skew = (item.receivedAt ?? this.ctx.clock()) / 1000 - item.ts;
      this.tsOffset = Math.abs(skew) > MAX_TIMESTAMP_SKEW_SECONDS ? skew : 0;
    }
    this.lagTs = item.ts + this.tsOffset;
    this.stats.applied++;
    this.ctx.counters.applied++;
    if (this.degradedReason !== null && item.events.some((e) => e.type === 'AllBlocksCleared')) this.degradedReason = null;
  }

  /**
   * Replays from `from` and applies every contiguous batch the publisher still has. Holes (the buffer no longer
   * reaching `from`, a missing seq, an undecodable batch) follow the unrecoverable policy and the replay continues
   * from the next batch.
   */
  private async recover(from: bigint): Promise<RecoverOutcome> {
    const outcome = await this.replayResuming(from);
    if (outcome !== 'restarted') return outcome;
    // The replay showed a new publisher process behind the gap: its entries are cleared; rebuild it from 0.
    return this.replayResuming(0n) as Promise<RecoverOutcome>;
  }

  /**
   * replayFrom, resumed: a replay cut short after some batches — a publisher's ROUTER drops what exceeds its send
   * high-water mark (1,000 messages by default) when it writes a long replay faster than its socket drains, losing
   * the tail and the end marker — is asked again at once from the first missing batch, while each attempt gets further.
   */
  private async replayResuming(from: bigint): Promise<RecoverOutcome | 'restarted'> {
    let outcome = await this.replayFrom(from);
    for (let resumes = 0; outcome === 'partial'; resumes++) {
      outcome = resumes < MAX_REPLAY_RESUMES ? await this.replayFrom(this.last! + 1n) : this.replayFailed('timeout');
    }
    return outcome;
  }

  /**
   * Replays from `from`. When the stream has applied `from - 1`, the request starts one earlier, at that "anchor"
   * batch: the same publisher process returns it with the timestamp we applied; a different timestamp means the
   * publisher restarted and its counter has already passed ours (a restart that looks like a gap). Then the
   * endpoint is cleared and 'restarted' returned.
   */
  private async replayFrom(from: bigint): Promise<RecoverOutcome | 'restarted' | 'partial'> {
    const { counters: c, options } = this.ctx;
    if (!options.replayEnabled) return this.noReplay('disabled');
    if (this.replayAddress === null) return this.noReplay('no_endpoint');
    if (this.ctx.clock() < this.cooldownUntil) return this.noReplay('cooldown');
    await this.ctx.limiter.acquire();
    if (this.closed) {
      this.ctx.limiter.release();
      return this.noReplay('closed');
    }
    this.replaying = true;
    c.replaysRequested++;
    this.stats.replays++;
    let outcome: RecoverOutcome = 'ok';
    let first = true;
    const anchor = this.last !== null && from > 0n && this.last === from - 1n ? this.last : null;
    const anchorTs = this.lastTs;
    const lastBefore = this.last;
    try {
      for await (const reply of requestReplay(this.replayAddress, anchor ?? from, { timeoutMs: options.replayTimeoutMs, idleTimeoutMs: Math.min(options.replayIdleTimeoutMs, options.replayTimeoutMs) })) {
        if (this.closed) return 'failed';
        if (first && anchor !== null && reply.seq === anchor) {
          first = false;
          if (anchorTs !== batchTs(reply.payload, this.ctx.format)) {
            c.restarts++;
            this.stats.restarts++;
            this.ctx.log.info({ endpoint: this.identity, seq: String(anchor) }, 'publisher restarted (seen by replay): endpoint cleared');
            this.clear('restart');
            c.replaysCompleted++;
            return 'restarted';
          }
          continue;
        }
        const expected = this.last === null ? from : this.last + 1n;
        if (reply.seq < expected) {
          first = false;
          continue;
        }
        let batch;
        try {
          batch = decodeEventBatch(reply.payload, this.ctx.format);
        } catch (err) {
          if (!(err instanceof PayloadError)) throw err;
          bump(c.decodeErrors, err.reason);
          outcome = this.unrecoverable('bad_payload');
          this.last = reply.seq;
          first = false;
          continue;
        }
        if ((batch.dataParallelRank ?? 0) !== this.rank) {
          outcome = this.unrecoverable('rank_mismatch');
          break;
        }
        if (reply.seq > expected) outcome = this.unrecoverable(first ? 'buffer_exhausted' : 'hole');
        first = false;
        for (const issue of batch.issues) bump(c.decodeErrors, issue.reason);
        if (batch.unlistedIssues) for (const [reason, n] of Object.entries(batch.unlistedIssues)) bump(c.decodeErrors, reason, n);
        const pending = this.apply({ seq: reply.seq, ts: batch.ts, model: this.model, events: batch.events });
        if (pending) await pending;
        c.replayedBatches++;
        this.replayedThrough = reply.seq;
        if (++this.stats.replayedBatches % FLUSH_EVERY === 0) await this.flush();
      }
      await this.flush();
      if (outcome !== 'failed') c.replaysCompleted++;
      return outcome;
    } catch (err) {
      const reason = err instanceof ReplayError ? err.reason : 'bad_reply';
      if (reason === 'timeout' && this.last !== lastBefore && !this.closed) {
        bump(c.replaysFailed, 'partial');
        return 'partial';
      }
      this.ctx.log.warn({ endpoint: this.identity, replay: this.replayAddress, err: String(err) }, 'replay failed');
      return this.replayFailed(reason);
    } finally {
      this.replaying = false;
      this.ctx.limiter.release();
    }
  }

  /** A replay that failed: counted, and no new one before the cooldown. */
  private replayFailed(reason: string): RecoverOutcome {
    bump(this.ctx.counters.replaysFailed, reason);
    this.cooldownUntil = this.ctx.clock() + this.ctx.options.replayCooldownMs;
    return 'failed';
  }

  private noReplay(reason: string): RecoverOutcome {
    bump(this.ctx.counters.replaysFailed, reason);
    return 'failed';
  }

  private unrecoverable(reason: string): RecoverOutcome {
    bump(this.ctx.counters.unrecoverable, reason);
    this.stats.unrecoverable++;
    if (this.ctx.options.onUnrecoverable === 'clear') this.clear('unrecoverable');
    else this.degrade('unrecoverable');
    return 'unrecoverable';
  }

  /** Drops the endpoint's entries; the sequence state is kept so that the stream rebuilds from the next batch. */
  clear(reason: string): void {
    bump(this.ctx.counters.clears, reason);
    this.stats.clears++;
    this.ctx.ingestor.clear(this.identity);
    this.degradedReason = null;
    if (reason === 'restart') {
      this.last = null;
      this.lastTs = -Infinity;
    this.tsOffset = null;
      this.replayedThrough = null;
    }
  }

  private degrade(reason: string): void {
    if (this.degradedReason === null) bump(this.ctx.counters.degraded, reason);
    this.degradedReason = reason;
  }
}

type RecoverOutcome = 'ok' | 'failed' | 'unrecoverable';

/** Replays resumed in a row after partial replies before giving up (each must have applied at least one batch). */
const MAX_REPLAY_RESUMES = 8;

/** The publisher timestamp of a payload, NaN when it does not decode. */
function batchTs(payload: Uint8Array, format: WireFormat): number {
  try {
    return decodeEventBatch(payload, format).ts;
  } catch {
    return NaN;
  }
}

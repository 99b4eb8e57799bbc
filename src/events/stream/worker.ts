import { bump } from '../counters.js';
import { Backlog } from './backlog.js';
import { Recovery } from './recovery.js';
import { StreamSequence } from './sequence-rules.js';
import {
  type ClearReason,
  FLUSH_EVERY,
  type QueuedBatch,
  type RecoverOutcome,
  type StreamContext,
  type StreamStats,
  type StreamStatus,
} from './types.js';

/**
 * One (endpoint, rank): its sequence state (sequence-rules.ts), its bounded backlog of decoded batches (backlog.ts),
 * and a worker that applies them in order and repairs gaps by replay (recovery.ts). Streams are independent: one
 * waiting on a replay or a slow index write does not stall the others. Live batches that arrive during a replay wait
 * in the backlog and are applied after it, each sequence number once. Callers read its state through getters and
 * status(); only the worker changes it.
 */
export class EndpointStream {
  private readonly sequence = new StreamSequence();
  private readonly backlog: Backlog;
  private readonly recovery: Recovery;
  private readonly counts: StreamStats = {
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
  private currentModel = '';
  /** Why the endpoint's entries may be incomplete or stale (null = in sync). */
  private degradedBecause: string | null = null;
  private lastEventTime = 0;
  /** True from the moment a worker is started until its loop exits (set synchronously both ways: no lost wake-up). */
  private draining = false;
  private running: Promise<void> | null = null;
  private closed = false;

  constructor(
    readonly identity: string,
    /** `<ip>:<port>` from the topic. */
    readonly endpoint: string,
    readonly rank: number,
    /** The replay ROUTER of this rank, when known. */
    replayAddress: string | null,
    /** Where its messages come from: `bind` or the connect address. */
    readonly source: string,
    private readonly ctx: StreamContext,
    /** The identity configured for the connection it arrives on (connect mode), if any. */
    readonly expectedEndpoint: string | null = null,
  ) {
    this.backlog = new Backlog(ctx.options.queueCapacity);
    this.recovery = new Recovery(
      {
        identity,
        rank,
        sequence: this.sequence,
        stats: this.counts,
        model: () => this.currentModel,
        closed: () => this.closed,
        apply: (item) => this.apply(item),
        flush: () => this.flush(),
        clear: (reason) => this.clear(reason),
        unrecoverable: (reason) => this.unrecoverable(reason),
      },
      ctx,
      replayAddress,
    );
  }

  /** Last applied sequence number, null when nothing is applied. */
  get last(): bigint | null {
    return this.sequence.last;
  }

  /** Publisher timestamp of the last applied batch on this host's clock (seconds); -Infinity before the first. */
  get lagTs(): number {
    return this.sequence.lagTs;
  }

  get model(): string {
    return this.currentModel;
  }

  get degradedReason(): string | null {
    return this.degradedBecause;
  }

  get degraded(): boolean {
    return this.degradedBecause !== null;
  }

  /** When its last live message arrived (ms, the pipeline's clock); 0 before the first. */
  get lastEventAt(): number {
    return this.lastEventTime;
  }

  get replaying(): boolean {
    return this.recovery.replaying;
  }

  get replayAddress(): string | null {
    return this.recovery.replayAddress;
  }

  /** The endpoint moved to a connection that names its replay ROUTER: later gaps replay from there. */
  useReplayAddress(address: string): void {
    this.recovery.useReplayAddress(address);
  }

  /** Per-stream figures (read-only: the worker's own counts). */
  get stats(): Readonly<StreamStats> {
    return this.counts;
  }

  get queued(): number {
    return this.backlog.length;
  }

  /** A worker runs (applying, replaying or waiting for a replay slot) or batches wait. */
  get busy(): boolean {
    return this.draining || this.backlog.length > 0;
  }

  status(): StreamStatus {
    return {
      identity: this.identity,
      endpoint: this.endpoint,
      rank: this.rank,
      model: this.currentModel,
      source: this.source,
      replayAddress: this.replayAddress,
      expectedEndpoint: this.expectedEndpoint,
      degradedReason: this.degradedBecause,
      replaying: this.replaying,
      lastSeq: this.sequence.last,
      lagTs: this.sequence.lagTs,
      lastEventAt: this.lastEventTime,
      queued: this.backlog.length,
      stats: { ...this.counts },
    };
  }

  /** Back-pressure for the socket that feeds this stream (Backlog.pressure). */
  backpressure(): Promise<void> | undefined {
    return this.backlog.pressure(this.replaying, this.closed);
  }

  private releaseBackpressure(): void {
    this.backlog.release(this.replaying, this.closed);
  }

  /** Queues a decoded live batch; false when the queue is full (dropped, counted, resync scheduled). */
  offer(item: QueuedBatch): boolean {
    if (this.closed) return false;
    this.lastEventTime = item.receivedAt ?? this.ctx.clock();
    if (!this.backlog.push(item)) {
      this.ctx.counters.overflowDrops++;
      this.counts.overflowDrops++;
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
    this.backlog.clear();
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
    const { budget } = this.ctx;
    let unflushed = 0;
    budget.enter();
    try {
      for (;;) {
        if (this.closed) break;
        const item = this.backlog.shift();
        if (this.backlog.pressed) this.releaseBackpressure();
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
        const spent = budget.spent();
        if (++unflushed >= FLUSH_EVERY || spent) {
          unflushed = 0;
          await this.flush();
          if (spent) await budget.yield();
        }
        if (this.backlog.length === 0 && this.backlog.resyncDue) await this.resyncAfterOverflow();
      }
    } catch (err) {
      this.applyFailed(err);
    } finally {
      budget.leave();
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
    this.sequence.forget();
  }

  private async resyncAfterOverflow(): Promise<void> {
    const to = this.backlog.takeResync()!;
    if (this.sequence.covers(to)) return;
    this.ctx.counters.overflowResyncs++;
    const outcome = await this.recovery.recover(this.sequence.next);
    if (outcome !== 'ok' || !this.sequence.covers(to)) this.degrade('overflow');
  }

  /** Applies the sequence rules to one live batch; returns a promise only when it has to wait (replay, long batch). */
  private process(item: QueuedBatch): Promise<void> | undefined {
    const c = this.ctx.counters;
    // Replayed batches carry no model (old layout): they take the live stream's.
    this.currentModel = item.model;
    switch (this.sequence.verdict(item.seq, item.ts, this.ctx.options.restartDistance)) {
      case 'apply':
      case 'first':
        return this.apply(item);
      case 'duplicate':
        // Live batches a replay already applied are expected overlap, not duplicates.
        if (this.sequence.replayCovered(item.seq)) c.replayOverlap++;
        else {
          c.duplicates++;
          this.counts.duplicates++;
        }
        return;
      case 'restart':
        c.restarts++;
        this.counts.restarts++;
        this.ctx.log.info(
          { endpoint: this.identity, last: String(this.sequence.last), seq: String(item.seq) },
          'publisher restarted: endpoint cleared',
        );
        this.clear('restart');
        return item.seq === 0n ? this.apply(item) : this.join(item);
      case 'join':
        return this.join(item);
      case 'gap':
        c.sequenceGaps++;
        this.counts.gaps++;
        return this.recovery
          .recover(this.sequence.next)
          .then((outcome) => this.afterRecovery(item, outcome, 'gap_no_replay'));
    }
  }

  private async join(item: QueuedBatch): Promise<void> {
    this.ctx.counters.joinedMidStream++;
    const outcome = await this.recovery.recover(0n);
    return this.afterRecovery(item, outcome, 'joined_no_replay');
  }

  /** After a replay attempt, the live batch that triggered it either was covered, follows on, or still leaves a hole. */
  private async afterRecovery(item: QueuedBatch, outcome: RecoverOutcome, reasonIfMissing: string): Promise<void> {
    if (this.closed) return;
    if (this.sequence.covers(item.seq)) {
      this.ctx.counters.replayOverlap++;
      return;
    }
    if (item.seq !== this.sequence.next) {
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
    this.currentModel = item.model;
    if (events.length <= this.ctx.options.chunkEvents) {
      this.ctx.ingestor.applySync(this.identity, item.model, events);
      this.applied(item);
      return undefined;
    }
    return this.applyChunked(item);
  }

  private async applyChunked(item: QueuedBatch): Promise<void> {
    const { ingestor, options, budget } = this.ctx;
    const events = item.events;
    const chunk = options.chunkEvents;
    for (let i = 0; i < events.length; i += chunk) {
      if (i > 0 && budget.spent()) {
        await budget.yield();
        if (this.closed) return;
      }
      ingestor.applySync(this.identity, item.model, events, i, Math.min(events.length, i + chunk));
    }
    this.applied(item);
  }

  private applied(item: QueuedBatch): void {
    this.sequence.applied(item.seq, item.ts, item.receivedAt, this.ctx.clock);
    this.counts.applied++;
    this.ctx.counters.applied++;
    if (this.degradedBecause !== null && item.events.some((e) => e.type === 'AllBlocksCleared'))
      this.degradedBecause = null;
  }

  private unrecoverable(reason: string): RecoverOutcome {
    bump(this.ctx.counters.unrecoverable, reason);
    this.counts.unrecoverable++;
    if (this.ctx.options.onUnrecoverable === 'clear') this.clear('unrecoverable');
    else this.degrade('unrecoverable');
    return 'unrecoverable';
  }

  /** Drops the endpoint's entries; the sequence state is kept so that the stream rebuilds from the next batch. */
  private clear(reason: string): void {
    bump(this.ctx.counters.clears, reason);
    this.counts.clears++;
    this.ctx.ingestor.clear(this.identity);
    this.degradedBecause = null;
    if (reason === 'restart') this.sequence.forget();
  }

  private degrade(reason: string): void {
    if (this.degradedBecause === null) bump(this.ctx.counters.degraded, reason);
    this.degradedBecause = reason;
  }
}

import { decodeEventBatch, PayloadError, type WireFormat } from '../decode/index.js';
import { bump } from '../counters.js';
import { requestReplay, ReplayError } from '../replay-client.js';
import type { StreamSequence } from './sequence-rules.js';
import { FLUSH_EVERY, type QueuedBatch, type RecoverOutcome, type StreamContext, type StreamStats } from './types.js';

/** Replays resumed in a row after partial replies before giving up (each must have applied at least one batch). */
const MAX_REPLAY_RESUMES = 8;

/** What recovery needs from its stream: who it is, its state, and the stream's own ways to apply and clear. */
export interface RecoveryHost {
  readonly identity: string;
  readonly rank: number;
  readonly sequence: StreamSequence;
  readonly stats: StreamStats;
  /** The live stream's model (replayed batches of the old layout carry none). */
  model(): string;
  closed(): boolean;
  apply(item: QueuedBatch): Promise<void> | undefined;
  flush(): Promise<void>;
  /** Drops the endpoint's entries (a restart also forgets the sequence state). */
  clear(reason: string): void;
  /** A hole replay cannot fill: the unrecoverable policy (clear or degrade). */
  unrecoverable(reason: string): RecoverOutcome;
}

/**
 * Gap repair by replay for one stream: asks the publisher's replay ROUTER for the missing batches (one replay at a
 * time per pipeline limiter slot), applies every contiguous one it still has, resumes a replay cut short, tells a
 * restarted publisher from a gap, and backs off after a failure.
 */
export class Recovery {
  private replayingNow = false;
  private cooldownUntil = 0;

  constructor(
    private readonly host: RecoveryHost,
    private readonly ctx: StreamContext,
    /** The replay ROUTER of this rank, when known. */
    private address: string | null,
  ) {}

  get replaying(): boolean {
    return this.replayingNow;
  }

  get replayAddress(): string | null {
    return this.address;
  }

  /** The endpoint moved to a connection that names its replay ROUTER. */
  useReplayAddress(address: string): void {
    this.address = address;
  }

  /**
   * Replays from `from` and applies every contiguous batch the publisher still has. Holes (the buffer no longer
   * reaching `from`, a missing seq, an undecodable batch) follow the unrecoverable policy and the replay continues
   * from the next batch.
   */
  async recover(from: bigint): Promise<RecoverOutcome> {
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
      outcome =
        resumes < MAX_REPLAY_RESUMES ? await this.replayFrom(this.host.sequence.next) : this.replayFailed('timeout');
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
    const host = this.host;
    const seq = host.sequence;
    if (!options.replayEnabled) return this.noReplay('disabled');
    if (this.address === null) return this.noReplay('no_endpoint');
    if (this.ctx.clock() < this.cooldownUntil) return this.noReplay('cooldown');
    await this.ctx.limiter.acquire();
    if (host.closed()) {
      this.ctx.limiter.release();
      return this.noReplay('closed');
    }
    this.replayingNow = true;
    c.replaysRequested++;
    host.stats.replays++;
    let outcome: RecoverOutcome = 'ok';
    let first = true;
    const anchor = seq.last !== null && from > 0n && seq.last === from - 1n ? seq.last : null;
    const anchorTs = seq.lastTs;
    const lastBefore = seq.last;
    const timeouts = {
      timeoutMs: options.replayTimeoutMs,
      idleTimeoutMs: Math.min(options.replayIdleTimeoutMs, options.replayTimeoutMs),
    };
    try {
      for await (const reply of requestReplay(this.address, anchor ?? from, timeouts)) {
        if (host.closed()) return 'failed';
        if (first && anchor !== null && reply.seq === anchor) {
          first = false;
          if (anchorTs !== batchTs(reply.payload, this.ctx.format)) {
            c.restarts++;
            host.stats.restarts++;
            this.ctx.log.info(
              { endpoint: host.identity, seq: String(anchor) },
              'publisher restarted (seen by replay): endpoint cleared',
            );
            host.clear('restart');
            c.replaysCompleted++;
            return 'restarted';
          }
          continue;
        }
        const expected = seq.last === null ? from : seq.last + 1n;
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
          outcome = host.unrecoverable('bad_payload');
          seq.skip(reply.seq);
          first = false;
          continue;
        }
        if ((batch.dataParallelRank ?? 0) !== host.rank) {
          outcome = host.unrecoverable('rank_mismatch');
          break;
        }
        if (reply.seq > expected) outcome = host.unrecoverable(first ? 'buffer_exhausted' : 'hole');
        first = false;
        for (const issue of batch.issues) bump(c.decodeErrors, issue.reason);
        if (batch.unlistedIssues)
          for (const [reason, n] of Object.entries(batch.unlistedIssues)) bump(c.decodeErrors, reason, n);
        const pending = host.apply({ seq: reply.seq, ts: batch.ts, model: host.model(), events: batch.events });
        if (pending) await pending;
        c.replayedBatches++;
        seq.replayed(reply.seq);
        if (++host.stats.replayedBatches % FLUSH_EVERY === 0) await host.flush();
      }
      await host.flush();
      if (outcome !== 'failed') c.replaysCompleted++;
      return outcome;
    } catch (err) {
      const reason = err instanceof ReplayError ? err.reason : 'bad_reply';
      if (reason === 'timeout' && seq.last !== lastBefore && !host.closed()) {
        bump(c.replaysFailed, 'partial');
        return 'partial';
      }
      this.ctx.log.warn({ endpoint: host.identity, replay: this.address, err: String(err) }, 'replay failed');
      return this.replayFailed(reason);
    } finally {
      this.replayingNow = false;
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
}

/** The publisher timestamp of a payload, NaN when it does not decode. */
function batchTs(payload: Uint8Array, format: WireFormat): number {
  try {
    return decodeEventBatch(payload, format).ts;
  } catch {
    return NaN;
  }
}

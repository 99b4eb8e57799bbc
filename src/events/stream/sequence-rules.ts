import { classifySeq, type SeqState, type SeqVerdict } from '../wire/sequence.js';

/**
 * A publisher timestamp this far (seconds) from the receive time is not this moment's clock: a replayed recording, or
 * a publisher whose clock is off. Its stream's timestamps are then rebased on the receive time for the lag figure.
 */
export const MAX_TIMESTAMP_SKEW_SECONDS = 300;

/**
 * One stream's sequence state and the rules over it (spec/vllm-kv-events.md §1; the verdicts are the pure function
 * of ../wire/sequence.ts): what was applied last and when, which live batches a replay already covered, and the
 * publisher-clock offset behind the lag figure. The worker owns it; callers read the stream's status.
 */
export class StreamSequence implements SeqState {
  /** Last applied sequence number, null when nothing is applied (new stream, or after a restart or resync). */
  last: bigint | null = null;
  /** Publisher timestamp of the last applied batch. */
  lastTs = -Infinity;
  /** lastTs on this host's clock (seconds), for endpoint_lag_seconds; -Infinity before the first batch. */
  lagTs = -Infinity;
  /** Seconds added to publisher timestamps to get lagTs: 0, or the rebase of a far-off clock (null: not decided yet). */
  private tsOffset: number | null = null;
  /** Highest seq applied from a replay (live batches up to it are overlap). */
  private replayedThrough: bigint | null = null;

  verdict(seq: bigint, ts: number, restartDistance: bigint): SeqVerdict {
    return classifySeq(this, seq, ts, restartDistance);
  }

  /** The seq that applies next (0 when nothing is applied). */
  get next(): bigint {
    return this.last === null ? 0n : this.last + 1n;
  }

  /** Whether seq was already applied (a live batch a replay covered, or a duplicate). */
  covers(seq: bigint): boolean {
    return this.last !== null && seq <= this.last;
  }

  /** A live duplicate that a replay already applied: expected overlap, not a duplicate. */
  replayCovered(seq: bigint): boolean {
    return this.replayedThrough !== null && seq <= this.replayedThrough;
  }

  /**
   * Records one applied batch. On the first, its receive time (ms, this host's clock; `clock()` for a replayed batch,
   * which has none) decides the timestamp rebase.
   */
  applied(seq: bigint, ts: number, receivedAtMs: number | undefined, clock: () => number): void {
    this.last = seq;
    this.lastTs = ts;
    if (this.tsOffset === null) {
      const skew = (receivedAtMs ?? clock()) / 1000 - ts;
      this.tsOffset = Math.abs(skew) > MAX_TIMESTAMP_SKEW_SECONDS ? skew : 0;
    }
    this.lagTs = ts + this.tsOffset;
  }

  /** A replayed batch was applied (or skipped as undecodable): later live batches up to it are overlap. */
  replayed(seq: bigint): void {
    this.replayedThrough = seq;
  }

  /** Skips a replayed batch that cannot be decoded: the hole is handled as unrecoverable, the stream moves on. */
  skip(seq: bigint): void {
    this.last = seq;
  }

  /** Forgets the state (publisher restart, clear + resync): the next batch is the first or joins mid-stream. */
  forget(): void {
    this.last = null;
    this.lastTs = -Infinity;
    this.tsOffset = null;
    this.replayedThrough = null;
  }
}

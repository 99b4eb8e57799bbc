/**
 * The per-(endpoint, rank) sequence rules of spec/vllm-kv-events.md §1, as a pure function so that they are tested
 * apart from sockets. The stream (../stream/) acts on the verdict.
 */

export type SeqVerdict =
  /** seq == last + 1: apply. */
  | 'apply'
  /** Nothing applied yet and seq == 0: apply. */
  | 'first'
  /** Nothing applied yet and seq > 0: joined mid-stream, replay from 0 when possible. */
  | 'join'
  /** seq > last + 1: batches were lost, replay from last + 1. */
  | 'gap'
  /** seq <= last, from the same publisher process: drop. */
  | 'duplicate'
  /** seq <= last, from a new publisher process (counter reset): clear the endpoint, then treat as 'first'/'join'. */
  | 'restart';

export interface SeqState {
  /** Last applied sequence number, null when nothing is applied (new stream, or after a clear). */
  last: bigint | null;
  /** Publisher timestamp of the last applied batch. */
  lastTs: number;
}

/**
 * A restart is told from a duplicate by the batch timestamp: a duplicate repeats an older batch (ts ≤ the last
 * applied ts), a restarted publisher publishes new batches (ts later than anything applied). As a safety net a
 * sequence number more than `restartDistance` below the last one is a restart whatever its timestamp.
 */
export function classifySeq(state: SeqState, seq: bigint, ts: number, restartDistance: bigint): SeqVerdict {
  const last = state.last;
  if (last === null) return seq === 0n ? 'first' : 'join';
  if (seq === last + 1n) return 'apply';
  if (seq > last) return 'gap';
  if (ts > state.lastTs || last - seq > restartDistance) return 'restart';
  return 'duplicate';
}

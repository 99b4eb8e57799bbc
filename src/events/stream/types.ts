import type { WireFormat } from '../decode/index.js';
import type { Limiter } from '../bounded-queue.js';
import type { TransportCounters } from '../counters.js';
import type { Ingestor } from '../ingest/index.js';
import type { KvEvent } from '../types.js';
import type { Log } from '../../common/index.js';
import type { TurnBudget } from './turn-budget.js';

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
  /** A long batch is applied in chunks of this many events, yielding to the event loop between chunks once the turn's slice is spent. */
  chunkEvents: number;
  /** The stream workers together yield to the event loop after running this long in one turn (ms, turn-budget.ts). */
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

/** What every stream of a pipeline shares. */
export interface StreamContext {
  ingestor: Ingestor;
  counters: TransportCounters;
  options: StreamOptions;
  limiter: Limiter;
  format: WireFormat;
  log: Pick<Log, 'warn' | 'info'>;
  clock: () => number;
  /** The ingest time per turn of the event loop that every stream's worker draws on. */
  budget: TurnBudget;
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

/** A stream's state at one moment, for ListEndpoints and the endpoint metrics (a copy: changing it changes nothing). */
export interface StreamStatus {
  /** Scoring identity: `<ip>:<port>` or `<ip>:<port>@dp<rank>`. */
  identity: string;
  endpoint: string;
  rank: number;
  model: string;
  /** `bind`, the connect address, or `in-process`. */
  source: string;
  replayAddress: string | null;
  /** The identity configured for its connection, when one was (a difference is an identity mismatch). */
  expectedEndpoint: string | null;
  degradedReason: string | null;
  replaying: boolean;
  lastSeq: bigint | null;
  /** lastTs on this host's clock (seconds); -Infinity before the first batch. */
  lagTs: number;
  /** When its last live message arrived (ms, the pipeline's clock); 0 before the first. */
  lastEventAt: number;
  queued: number;
  stats: StreamStats;
}

/** How a replay attempt ended for the batches it was asked for. */
export type RecoverOutcome = 'ok' | 'failed' | 'unrecoverable';

/** Batches applied between two flushes of the index writer (one round trip for a remote index). */
export const FLUSH_EVERY = 64;

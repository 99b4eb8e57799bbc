import type { WireFormat } from './decode/index.js';
import type { TransportCounters } from './counters.js';
import type { StreamOptions, StreamStatus } from './stream/types.js';
import type { WireTally } from './wire-tally.js';
import type { Log } from '../common/index.js';

/**
 * What the event pipeline (pipeline.ts) takes and shows: where a message came from, its options and hostile-input
 * limits, and the per-endpoint figures of ListEndpoints and /metrics.
 */

/** Kept for callers of the first pipeline: the counters are now the transport's. */
export type PipelineCounters = TransportCounters;

export type PipelineLog = Pick<Log, 'warn' | 'info'>;

/** Where a live message came from. */
export interface MessageOrigin {
  /** `bind`, a connect address, or `in-process`. */
  source: string;
  /** The replay ROUTER serving this origin's rank (connect mode), or null. */
  replay: string | null;
  /** The `<ip>:<port>` this origin's topic is expected to name (connect mode, optional). */
  expect?: string | null;
  /**
   * The scoring identity of every message from this origin (a per-rank socket whose rank has a configured identity,
   * e.g. llm-d's serving endpoint `<ip>:<port + r>`), or null/absent: the identity comes from the topic and the
   * batch's data-parallel rank.
   */
  identity?: string | null;
  /** The data-parallel rank of this origin's socket (used with `identity`). */
  rank?: number;
}

export const BIND_ORIGIN: MessageOrigin = { source: 'bind', replay: null };

export interface PipelineOptions {
  format?: WireFormat;
  stream?: Partial<StreamOptions>;
  /** Replays running at once, over all endpoints. */
  maxConcurrentReplays?: number;
  /** Replay address for an endpoint whose origin names none (bind mode): topic `<ip>:<port>` and rank → address. */
  resolveReplay?: (endpoint: string, rank: number) => string | null;
  /** Index entries by tier for an endpoint identity (ListEndpoints). */
  blockCounts?: (identity: string) => Record<string, number>;
  /** An endpoint with no message for this long is stale (ms). */
  staleMs?: number;
  /**
   * A stale endpoint silent for this long has its entries cleared by sweepStale() (ms; 0 or absent: never): its cache
   * can no longer be vouched for (a network partition, a pod gone without a goodbye). When it publishes again it
   * resynchronises like a new endpoint (replay from 0 where it has a replay socket).
   */
  clearStaleMs?: number;
  clock?: () => number;
  /** Bounds on hostile input, checked before decoding (defaults: PIPELINE_LIMITS). */
  limits?: Partial<PipelineLimits>;
}

export interface PipelineLimits {
  /** Longer topic frames are dropped (`bad_topic`) without being decoded, cached or logged in full. */
  maxTopicBytes: number;
  /** Larger payload frames are dropped (`payload_too_large`) before decoding; a valid topic's batch is then lost. */
  maxPayloadBytes: number;
  /** Endpoint identities (endpoint × rank) tracked at once; batches of further ones are dropped (`too_many_endpoints`). */
  maxEndpoints: number;
}

export const PIPELINE_LIMITS: PipelineLimits = {
  maxTopicBytes: 1024,
  maxPayloadBytes: 16 * 1024 * 1024,
  maxEndpoints: 16_384,
};

/** Distinct model names remembered for hasPublished(); more are not added (a fleet serves a handful). */
export const MAX_PUBLISHED_MODELS = 10_000;

/** The warning about batches dropped at endpoints.maxTracked repeats at most this often (with the count meanwhile). */
export const DROP_WARN_INTERVAL_MS = 60_000;

export type EndpointState = 'live' | 'degraded' | 'stale';

/** What /metrics shows of one endpoint identity. */
export type EndpointFigures = Pick<EndpointInfo, 'identity' | 'state' | 'lagSeconds' | 'lastEventAgeMs' | 'queued'> & {
  applied: number;
};

/**
 * One endpoint identity as ListEndpoints shows it: its stream's status (identity, endpoint, rank, model, source,
 * replay address, expected endpoint, degraded reason, replaying, last seq, queue, stats) with the stream's clock
 * readings turned into ages, and what the index and the wire tally hold for it.
 */
export interface EndpointInfo extends Omit<StreamStatus, 'lagTs' | 'lastEventAt'> {
  state: EndpointState;
  /** ms since the last message (null when none yet). */
  lastEventAgeMs: number | null;
  /** Seconds between the publisher's timestamp of the last applied batch and now (null before the first). */
  lagSeconds: number | null;
  /** Index entries by tier (request-key blocks). */
  blocksByTier: Record<string, number>;
  engineKeys: number;
  /** Placement (locality, ownership) and refused events of its live batches (wire-tally.ts). */
  wire: WireTally;
}

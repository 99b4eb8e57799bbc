import type { CounterFamily } from '../common/index.js';

/**
 * Every decision of the transport, counted (plain numbers: the metrics layer reads them, tests assert them).
 * Reason maps only ever gain keys; the reason codes are listed in docs/events.md.
 */
export interface TransportCounters {
  /** Live messages received on any SUB socket (and messages fed in-process). */
  messages: number;
  /** Messages dropped before decoding, by reason: `frame_count`, `bad_seq`, `bad_topic`. */
  dropped: Record<string, number>;
  /** Payloads that could not be decoded at all (`bad_msgpack`, `bad_batch`) and events skipped inside decodable ones. */
  decodeErrors: Record<string, number>;
  /** Live batches that could not be decoded: their sequence number is treated as lost (a gap, then replay). */
  lostBatches: number;
  /** Live batches applied in order. */
  applied: number;
  /** Sequence numbers that skipped ahead (messages lost between publisher and us). */
  sequenceGaps: number;
  /** Sequence numbers at or below the last applied one on the live channel (dropped as duplicates). */
  duplicates: number;
  /** Live batches already applied from a replay, dropped (each sequence number applies once). */
  replayOverlap: number;
  /** Publisher restarts detected (sequence reset): the endpoint was cleared. */
  restarts: number;
  /** First message of a stream (or after a restart) with seq > 0. */
  joinedMidStream: number;
  /** Replay requests sent, and how they ended. */
  replaysRequested: number;
  replaysCompleted: number;
  /** Replays not attempted or failed, by reason: `no_endpoint`, `disabled`, `cooldown`, `timeout`, `bad_reply`, `closed`. */
  replaysFailed: Record<string, number>;
  /** Batches applied from replies. */
  replayedBatches: number;
  /** Holes replay could not fill, by reason: `buffer_exhausted`, `hole`, `bad_payload`, `rank_mismatch`. */
  unrecoverable: Record<string, number>;
  /** Endpoint clears decided by the transport, by reason: `restart`, `unrecoverable`, `removed`, `api`, `stale`. */
  clears: Record<string, number>;
  /** Endpoints marked degraded, by reason: `gap_no_replay`, `joined_no_replay`, `unrecoverable`, `overflow`, `index_write_failed`. */
  degraded: Record<string, number>;
  /** Connect-mode messages whose topic names another endpoint than the one configured for the connection. */
  identityMismatches: number;
  /** Batches whose application to the index failed (the endpoint is marked degraded: `index_write_failed`). */
  applyErrors: number;
  /** Batches dropped because an endpoint's queue was full (each marks the endpoint for resync). */
  overflowDrops: number;
  /** Resyncs (replay from the last applied seq) started after queue overflow. */
  overflowResyncs: number;
}

export function newTransportCounters(): TransportCounters {
  return {
    messages: 0,
    dropped: {},
    decodeErrors: {},
    lostBatches: 0,
    applied: 0,
    sequenceGaps: 0,
    duplicates: 0,
    replayOverlap: 0,
    restarts: 0,
    joinedMidStream: 0,
    replaysRequested: 0,
    replaysCompleted: 0,
    replaysFailed: {},
    replayedBatches: 0,
    unrecoverable: {},
    clears: {},
    degraded: {},
    identityMismatches: 0,
    applyErrors: 0,
    overflowDrops: 0,
    overflowResyncs: 0,
  };
}

export function bump(counts: Record<string, number>, reason: string, by = 1): void {
  counts[reason] = (counts[reason] ?? 0) + by;
}

/** The transport's counts on /metrics (registered by service/write-path-metrics.ts). */
export const TRANSPORT_COUNTER_FAMILIES: readonly CounterFamily<TransportCounters>[] = [
  { name: 'messages_received_total', help: 'ZMQ messages received', label: null, read: (t) => ({ '': t.messages }) },
  {
    name: 'messages_dropped_total',
    help: 'Messages dropped before decoding, by reason',
    label: 'reason',
    read: (t) => t.dropped,
  },
  {
    name: 'decode_errors_total',
    help: 'Undecodable payloads and skipped events, by reason',
    label: 'reason',
    read: (t) => t.decodeErrors,
  },
  { name: 'sequence_gaps_total', help: 'Sequence gaps seen', label: null, read: (t) => ({ '': t.sequenceGaps }) },
  {
    name: 'duplicates_total',
    help: 'Live batches at or below the last applied sequence, dropped',
    label: null,
    read: (t) => ({ '': t.duplicates }),
  },
  {
    name: 'lost_batches_total',
    help: 'Live batches that could not be decoded (treated as lost)',
    label: null,
    read: (t) => ({ '': t.lostBatches }),
  },
  {
    name: 'publisher_restarts_total',
    help: 'Publisher restarts detected (endpoint cleared)',
    label: null,
    read: (t) => ({ '': t.restarts }),
  },
  {
    name: 'replays_total',
    help: 'Replay requests by outcome',
    label: 'outcome',
    read: (t) => ({
      requested: t.replaysRequested,
      completed: t.replaysCompleted,
      ...Object.fromEntries(Object.entries(t.replaysFailed).map(([reason, n]) => [`failed_${reason}`, n])),
    }),
  },
  {
    name: 'replayed_batches_total',
    help: 'Batches applied from replay replies',
    label: null,
    read: (t) => ({ '': t.replayedBatches }),
  },
  {
    name: 'unrecoverable_total',
    help: 'Holes replay could not fill, by reason',
    label: 'reason',
    read: (t) => t.unrecoverable,
  },
  {
    name: 'endpoint_clears_total',
    help: 'Endpoint clears decided by the transport, by reason',
    label: 'reason',
    read: (t) => t.clears,
  },
  {
    name: 'endpoints_degraded_total',
    help: 'Endpoints marked degraded, by reason',
    label: 'reason',
    read: (t) => t.degraded,
  },
  {
    name: 'identity_mismatches_total',
    help: 'Messages whose topic names another endpoint than configured',
    label: null,
    read: (t) => ({ '': t.identityMismatches }),
  },
  {
    name: 'queue_overflow_drops_total',
    help: 'Batches dropped because an endpoint queue was full',
    label: null,
    read: (t) => ({ '': t.overflowDrops }),
  },
];

import type { Metrics } from '../ops/index.js';
import { registerEndpointGauges } from './endpoint-metrics.js';
import type { RunningService } from './start-service.js';

/**
 * The write path's figures on /metrics (index size, ingest counters, transport drops, discovery), read from their
 * owners at scrape time; and the index backend's availability, which health and these figures follow.
 */

/** False while a remote index (Redis) is disconnected; always true for the in-memory index. */
function indexAvailable(index: object): boolean {
  return !('available' in index) || (index as { available: boolean }).available;
}

/** Polls an index that can become unavailable (Redis); undefined for one that cannot. */
export function watchAvailability(index: object, changed: (up: boolean) => void): NodeJS.Timeout | undefined {
  if (!('available' in index)) return undefined;
  let last = true;
  const timer = setInterval(() => {
    const up = (index as { available: boolean }).available;
    if (up !== last) changed((last = up));
  }, 250);
  timer.unref();
  return timer;
}

/** The same promise for calls within `ttlMs`: gauges read at one scrape share one fetch. */
function sharedSnapshot<T>(fetch: () => Promise<T>, ttlMs: number): () => Promise<T> {
  let at = -Infinity;
  let pending: Promise<T> | null = null;
  return () => {
    const now = Date.now();
    if (pending === null || now - at > ttlMs) {
      at = now;
      pending = fetch();
      pending.catch(() => (pending = null));
    }
    return pending;
  };
}

export function registerWritePathGauges(metrics: Metrics, service: RunningService): void {
  const { index, ingestor, pipeline } = service;
  const p = 'kv_indexer_';
  // One index stats call per scrape, shared by the gauges below (a round trip with Redis).
  const cached = sharedSnapshot(() => index.stats(), 1_000);
  // A backend known to be down is not asked (nor its last figures shown): the scrape does not wait for a timeout.
  const stats = () => (indexAvailable(index) ? cached() : Promise.reject(new Error('index backend unavailable')));
  // During a Redis outage the index figures below have no samples (not a 500): this gauge says why.
  metrics.gauge(
    `${p}index_backend_up`,
    'Whether the index backend answered this scrape (0: index figures unavailable)',
    null,
    async () => ({
      '': await stats().then(
        () => 1,
        () => 0,
      ),
    }),
  );
  if ('registryLosses' in index) {
    metrics.counter(
      `${p}redis_registry_losses_total`,
      'Times the Redis endpoint registry was found lost (evicted or deleted) and resynchronised',
      null,
      () => ({
        '': (index as { registryLosses: number }).registryLosses,
      }),
    );
  }
  metrics.gauge(`${p}index_entries`, 'Resident (block, endpoint, tier) entries', null, async () => ({
    '': (await stats()).entries,
  }));
  metrics.gauge(`${p}index_keys`, 'Distinct request keys in the index', null, async () => ({
    '': (await stats()).keys,
  }));
  metrics.gauge(`${p}index_bytes`, 'Bytes held by the index structures', null, async () => ({
    '': (await stats()).bytes,
  }));
  metrics.gauge(`${p}index_speculative_entries`, 'Speculative entries', null, async () => ({
    '': (await stats()).speculativeEntries,
  }));
  metrics.counter(`${p}index_evictions_total`, 'Entries evicted at the capacity bound', null, async () => ({
    '': (await stats()).evictions,
  }));
  const t = pipeline.counters;
  metrics.counter(`${p}messages_received_total`, 'ZMQ messages received', null, () => ({ '': t.messages }));
  metrics.counter(
    `${p}messages_dropped_total`,
    'Messages dropped before decoding, by reason',
    'reason',
    () => t.dropped,
  );
  metrics.counter(
    `${p}decode_errors_total`,
    'Undecodable payloads and skipped events, by reason',
    'reason',
    () => t.decodeErrors,
  );
  metrics.counter(
    `${p}zmq_handshake_failures_total`,
    'Failed ZMQ handshakes of connect-mode sockets (CURVE keys)',
    null,
    () => ({ '': service.transport.handshakeFailures }),
  );
  const discovery = service.transport.discoveryCounters;
  metrics.counter(
    `${p}discovery_polls_total`,
    'Discovery polls of vLLM /kv_event_sources, by outcome (ok or the refusal reason)',
    'outcome',
    () => discovery.polls,
  );
  metrics.counter(
    `${p}discovery_changes_total`,
    'Rank sockets changed by discovery answers (added, moved, removed)',
    'change',
    () => discovery.changes,
  );
  metrics.gauge(`${p}discovery_failing`, 'Discovery URLs whose last answer was refused', null, () => ({
    '': service.transport.discoveryStatus().filter((d) => d.state === 'failing').length,
  }));
  metrics.counter(`${p}sequence_gaps_total`, 'Sequence gaps seen', null, () => ({ '': t.sequenceGaps }));
  metrics.counter(`${p}duplicates_total`, 'Live batches at or below the last applied sequence, dropped', null, () => ({
    '': t.duplicates,
  }));
  metrics.counter(`${p}lost_batches_total`, 'Live batches that could not be decoded (treated as lost)', null, () => ({
    '': t.lostBatches,
  }));
  metrics.counter(`${p}publisher_restarts_total`, 'Publisher restarts detected (endpoint cleared)', null, () => ({
    '': t.restarts,
  }));
  metrics.counter(`${p}replays_total`, 'Replay requests by outcome', 'outcome', () => ({
    requested: t.replaysRequested,
    completed: t.replaysCompleted,
    ...Object.fromEntries(Object.entries(t.replaysFailed).map(([reason, n]) => [`failed_${reason}`, n])),
  }));
  metrics.counter(`${p}replayed_batches_total`, 'Batches applied from replay replies', null, () => ({
    '': t.replayedBatches,
  }));
  metrics.counter(`${p}unrecoverable_total`, 'Holes replay could not fill, by reason', 'reason', () => t.unrecoverable);
  metrics.counter(
    `${p}endpoint_clears_total`,
    'Endpoint clears decided by the transport, by reason',
    'reason',
    () => t.clears,
  );
  metrics.counter(`${p}endpoints_degraded_total`, 'Endpoints marked degraded, by reason', 'reason', () => t.degraded);
  metrics.counter(
    `${p}identity_mismatches_total`,
    'Messages whose topic names another endpoint than configured',
    null,
    () => ({ '': t.identityMismatches }),
  );
  metrics.counter(`${p}queue_overflow_drops_total`, 'Batches dropped because an endpoint queue was full', null, () => ({
    '': t.overflowDrops,
  }));
  registerEndpointGauges(metrics, pipeline, service.config.metrics.maxEndpointSeries, p);
  metrics.counter(`${p}events_total`, 'Events applied, by type', 'type', () => ({
    BlockStored: ingestor.counters.storedEvents,
    BlockRemoved: ingestor.counters.removedEvents,
    AllBlocksCleared: ingestor.counters.clearedEvents,
  }));
  metrics.counter(`${p}blocks_total`, 'Engine blocks applied, by operation', 'op', () => ({
    stored: ingestor.counters.blocksStored,
    removed: ingestor.counters.blocksRemoved,
  }));
  metrics.counter(
    `${p}store_bound_dropped_blocks_total`,
    'Engine blocks dropped by endpoint store bounds (max blocks or TTL)',
    null,
    () => ({
      '': ingestor.counters.boundDrops,
    }),
  );
  metrics.counter(
    `${p}key_only_chunk_removals_total`,
    'Lower-tier chunks removed by their key alone (all their blocks released)',
    null,
    () => ({
      '': ingestor.counters.keyOnlyRemovals,
    }),
  );
  metrics.counter(`${p}ingest_skipped_blocks_total`, 'Engine blocks not indexed, by reason', 'reason', () => ({
    parent_unknown: ingestor.counters.parentUnknown,
    offload_unknown: ingestor.counters.offloadUnknown,
    removed_unknown: ingestor.counters.removedUnknown,
    group_without_kind: ingestor.counters.groupWithoutKind,
    ...Object.fromEntries([...ingestor.counters.skippedByKind].map(([kind, n]) => [`kind_${kind}`, n])),
  }));
}

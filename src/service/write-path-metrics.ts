import { DISCOVERY_COUNTER_FAMILIES, INGEST_COUNTER_FAMILIES, TRANSPORT_COUNTER_FAMILIES } from '../events/index.js';
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
  metrics.counterFamilies(p, TRANSPORT_COUNTER_FAMILIES, () => pipeline.counters);
  metrics.counterFamilies(p, DISCOVERY_COUNTER_FAMILIES, () => service.transport.discoveryCounters);
  metrics.counterFamilies(p, INGEST_COUNTER_FAMILIES, () => ingestor.counters);
  metrics.counter(
    `${p}zmq_handshake_failures_total`,
    'Failed ZMQ handshakes of connect-mode sockets (CURVE keys)',
    null,
    () => ({ '': service.transport.handshakeFailures }),
  );
  metrics.gauge(`${p}discovery_failing`, 'Discovery URLs whose last answer was refused', null, () => ({
    '': service.transport.discoveryStatus().filter((d) => d.state === 'failing').length,
  }));
  registerEndpointGauges(metrics, pipeline, service.config.metrics.maxEndpointSeries, p);
}

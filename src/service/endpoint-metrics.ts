import type { EndpointFigures, EventPipeline } from '../events/index.js';
import type { Metrics } from '../ops/index.js';

/** The label value that aggregates the endpoints beyond metrics.maxEndpointSeries. */
export const OTHER_ENDPOINTS = 'other';

/**
 * The per-endpoint gauges (batches applied, lag, last event age) with bounded cardinality: at most `maxSeries`
 * endpoints get their own series, the rest are folded into `endpoint="other"` (applied: summed; lag and age: the
 * largest, so an alert on the worst endpoint still fires). Which endpoints are named is sticky: an endpoint keeps its
 * series while it is tracked, and frees its place when it is forgotten (series do not hop between endpoints from one
 * scrape to the next). One pass over the streams per scrape, shared by all the gauges: a scrape of 16k endpoints
 * stays small and takes milliseconds of the event loop.
 */
export function registerEndpointGauges(
  metrics: Metrics,
  pipeline: EventPipeline,
  maxSeries: number,
  prefix = 'kv_indexer_',
): void {
  const named = new Set<string>();
  let snapshot: { at: number; figures: EndpointFigures[] } | null = null;
  const figures = () => {
    const now = Date.now();
    if (snapshot === null || now - snapshot.at > 1_000) {
      const all = pipeline.figures();
      const present = new Set(all.map((f) => f.identity));
      for (const id of named) if (!present.has(id)) named.delete(id);
      for (const f of all) {
        if (named.size >= maxSeries) break;
        named.add(f.identity);
      }
      snapshot = { at: now, figures: all };
    }
    return snapshot.figures;
  };
  const perEndpoint = (value: (f: EndpointFigures) => number | null, fold: (a: number, b: number) => number) => () => {
    const out: Record<string, number> = {};
    for (const f of figures()) {
      const v = value(f);
      if (v === null) continue;
      const key = named.has(f.identity) ? f.identity : OTHER_ENDPOINTS;
      out[key] = key in out ? fold(out[key], v) : v;
    }
    return out;
  };
  const sum = (a: number, b: number) => a + b;
  metrics.counter(
    `${prefix}endpoint_batches_applied_total`,
    `Batches applied per endpoint (beyond metrics.maxEndpointSeries: summed under endpoint="${OTHER_ENDPOINTS}")`,
    'endpoint',
    perEndpoint((f) => f.applied, sum),
  );
  metrics.gauge(
    `${prefix}endpoint_lag_seconds`,
    `Now minus the publisher timestamp of the last applied batch (rebased when far off: a replayed recording); "${OTHER_ENDPOINTS}": the largest`,
    'endpoint',
    perEndpoint((f) => f.lagSeconds, Math.max),
  );
  metrics.gauge(
    `${prefix}endpoint_last_event_age_seconds`,
    `Seconds since the endpoint last published; "${OTHER_ENDPOINTS}": the largest`,
    'endpoint',
    perEndpoint((f) => (f.lastEventAgeMs === null ? null : f.lastEventAgeMs / 1000), Math.max),
  );
  metrics.gauge(
    `${prefix}endpoint_series_folded`,
    `Endpoints beyond metrics.maxEndpointSeries, folded into endpoint="${OTHER_ENDPOINTS}"`,
    null,
    () => ({ '': Math.max(0, figures().length - named.size) }),
  );
  metrics.gauge(`${prefix}endpoints`, 'Endpoint streams by state', 'state', () => {
    const states: Record<string, number> = { live: 0, degraded: 0, stale: 0 };
    for (const f of figures()) states[f.state]++;
    return states;
  });
  metrics.gauge(`${prefix}queue_depth`, 'Decoded batches waiting in endpoint queues', null, () => ({
    '': figures().reduce((n, f) => n + f.queued, 0),
  }));
}

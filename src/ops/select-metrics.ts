import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/**
 * Select's metrics (docs/operations.md, "Metrics"): calls by policy and outcome, the in-flight ledger, and the
 * calibration loop — the cached tokens Select predicted for a reservation against those the engine reported in
 * PrefillComplete.
 */
export class SelectMetrics {
  private readonly calls: Counter<'policy' | 'outcome'>;
  private readonly predicted: Counter;
  private readonly actual: Counter;
  private readonly error: Histogram;

  constructor(
    registry: Registry,
    ledger: { size(): number; readonly retired: Readonly<Record<string, number>> },
    prefix = 'kv_indexer_',
  ) {
    this.calls = new Counter({
      name: `${prefix}select_total`,
      help: 'Select calls by policy and outcome (chosen, reserved, or the error code)',
      labelNames: ['policy', 'outcome'],
      registers: [registry],
    });
    new Gauge({
      name: `${prefix}inflight_reservations`,
      help: 'Reservations in flight (Select with reserve, not yet released or expired)',
      registers: [registry],
      collect() {
        this.set(ledger.size());
      },
    });
    new Counter({
      name: `${prefix}reservations_retired_total`,
      help: 'Reservations retired, by reason (prefill_complete retires the prefill part only)',
      labelNames: ['reason'],
      registers: [registry],
      collect() {
        // The ledger's own counts, read at scrape time (a counter: reset, then brought to them).
        this.reset();
        for (const [reason, n] of Object.entries(ledger.retired)) this.inc({ reason }, n);
      },
    });
    this.predicted = new Counter({
      name: `${prefix}select_cached_tokens_predicted_total`,
      help: 'Cached tokens Select predicted on the chosen endpoint, over PrefillCompletes that reported cached_tokens',
      registers: [registry],
    });
    this.actual = new Counter({
      name: `${prefix}select_cached_tokens_actual_total`,
      help: 'Cached tokens the engine reported in PrefillComplete (cached_tokens)',
      registers: [registry],
    });
    this.error = new Histogram({
      name: `${prefix}select_cached_tokens_error_ratio`,
      help: 'Per request (predicted − actual cached tokens) / prompt tokens: > 0 over-predicted, < 0 under-predicted',
      buckets: [-1, -0.5, -0.25, -0.1, -0.01, 0, 0.01, 0.1, 0.25, 0.5, 1],
      registers: [registry],
    });
  }

  countSelect(policy: string, outcome: string): void {
    this.calls.inc({ policy, outcome });
  }

  observeCalibration(predicted: number, actual: number, promptTokens: number): void {
    this.predicted.inc(predicted);
    this.actual.inc(actual);
    this.error.observe(promptTokens > 0 ? (predicted - actual) / promptTokens : 0);
  }
}

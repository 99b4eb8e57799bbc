/**
 * A Prometheus histogram with one label, for the metrics observed on every Score call (issue 16). prom-client's
 * Histogram resolves its series per observe: it checks the label object, hashes it into a key string and looks the
 * key up, all on the hot path. Here a label value's series (a child) is found by a Map lookup of the value itself
 * (and the last one is kept), and observing touches only numbers.
 *
 * Registered in a prom-client Registry, it hands the registry its samples in the shape prom-client's own Histogram
 * does (bucket samples labelled `le` with the series label shared, then `+Inf`, `_sum`, `_count`; series in order of
 * their first observation), so the registry writes the same /metrics text: same names, help, `le` strings, label
 * order and figures (test/unit/ops/histogram.test.ts compares the text).
 */

import type { Metric, Registry } from 'prom-client';

export interface LabelledHistogramConfig {
  name: string;
  help: string;
  /** The one label's name (e.g. `input`). */
  label: string;
  /** Upper bounds, ascending; `+Inf` is implied. */
  buckets: readonly number[];
  registers: Registry[];
}

/** One label value's series. */
export class HistogramChild {
  /** Observations per bucket (not cumulative; above the last bound: in `count` only, as prom-client). */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  /** The series label, one object for every sample of the series (the registry caches its text by identity). */
  readonly shared: Readonly<Record<string, string>>;
  private exposed = false;

  constructor(
    private readonly bounds: Float64Array,
    label: string,
    readonly value: string,
    private readonly series: HistogramChild[],
  ) {
    this.counts = new Float64Array(bounds.length);
    this.shared = Object.freeze({ [label]: value });
  }

  observe(v: number): void {
    if (!Number.isFinite(v)) throw new TypeError(`Value is not a valid number: ${v}`);
    if (!this.exposed) {
      // prom-client shows a series from its first observation on.
      this.exposed = true;
      this.series.push(this);
    }
    const bounds = this.bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (v <= bounds[i]) {
        this.counts[i]++;
        break;
      }
    }
    this.sum += v;
    this.count++;
  }

  reset(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
    this.exposed = false;
  }
}

interface Sample {
  labels: Record<string, string | number>;
  sharedLabels?: Readonly<Record<string, string>>;
  value: number;
  metricName: string;
  exemplar?: null;
}

export class LabelledHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly name: string;
  readonly help: string;
  private readonly label: string;
  private readonly bounds: Float64Array;
  private readonly children = new Map<string, HistogramChild>();
  /** Children observed since the last reset, in order of their first observation. */
  private readonly series: HistogramChild[] = [];
  private last: HistogramChild | null = null;

  constructor(config: LabelledHistogramConfig) {
    this.name = config.name;
    this.help = config.help;
    this.label = config.label;
    this.bounds = Float64Array.from(config.buckets);
    for (let i = 1; i < this.bounds.length; i++) {
      if (!(this.bounds[i] > this.bounds[i - 1])) throw new RangeError(`${this.name}: buckets must ascend`);
    }
    for (const registry of config.registers) registry.registerMetric(this as unknown as Metric);
  }

  /** The series of one label value, resolved once: callers may keep it and observe on it directly. */
  child(value: string): HistogramChild {
    const last = this.last;
    if (last !== null && last.value === value) return last;
    let child = this.children.get(value);
    if (child === undefined) {
      child = new HistogramChild(this.bounds, this.label, value, this.series);
      this.children.set(value, child);
    }
    this.last = child;
    return child;
  }

  observe(value: string, v: number): void {
    this.child(value).observe(v);
  }

  reset(): void {
    for (const child of this.series) child.reset();
    this.series.length = 0;
  }

  /** The samples as prom-client's Histogram.getForPromString gives them (the registry formats the text). */
  async getForPromString() {
    return { name: this.name, help: this.help, type: this.type, values: this.samples(), aggregator: this.aggregator };
  }

  /** As prom-client's Histogram.get: the series label merged into each sample's labels (after `le`). */
  async get() {
    const values = this.samples().map(({ labels, sharedLabels, ...rest }) => ({
      ...rest,
      labels: { ...labels, ...sharedLabels },
    }));
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  private samples(): Sample[] {
    const bucket = `${this.name}_bucket`;
    const out: Sample[] = [];
    for (const child of this.series) {
      const shared = child.shared;
      let acc = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        acc += child.counts[i];
        out.push({
          labels: { le: this.bounds[i] },
          sharedLabels: shared,
          value: acc,
          metricName: bucket,
          exemplar: null,
        });
      }
      out.push(
        { labels: { le: '+Inf' }, sharedLabels: shared, value: child.count, metricName: bucket, exemplar: null },
        { labels: {}, sharedLabels: shared, value: child.sum, metricName: `${this.name}_sum` },
        { labels: {}, sharedLabels: shared, value: child.count, metricName: `${this.name}_count` },
      );
    }
    return out;
  }
}

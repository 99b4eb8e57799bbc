import type { PromSample } from './prom-text.js';

/**
 * The load figures read from a vLLM /metrics page. Names from vLLM's v1 Prometheus logger
 * (vllm/v1/metrics/loggers.py, PrometheusStatLogger): `vllm:num_requests_running`, `vllm:num_requests_waiting`
 * and `vllm:kv_cache_usage_perc` ("1 means 100 percent usage"); before it, `vllm:gpu_cache_usage_perc` (deprecated,
 * then hidden), read when the new name is absent. Every one carries `model_name` and, from the v1 engine, `engine`
 * (the data-parallel engine index as a string, one series per engine served by that API server).
 */
export const RUNNING = 'vllm:num_requests_running';
export const WAITING = 'vllm:num_requests_waiting';
export const KV_USAGE = 'vllm:kv_cache_usage_perc';
export const KV_USAGE_OLD = 'vllm:gpu_cache_usage_perc';
export const LOAD_METRICS: ReadonlySet<string> = new Set([RUNNING, WAITING, KV_USAGE, KV_USAGE_OLD]);

export interface LoadFigures {
  running: number;
  waiting: number;
  /** 0..1. */
  kvUsage: number;
}

interface Series {
  name: string;
  model: string | undefined;
  engine: string | undefined;
  value: number;
}

/** The wanted series of one page, kept small (a handful per engine), and the figures of one endpoint read from them. */
export class PageLoads {
  private readonly series: Series[] = [];
  private hasEngine = false;

  add(sample: PromSample): void {
    if (!LOAD_METRICS.has(sample.name)) return;
    const engine = sample.labels.engine;
    if (engine !== undefined) this.hasEngine = true;
    this.series.push({ name: sample.name, model: sample.labels.model_name, engine, value: sample.value });
  }

  /**
   * The figures of data-parallel rank `rank` serving `model` (null: not known yet):
   * - with `engine` labels on the page, only the series of engine `rank` count (vLLM numbers its engines 0..n-1,
   *   the same ranks as our `@dp<r>` identities and llm-d's per-rank serving ports); without, every series;
   * - of those, the series of `model` if the page has it, else of the first model_name on the page;
   * - running and waiting are summed over what is left; KV usage is the largest (a fraction, not additive).
   * Returns a reason instead when a figure is missing or not a finite non-negative number.
   */
  figures(rank: number, model: string | null): LoadFigures | string {
    let rows = this.series;
    if (this.hasEngine) rows = rows.filter((s) => s.engine === String(rank));
    if (rows.length === 0)
      return this.hasEngine ? `no vLLM load series for engine "${rank}"` : 'no vLLM load series on the page';
    const models = rows.map((s) => s.model);
    const chosen = model !== null && models.includes(model) ? model : models[0];
    rows = rows.filter((s) => s.model === chosen);
    const running = sum(rows, RUNNING);
    const waiting = sum(rows, WAITING);
    const kv = largest(rows, KV_USAGE) ?? largest(rows, KV_USAGE_OLD);
    const missing = [running === null && RUNNING, waiting === null && WAITING, kv === null && KV_USAGE].filter(Boolean);
    if (missing.length > 0) return `missing ${missing.join(', ')}${this.hasEngine ? ` for engine "${rank}"` : ''}`;
    for (const [name, v] of [
      [RUNNING, running],
      [WAITING, waiting],
      [KV_USAGE, kv],
    ] as const) {
      if (!Number.isFinite(v) || v! < 0) return `${name} is ${v}`;
    }
    return { running: running!, waiting: waiting!, kvUsage: Math.min(1, kv!) };
  }
}

function sum(rows: Series[], name: string): number | null {
  let total: number | null = null;
  for (const s of rows) if (s.name === name) total = (total ?? 0) + s.value;
  return total;
}

function largest(rows: Series[], name: string): number | null {
  let max: number | null = null;
  for (const s of rows) if (s.name === name && (max === null || s.value > max || Number.isNaN(s.value))) max = s.value;
  return max;
}

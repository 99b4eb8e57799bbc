import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { Bench } from 'tinybench';
import { prng } from '../src/sim/publisher/workload.js';

/** A benchmark suite: runs, returns named figures, and states the goal each figure is compared with. */
export interface Suite {
  name: string;
  description: string;
  run(options: BenchOptions): Promise<SuiteResult> | SuiteResult;
}

export interface BenchOptions {
  /** Smaller sizes, for a smoke run (CI). */
  quick: boolean;
}

export interface Figure {
  value: number;
  unit: string;
  /** e.g. "≥ 1000000" or "≤ 100"; absent when the figure is informative only. */
  goal?: string;
}

export interface SuiteResult {
  figures: Record<string, Figure>;
  /** Sizes and parameters the figures were measured with. */
  parameters: Record<string, unknown>;
}

export function machine() {
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    v8: process.versions.v8,
  };
}

export function writeResult(suite: Suite, result: SuiteResult, quick: boolean): string {
  const dir = new URL('./results/', import.meta.url);
  mkdirSync(dir, { recursive: true });
  const file = new URL(`${suite.name}${quick ? '.quick' : ''}.json`, dir);
  const body = {
    suite: suite.name,
    description: suite.description,
    date: new Date().toISOString(),
    quick,
    machine: machine(),
    ...result,
  };
  writeFileSync(file, `${JSON.stringify(body, null, 2)}\n`);
  return file.pathname;
}

/** Percentile of sorted-in-place samples. */
export function percentile(samples: number[] | Float64Array, p: number): number {
  const sorted = Float64Array.from(samples).sort();
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (!g) throw new Error('run benchmarks with node --expose-gc (npm run bench does)');
  g();
  g();
}

/** Heap + array buffers: what the index's typed arrays and objects occupy. */
export function usedBytes(): number {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/** Deterministic PRNG (the simulator's xorshift32), so runs are comparable. */
export function rng(seed = 0x9e3779b9): () => number {
  return prng(seed);
}

/** Token ids with a Zipf-like skew over a 151k vocabulary (frequent tokens have small ids, as in BPE vocabularies). */
export function realisticTokens(n: number, random = rng()): Uint32Array {
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.min(151_642, Math.floor(Math.exp(random() * Math.log(151_643))));
  return out;
}

/** Chain `c` of a run: `length` keys drawn from the PRNG straight into the array (no bigint per key). */
export function randomChain(c: number, length = 512): BigUint64Array {
  const keys = new BigUint64Array(length);
  const halves = new Uint32Array(keys.buffer);
  const r = rng(0x51ed27 + c);
  for (let i = 0; i < halves.length; i++) halves[i] = Math.floor(r() * 0x100000000);
  return keys;
}

/** 64 random bits as a bigint. */
export function randomKey(random: () => number): bigint {
  return (BigInt(Math.floor(random() * 0x100000000)) << 32n) | BigInt(Math.floor(random() * 0x100000000));
}

/** A micro-benchmark's statistics (tinybench: warm-up, then timed samples of one call each). */
export interface MicroResult {
  meanNs: number;
  p50Ns: number;
  p99Ns: number;
  opsPerSecond: number;
  samples: number;
  /** Relative margin of error of the mean, percent. */
  rme: number;
}

/**
 * Times one operation with tinybench (the micro-benchmark harness: warm-up, sample collection, percentiles); the
 * macro suites (ingest, ZMQ, gRPC, Redis) drive real sockets and time whole runs themselves.
 */
export async function micro(name: string, operation: () => void, quick: boolean): Promise<MicroResult> {
  const bench = new Bench({ name, time: quick ? 200 : 2_000, warmupTime: quick ? 50 : 500 });
  bench.add(name, operation);
  await bench.run();
  const result = bench.tasks[0].result;
  if (result.state !== 'completed')
    throw new Error(
      `micro-benchmark ${name} did not complete (${result.state}${result.state === 'errored' ? `: ${result.error.message}` : ''})`,
    );
  return {
    meanNs: result.latency.mean * 1e6,
    p50Ns: (result.latency.p50 ?? result.latency.mean) * 1e6,
    p99Ns: (result.latency.p99 ?? result.latency.mean) * 1e6,
    opsPerSecond: result.throughput.mean,
    samples: result.latency.samplesCount,
    rme: result.latency.rme,
  };
}

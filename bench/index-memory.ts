/**
 * In-memory index: insert rate, bytes per resident entry, and lookup latency at 10M entries.
 * Run: node --expose-gc --import tsx bench/index-memory.ts [entries]
 * Writes bench/results/index-memory.json.
 */

import { mkdirSync, writeFileSync } from 'node:fs';
import { MemoryIndex } from '../src/index/index.js';

const ENTRIES = Number(process.argv[2] ?? 10_000_000);
const CHAIN = 512;
const ENDPOINTS = 8;
const CANDIDATES = 16;
const LOOKUPS = 2000;

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');

function memory(): number {
  gc!();
  gc!();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/** xorshift128 over 32-bit words: fast, deterministic random uint64 keys without BigInt. */
function randomKeys(n: number, seed: number): BigUint64Array {
  const keys = new BigUint64Array(n);
  const w = new Uint32Array(keys.buffer);
  let x = seed | 0 || 1;
  let y = 362436069;
  let z = 521288629;
  let v = 88675123;
  for (let i = 0; i < w.length; i++) {
    const t = x ^ (x << 11);
    x = y;
    y = z;
    z = v;
    v = v ^ (v >>> 19) ^ (t ^ (t >>> 8));
    w[i] = v;
  }
  return keys;
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

const prompts = Math.ceil(ENTRIES / CHAIN);
const all = randomKeys(prompts * CHAIN, 12345);
const names = Array.from({ length: CANDIDATES }, (_, i) => `10.0.0.${i + 1}:8000`);
const before = memory();

const index = new MemoryIndex();
const t0 = process.hrtime.bigint();
for (let p = 0; p < prompts; p++) {
  index.add(names[p % ENDPOINTS], 'GPU', all.subarray(p * CHAIN, (p + 1) * CHAIN));
}
const insertNs = Number(process.hrtime.bigint() - t0);
const stats = index.statsSync();
const after = memory();
const bytesPerEntry = (after - before) / stats.entries;

function timeLookups(candidates: readonly string[] | undefined): { p50: number; p99: number; checked: number } {
  const times = new Float64Array(LOOKUPS);
  let checked = 0;
  let rng = 7;
  for (let i = 0; i < LOOKUPS; i++) {
    rng = (Math.imul(rng, 1103515245) + 12345) >>> 0;
    const p = rng % prompts;
    const keys = all.subarray(p * CHAIN, (p + 1) * CHAIN);
    const s = process.hrtime.bigint();
    const res = index.lookupSync(keys, candidates ? { candidates } : undefined);
    times[i] = Number(process.hrtime.bigint() - s) / 1000;
    if (res.length === 1 && res[0].endpoint === names[p % ENDPOINTS] && res[0].matchedBlocks === CHAIN) checked++;
  }
  times.sort();
  return { p50: percentile(times, 0.5), p99: percentile(times, 0.99), checked };
}

timeLookups(names); // warm-up
const withCandidates = timeLookups(names);
const noCandidates = timeLookups(undefined);

const result = {
  entries: stats.entries,
  keys: stats.keys,
  insertBlocksPerSec: Math.round(stats.entries / (insertNs / 1e9)),
  bytesPerEntry: Math.round(bytesPerEntry * 10) / 10,
  indexBytesPerEntry: Math.round((stats.bytes / stats.entries) * 10) / 10,
  lookup512With16CandidatesUs: { p50: withCandidates.p50, p99: withCandidates.p99 },
  lookup512NoCandidatesUs: { p50: noCandidates.p50, p99: noCandidates.p99 },
  lookupsCorrect: withCandidates.checked + noCandidates.checked,
  lookups: 2 * LOOKUPS,
  node: process.version,
};
console.log(JSON.stringify(result, null, 2));
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
writeFileSync(new URL('./results/index-memory.json', import.meta.url), JSON.stringify(result, null, 2) + '\n');

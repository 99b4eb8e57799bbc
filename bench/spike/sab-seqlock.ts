/**
 * Spike (issue 16), shape A's index in shared memory: can a reader thread probe an open-addressing table (the layout
 * of src/index/table/u64-table.ts: [keyLo, keyHi, value] slots, linear probing, backward-shift deletion) that lives in
 * a SharedArrayBuffer while a writer thread inserts and deletes, with a seqlock per shard (version odd while a write
 * is under way; a reader retries when the version moved)? Measures the reader's cost per key with and without the
 * seqlock and the writer's churn, and counts retries. Fixed capacity (no rehash: growing a shared table means a new
 * buffer handed to every reader, which the real index would have to add).
 *
 *   node --import tsx bench/spike/sab-seqlock.ts
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { mixKey } from '../../src/index/table/mix.js';

const SHARDS = 64;
const SLOTS_PER_SHARD = 1 << 15; // 2M slots in all
const STRIDE = 3;
const LIVE_KEYS = 1_000_000; // ~48 % load
const SEED = 0x1234567;

interface Shared {
  data: SharedArrayBuffer;
  versions: SharedArrayBuffer;
  control: SharedArrayBuffer;
}

function views(s: Shared) {
  return { d: new Uint32Array(s.data), v: new Int32Array(s.versions), ctl: new Int32Array(s.control) };
}

/** The key of sequence number i (the writer inserts i and deletes i − LIVE_KEYS). */
const keyLo = (i: number) => (Math.imul(i + 1, 0x9e3779b1) | 1) >>> 0;
const keyHi = (i: number) => (i * 7 + 3) >>> 0;

function find(d: Uint32Array, lo: number, hi: number, h: number): number {
  const shard = h & (SHARDS - 1);
  const base = shard * SLOTS_PER_SHARD;
  let slot = (h >>> 6) & (SLOTS_PER_SHARD - 1);
  for (;;) {
    const o = (base + slot) * STRIDE;
    const klo = d[o];
    const khi = d[o + 1];
    if (klo === lo && khi === hi) return d[o + 2];
    if ((klo | khi) === 0) return 0;
    slot = (slot + 1) & (SLOTS_PER_SHARD - 1);
  }
}

function insert(d: Uint32Array, lo: number, hi: number, h: number, value: number): void {
  const base = (h & (SHARDS - 1)) * SLOTS_PER_SHARD;
  let slot = (h >>> 6) & (SLOTS_PER_SHARD - 1);
  for (;;) {
    const o = (base + slot) * STRIDE;
    if ((d[o] | d[o + 1]) === 0 || (d[o] === lo && d[o + 1] === hi)) {
      d[o + 2] = value;
      d[o + 1] = hi;
      d[o] = lo;
      return;
    }
    slot = (slot + 1) & (SLOTS_PER_SHARD - 1);
  }
}

function remove(d: Uint32Array, lo: number, hi: number, h: number): void {
  const base = (h & (SHARDS - 1)) * SLOTS_PER_SHARD;
  const mask = SLOTS_PER_SHARD - 1;
  let hole = (h >>> 6) & mask;
  for (;;) {
    const o = (base + hole) * STRIDE;
    if (d[o] === lo && d[o + 1] === hi) break;
    if ((d[o] | d[o + 1]) === 0) return;
    hole = (hole + 1) & mask;
  }
  let next = (hole + 1) & mask;
  for (;;) {
    const no = (base + next) * STRIDE;
    const klo = d[no];
    const khi = d[no + 1];
    if ((klo | khi) === 0) break;
    const home = (mixKey(klo, khi, SEED) >>> 6) & mask;
    if (((hole - home) & mask) <= ((next - home) & mask)) {
      const ho = (base + hole) * STRIDE;
      d[ho] = klo;
      d[ho + 1] = khi;
      d[ho + 2] = d[no + 2];
      hole = next;
    }
    next = (next + 1) & mask;
  }
  const ho = (base + hole) * STRIDE;
  d[ho] = 0;
  d[ho + 1] = 0;
  d[ho + 2] = 0;
}

if (isMainThread) {
  const shared: Shared = {
    data: new SharedArrayBuffer(SHARDS * SLOTS_PER_SHARD * STRIDE * 4),
    versions: new SharedArrayBuffer(SHARDS * 16 * 4), // one version per 64-byte line
    control: new SharedArrayBuffer(16),
  };
  const { d, v, ctl } = views(shared);
  for (let i = 0; i < LIVE_KEYS; i++) insert(d, keyLo(i), keyHi(i), mixKey(keyLo(i), keyHi(i), SEED), i + 1);
  // ctl[0] = first live sequence number (the writer advances it), ctl[1] = stop, ctl[2] = writer ops.
  Atomics.store(ctl, 0, 0);

  /** Looks up `keys` present keys per round (recent ones, as a prompt's blocks would be), `rounds` times. */
  const readBench = (seqlock: boolean, rounds: number) => {
    let retries = 0;
    let found = 0;
    const t0 = process.cpuUsage();
    for (let r = 0; r < rounds; r++) {
      const first = Atomics.load(ctl, 0) + LIVE_KEYS / 2 + ((r * 64) % (LIVE_KEYS / 4));
      for (let k = 0; k < 64; k++) {
        const i = first + k;
        const lo = keyLo(i);
        const hi = keyHi(i);
        const h = mixKey(lo, hi, SEED);
        if (!seqlock) {
          if (find(d, lo, hi, h) !== 0) found++;
          continue;
        }
        const vi = (h & (SHARDS - 1)) * 16;
        for (;;) {
          const v1 = Atomics.load(v, vi);
          if ((v1 & 1) !== 0) {
            retries++;
            continue;
          }
          const value = find(d, lo, hi, h);
          if (Atomics.load(v, vi) === v1) {
            if (value !== 0) found++;
            break;
          }
          retries++;
        }
      }
    }
    const used = process.cpuUsage(t0);
    return { nsPerKey: ((used.user + used.system) * 1000) / (rounds * 64), retries, found };
  };

  const rounds = 100_000;
  readBench(true, 20_000);
  const quiet = { plain: readBench(false, rounds), seqlock: readBench(true, rounds) };
  // Worker threads do not inherit the tsx loader: registered in the thread before this module is imported there.
  const boot = `import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(import.meta.url)}); })`;
  const worker = new Worker(boot, { eval: true, workerData: shared });
  await new Promise((r) => worker.once('message', r));
  const w0 = Atomics.load(ctl, 2);
  const t0 = performance.now();
  const busy = { seqlock: readBench(true, rounds), plain: readBench(false, rounds) };
  const writerOpsPerSecond = ((Atomics.load(ctl, 2) - w0) / (performance.now() - t0)) * 1000;
  Atomics.store(ctl, 1, 1);
  await new Promise((r) => worker.once('exit', r));
  console.log(
    JSON.stringify({
      note: 'nsPerKey = reader CPU per key probe (64-key rounds); busy = while a writer thread churns (insert + delete per op, seqlock bumps)',
      quiet,
      busy,
      writerOpsPerSecond: Math.round(writerOpsPerSecond),
      plainUnderChurnFoundAll: busy.plain.found === rounds * 64,
    }),
  );
} else {
  const { d, v, ctl } = views(workerData as Shared);
  parentPort!.postMessage('ready');
  let next = LIVE_KEYS;
  let ops = 0;
  const write = (lo: number, hi: number, fn: (h: number) => void) => {
    const h = mixKey(lo, hi, SEED);
    const vi = (h & (SHARDS - 1)) * 16;
    Atomics.add(v, vi, 1); // odd: write under way
    fn(h);
    Atomics.add(v, vi, 1); // even again
  };
  while (Atomics.load(ctl, 1) === 0) {
    for (let b = 0; b < 1000; b++) {
      const i = next++;
      write(keyLo(i), keyHi(i), (h) => insert(d, keyLo(i), keyHi(i), h, i + 1));
      const old = i - LIVE_KEYS;
      write(keyLo(old), keyHi(old), (h) => remove(d, keyLo(old), keyHi(old), h));
      ops++;
    }
    Atomics.store(ctl, 0, next - LIVE_KEYS);
    Atomics.store(ctl, 2, ops);
  }
}

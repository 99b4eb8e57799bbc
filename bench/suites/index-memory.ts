import { MemoryIndex, TierRegistry } from '../../src/index/index.js';
import { Scorer } from '../../src/scoring/index.js';
import { gc, percentile, rng, usedBytes, type Suite } from '../harness.js';

const ENDPOINTS = 8;
const CHAIN = 512;

/**
 * The in-memory index at scale: 10M resident (key, endpoint) entries as 512-key prompt chains on 8 endpoints, then
 * lookups of fully present 512-block prompts among 16 candidates (in process).
 */
export const indexSuite: Suite = {
  name: 'index-memory',
  description: 'sharded in-memory index: adds, bytes per entry, 512-block Score at 10M entries',
  async run({ quick }) {
    const entries = quick ? 1_000_000 : 10_000_000;
    const chains = Math.floor(entries / CHAIN);
    const random = rng(3);
    // Keys generated from the PRNG in place: no bigint per key.
    const makeChain = (c: number) => {
      const keys = new BigUint64Array(CHAIN);
      const halves = new Uint32Array(keys.buffer);
      const r = rng(0x51ed27 + c);
      for (let i = 0; i < halves.length; i++) halves[i] = Math.floor(r() * 0x100000000);
      return keys;
    };

    const tiers = new TierRegistry();
    gc();
    const before = usedBytes();
    const index = new MemoryIndex({ tiers, maxEntries: entries + 1 });
    const t0 = process.hrtime.bigint();
    let addSeconds = 0;
    for (let c = 0; c < chains; c++) {
      const keys = makeChain(c);
      const s = process.hrtime.bigint();
      index.add(`10.0.0.${(c % ENDPOINTS) + 1}:8000`, 'GPU', keys);
      addSeconds += Number(process.hrtime.bigint() - s) / 1e9;
    }
    const wallSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
    gc();
    const bytes = usedBytes() - before;
    const stats = index.statsSync();

    const scorer = new Scorer(index, tiers);
    const candidates = Array.from({ length: 16 }, (_, i) => `10.0.0.${i + 1}:8000`);
    const lookups = quick ? 2_000 : 20_000;
    const samples = new Float64Array(lookups);
    const scoreSamples = new Float64Array(lookups);
    for (let i = 0; i < lookups; i++) {
      const keys = makeChain(Math.floor(random() * chains));
      const s = process.hrtime.bigint();
      index.lookupSync(keys, { candidates });
      samples[i] = Number(process.hrtime.bigint() - s) / 1e3;
      // A different chain than the lookup's, so the score is not measured on a warm cache.
      const scoreKeys = makeChain(Math.floor(random() * chains));
      const s2 = process.hrtime.bigint();
      await scorer.score(scoreKeys, { candidates });
      scoreSamples[i] = Number(process.hrtime.bigint() - s2) / 1e3;
    }
    return {
      parameters: { entries: stats.entries, endpoints: ENDPOINTS, chainLength: CHAIN, candidates: 16, lookups, wallSeconds },
      figures: {
        addsPerSecond: { value: stats.entries / addSeconds, unit: 'entries/s', goal: '≥ 1000000' },
        bytesPerEntry: { value: bytes / stats.entries, unit: 'B/entry', goal: '≤ 64' },
        indexReportedBytesPerEntry: { value: stats.bytes / stats.entries, unit: 'B/entry' },
        lookup512p50: { value: percentile(samples, 50), unit: 'µs', goal: '≤ 100' },
        lookup512p99: { value: percentile(samples, 99), unit: 'µs' },
        score512p50: { value: percentile(scoreSamples, 50), unit: 'µs', goal: '≤ 100' },
        score512p99: { value: percentile(scoreSamples, 99), unit: 'µs' },
      },
    };
  },
};

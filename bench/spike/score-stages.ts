/**
 * Spike (issue 16): the cost of one Score call (tokens in, 1,024 tokens, 16 candidates) stage by stage, in process,
 * against the grpc suite's index (1M resident blocks + the resident prompts), and the cost of ingest per 1,000 blocks.
 * No HTTP/2 here: its cost is the no-op handler's CPU per call in the grpc runs.
 *
 *   node --expose-gc --import tsx bench/spike/score-stages.ts
 */
import { loadSync } from '@grpc/proto-loader';
import type { ServiceDefinition } from '@grpc/grpc-js';
import { getHeapStatistics } from 'node:v8';
import { LOADER_OPTIONS } from '../../src/api/index.js';
import { decodeScoreRequest } from '../../src/api/wire/score-request.js';
import { encodeScoreResponse } from '../../src/api/wire/score-response.js';
import { scoreMatches } from '../../src/scoring/score.js';
import { scoreRows } from '../../src/scoring/score-rows.js';
import { TierWeights } from '../../src/scoring/index.js';
import { BlockHasher } from '../../src/keys/index.js';
import { embeddedConfig, startEmbedded } from '../../src/service/embedded.js';
import { MatchRows, type MemoryIndex } from '../../src/index/index.js';
import type { ScoreRequestMsg } from '../../src/api/messages.js';
import { gc, rng } from '../harness.js';
import { BENCH_CANDIDATES, indexResidentPrompts } from '../support/resident-prompts.js';
import { ingestGenerator } from './ingest-load.js';

const embedded = await startEmbedded(embeddedConfig({ zmq: { addresses: [] } }));
const { service, api } = embedded;
const random = rng(5);
const prompts = indexResidentPrompts(embedded, random);
const gen = ingestGenerator(BENCH_CANDIDATES, random);
const apply = (endpoint: string, events: Parameters<typeof service.ingestor.applySync>[2]) =>
  service.ingestor.applySync(endpoint, 'model', events);
gen.fill(apply);
gc();

const def = loadSync('kvindexer/v1/kvindexer.proto', LOADER_OPTIONS);
const method = (def['kvindexer.v1.KvIndexer'] as ServiceDefinition).Score;
const requests = prompts.map((tokens) => ({
  model: 'model',
  tokens: { tokenIds: tokens },
  candidates: BENCH_CANDIDATES,
}));
const bufs = requests.map((r) => method.requestSerialize(r) as Buffer);
const decoded = bufs.map((b) => decodeScoreRequest(b, method.requestDeserialize) as ScoreRequestMsg);
const hasher = new BlockHasher(embedded.config.keys);
const index = service.index as MemoryIndex;
const keys = decoded.map((r) => hasher.keysFor('model', r.tokens!.tokenIds as unknown as Uint32Array));
const weights = new TierWeights();
const matches = keys.map((k) => index.lookupSync(k, { candidates: BENCH_CANDIDATES }));
const responses = await Promise.all(decoded.map((r) => api.api.score(r)));

/** CPU µs per call (median and min of 11 rounds of `n`), and bytes allocated per call (median heap growth of GC-free rounds). */
async function stage(name: string, n: number, fn: (i: number) => unknown) {
  for (let i = 0; i < n; i++) await fn(i);
  const times: number[] = [];
  const allocs: number[] = [];
  for (let round = 0; round < 11; round++) {
    const h0 = getHeapStatistics().used_heap_size;
    const c0 = process.cpuUsage();
    for (let i = 0; i < n; i++) {
      const r = fn(i);
      if (r instanceof Promise) await r;
    }
    const c1 = process.cpuUsage(c0);
    const dh = getHeapStatistics().used_heap_size - h0;
    // CPU time, not wall time: the machine is shared, and a descheduled round would count another process's work.
    times.push((c1.user + c1.system) / n);
    if (dh > 0) allocs.push(dh / n);
  }
  times.sort((a, b) => a - b);
  allocs.sort((a, b) => a - b);
  const row = {
    stage: name,
    usPerCall: Number(times[5].toFixed(2)),
    usMin: Number(times[0].toFixed(2)),
    bytesPerCall: allocs.length ? Math.round(allocs[Math.floor(allocs.length / 2)]) : NaN,
  };
  console.log(JSON.stringify(row));
  return row;
}

const N = 1000;
const rows = [];
rows.push(await stage('decode request (wire)', N, (i) => decodeScoreRequest(bufs[i % 64], method.requestDeserialize)));
rows.push(
  await stage('keys (hasher.keysFor, 64 blocks)', N, (i) =>
    hasher.keysFor('model', decoded[i % 64].tokens!.tokenIds as unknown as Uint32Array),
  ),
);
rows.push(
  await stage('index lookup (lookupSync, 16 cand.)', N, (i) =>
    index.lookupSync(keys[i % 64], { candidates: BENCH_CANDIDATES }),
  ),
);
rows.push(
  await stage('scoring (scoreMatches)', N, (i) =>
    scoreMatches(matches[i % 64], 64, weights, index.tiers, BENCH_CANDIDATES),
  ),
);
// The per-call rows of the synchronous path (issue 16): lookupRows into one reused MatchRows, scoreRows over it.
const matchRows = new MatchRows();
const rowOptions = { candidates: BENCH_CANDIDATES };
rows.push(
  await stage('index lookup (lookupRows, 16 cand.)', N, (i) => index.lookupRows(keys[i % 64], rowOptions, matchRows)),
);
rows.push(
  await stage('lookupRows + scoreRows', N, (i) => {
    index.lookupRows(keys[i % 64], rowOptions, matchRows);
    return scoreRows(matchRows, 64, weights, index.tiers, BENCH_CANDIDATES);
  }),
);
rows.push(await stage('encode response (wire)', N, (i) => encodeScoreResponse(responses[i % 64])));
rows.push(await stage('api.score (validate+keys+lookup+score+metrics)', N, (i) => api.api.score(decoded[i % 64])));
rows.push(
  await stage('decode + api.score + encode', N, async (i) =>
    encodeScoreResponse(
      await api.api.score(decodeScoreRequest(bufs[i % 64], method.requestDeserialize) as ScoreRequestMsg),
    ),
  ),
);
// Ingest: one "event" = BlockRemoved 16 + BlockStored 16 (steady state), so 16 blocks stored per event.
rows.push(
  await stage('ingest: one 16-block store + 16-block removal', 500, () => {
    const x = gen.next();
    apply(x.endpoint, x.events);
  }),
);
const ingestRow = rows[rows.length - 1];
console.log(
  JSON.stringify({
    ingestCpuShareAt100kBlocksPerSecond: (ingestRow.usPerCall * (100_000 / 16)) / 1e6,
    ingestMaxBlocksPerSecond: Math.round((16 * 1e6) / ingestRow.usPerCall),
  }),
);
await embedded.stop();

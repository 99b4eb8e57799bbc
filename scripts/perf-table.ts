// Renders README.md's performance table from bench/results/*.json (the latest full runs) and, run directly, rewrites
// the section between <!-- perf:begin --> and <!-- perf:end -->. test/unit/docs/perf-table.test.ts checks the README
// is current. `npm run bench` then `npm run perf:readme` after a benchmark run.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { renderMarkdown, type SimulationReport } from '../src/sim/fleet/report.js';

interface Figure {
  value: number;
  unit: string;
  goal?: string;
}

/** Figures shown besides every figure that has a goal, per suite, with a readable label. */
const SHOWN: Record<string, Record<string, string>> = {
  decode: {
    'vllm-array-intMessagesPerSecond': 'vLLM array events, int hashes',
    'vllm-map-intMessagesPerSecond': 'vLLM map events, int hashes',
    'vllm-map-bytesMessagesPerSecond': 'vLLM map events, 32-byte hashes',
    'sglang-arrayMessagesPerSecond': 'SGLang array events',
  },
  'mm-hash': {
    identifier_blake3_MBps: 'vLLM image identifier (BLAKE3, hash-wasm), 20 MB image, one core',
    identifier_sha256_MBps: 'same, sha256 (node:crypto)',
    fetchColdP50: 'image URL fetch from a local server, cold, p50 (695 KB PNG)',
    fetchCachedP50: 'same, cached, p50',
  },
  hashing: {
    nsPerBlockRealistic: 'request-key hashing, 16-token blocks',
    nsPerBlockWideTokens: 'same, every token 5 CBOR bytes',
  },
  ingest: {
    storedBlocksPerSecond: 'decoded stores applied (hash + bridge + index), one core',
    removedBlocksPerSecond: 'removes applied',
    steadyStoredBlocksPerSecond: 'steady state (1M blocks resident): stores applied, each with an eviction of as many',
    bytesPerBlockWithBridge: 'memory per (block, endpoint) incl. the engine-key bridge',
  },
  'index-memory': {
    bytesPerEntry: 'in-memory index at 10M entries',
    addsPerSecond: 'in-memory index adds',
    lookup512p50: '512-block lookup, 16 candidates, p50',
    addMicrosecondsPerKey: 'in-memory index Add, per key',
    lookupMicrosecondsPerKey: 'in-memory index Lookup, per key (512-key lookup p50 / 512)',
    score512p50: '512-block Score, 16 candidates, p50',
    score512p99: '512-block Score, 16 candidates, p99',
    bytesPerEntryAt1M: 'in-memory index at 1M entries',
    score512p50At1M: '512-block Score at 1M entries, p50',
    score512p99At1M: '512-block Score at 1M entries, p99',
  },
  transport: {
    endToEndStoredBlocksPerSecond: 'end to end over ZMQ: recv → decode → streams → ingest',
    endToEndEventBlocksPerSecond: 'same, stored + removed blocks',
    replayRecovery1000Batches: 'replay recovery of a 1,000-batch gap',
  },
  prompt: {
    coldP50Ms8k: 'chat render + tokenize + keys, 8k tokens, cold, p50',
    cachedP50Ms8k: 'same, next turn (prefix cached), p50',
    coldP50Ms32k: '32k tokens, cold, p50',
    fourImagesP50Ms: 'chat with 4 images, render + expand + keys, p50',
  },
  grpc: {
    requestsPerSecond:
      'gRPC Score (1k tokens, 16 candidates) while ingesting 100k blocks/s, through grpc-js (api.fastScore off): max throughput (closed loop, 16 in flight)',
    p50: 'same, at 5,000 req/s offered (open loop), p50',
    p99: 'same, at 5,000 req/s offered (open loop), p99',
    closedServerCpuPerCall: 'same, server CPU per call (closed loop, ingest included)',
    h2loadRequestsPerSecond: 'max throughput, h2load as the client (closed loop)',
    fastScoreRequestsPerSecond: 'Score on the lean HTTP/2 path (api.fastScore, the default), same run: max throughput',
    fastScoreP50: 'lean path at 5,000 req/s offered, p50',
    fastScoreP99: 'lean path at 5,000 req/s offered, p99',
    fastScoreP999: 'lean path at 5,000 req/s offered, p999',
    fastScoreLowerRateP99: 'lean path at 3,000 req/s offered, p99',
    fastScoreClosedVsNoop: 'lean path max throughput ÷ a no-op Score on the lean path, same run',
    fastScoreClosedServerCpuPerCall: 'lean path, server CPU per call (closed loop, ingest included)',
    noopHandlerRequestsPerSecond: 'a no-op Score handler through grpc-js, same client (ceiling)',
    noopHandlerP99: 'a no-op Score handler through grpc-js at 5,000 req/s offered, p99',
    noopFastScoreRequestsPerSecond: 'a no-op Score on the lean path (ceiling)',
    noopFastScoreP99: 'a no-op Score on the lean path at 5,000 req/s offered, p99',
  },
  'grpc-threads': {
    singleClosedRequestsPerSecond:
      'Score (1k tokens, 16 candidates), all data over ZMQ (100k blocks/s), one event loop, lean HTTP/2 server: max throughput (closed loop)',
    singleOpenP99: 'same, at 5,000 req/s offered, p99',
    singleOpenP999: 'same, at 5,000 req/s offered, p999',
    singleClosedVsNoop: 'one event loop, max throughput ÷ a no-op Score behind the lean server, same run',
    threadClosedRequestsPerSecond:
      'same run, api.indexThread (lean HTTP/2 server on the main thread, the rest in the index thread): max throughput',
    threadClosedServerCpuPerCall: 'api.indexThread, server CPU per call (both threads, ingest included)',
    threadOpenP50: 'api.indexThread at 5,000 req/s offered, p50',
    threadOpenP99: 'api.indexThread at 5,000 req/s offered, p99',
    threadOpenP999: 'api.indexThread at 5,000 req/s offered, p999',
    threadLowerRateP99: 'api.indexThread at 3,000 req/s offered, p99',
    threadClosedVsNoop: 'api.indexThread max throughput ÷ a no-op Score behind the lean server, same run',
    threadNodeClosedRequestsPerSecond:
      'api.indexThread behind node:http2 + grpc-js (api.leanHttp2 false): max throughput',
    threadNodeOpenP99: 'api.indexThread behind node:http2 + grpc-js at 5,000 req/s offered, p99',
    threadNodeOpenP999: 'same, p999',
    threadNodeIngestUnderReadsVsAlone:
      'api.indexThread behind node:http2 + grpc-js: ingest with Score at 5,000 req/s ÷ without',
    noopClosedRequestsPerSecond: 'a no-op Score behind the lean server, same run (ceiling)',
    noopOpenP99: 'a no-op Score behind the lean server at 5,000 req/s offered, p99',
    noopNodeClosedRequestsPerSecond: 'a no-op Score behind node:http2 + grpc-js (fast Score path), same run',
    noopNodeOpenP99: 'same, at 5,000 req/s offered, p99',
    singleIngestCapacityAlone: 'one event loop: ingest capacity over ZMQ (a burst, stores with evictions), no reads',
    singleIngestUnderReadsVsAlone: 'one event loop: ingest capacity with Score at 5,000 req/s ÷ without',
    singleBurstReadsP99: 'one event loop: Score p99 at 5,000 req/s during that burst',
    threadIngestCapacityAlone: 'api.indexThread: ingest capacity over ZMQ, no reads',
    threadIngestUnderReadsVsAlone: 'api.indexThread: ingest capacity with Score at 5,000 req/s ÷ without',
    threadBurstReadsP99: 'api.indexThread: Score p99 at 5,000 req/s during that burst',
  },
  'grpc-processes': {
    p1ClosedRequestsPerSecond:
      'Score (1k tokens, 16 candidates), all data over ZMQ (100k blocks/s), the CLI in its own process (api.processes 1): max throughput',
    p1ClosedServerCpuPerCall: 'same, server CPU per call (ingest included)',
    p1ClosedVsNoop:
      'api.processes 1: max throughput ÷ a no-op Score behind the lean server in its own process, same run',
    p1OpenP99: 'same, at 5,000 req/s offered, p99',
    p1OpenP999: 'same, at 5,000 req/s offered, p999',
    p2ClosedRequestsPerSecond:
      'same run, api.processes 2 (two serving processes, a replica each, on 2 vCPUs): max throughput',
    p2ClosedRequestsPerSecondPerProcess: 'api.processes 2: max throughput per process',
    p2OpenP99: 'api.processes 2 at 5,000 req/s offered, p99',
    p2OpenP999: 'api.processes 2 at 5,000 req/s offered, p999',
    p2ClosedVsNoop: 'api.processes 2: max throughput ÷ the same no-op',
    p2Rss: 'api.processes 2: memory of the primary and both processes (1M-block index each)',
    p1Rss: 'api.processes 1: memory (1M-block index)',
    p1IngestCapacityAlone: 'api.processes 1: a burst of 2^20 blocks over ZMQ absorbed, no reads (blocks/s)',
    p1IngestUnderReadsVsAlone: 'api.processes 1: the same burst with Score at 5,000 req/s ÷ without',
    p2IngestCapacityAlone: 'api.processes 2: the same burst absorbed by both replicas, no reads (blocks/s)',
    p2IngestUnderReadsVsAlone: 'api.processes 2: the same burst with Score at 5,000 req/s ÷ without',
    noopClosedRequestsPerSecond: 'a no-op Score behind the lean server in its own process, same run (ceiling)',
    noopOpenP99: 'same no-op at 5,000 req/s offered, p99',
  },
  'grpc-chat': {
    coldP50Ms: 'gRPC Score from chat text (8k tokens, 16 candidates), new conversation, p50',
    nextTurnP50Ms: 'same, next turn of the conversation, p50',
  },
  'grpc-tools': {
    coldP50Ms:
      'gRPC Score from a tool-using agent chat (8k tokens: tools, tool calls, results; 16 candidates), new conversation, p50',
    coldP99Ms: 'same, p99',
    nextTurnP50Ms: 'same, next turn of the conversation, p50',
  },
  'grpc-hygiene': {
    aloneP50: 'gRPC Score (1k tokens, 16 candidates) at 1,000 req/s, one client alone, p50',
    aloneP99: 'same, p99',
    whileHeldP50: 'Score as above, while 100 other connections hold 100k calls open, p50',
    whileHeldP99: 'same, p99',
    whileNeverReadP99: 'Score as above, while another client never reads its responses (no WINDOW_UPDATE), p99',
    aloneAgainP99: 'Score as above, alone again afterwards (the noise), p99',
    heldServerRssMiB: 'server memory for 100k held calls',
    heldConnectionsMaxLifeSeconds: 'held-call connections closed by the server after (max age 60 s ± 10 % + 1 s grace)',
    idleConnectionLifeSeconds: 'an idle connection closed after (idle timeout 2 s)',
    heldStillOpenAfterPhase: 'the 100k calls were held for the whole phase (1 = yes)',
    connectionsAfterReclaim: 'server connections once the hostile ones were reclaimed (baseline 0)',
    connectionsAtEnd: 'server connections at the end',
    errors: 'failed calls of the measured client',
  },
  select: {
    inProcessScoreP50: 'Score (1k tokens, 16 candidates) in process, p50 — next to Select, same run',
    inProcessSelectP50: 'Select (cache+load), same request, in process, p50',
    inProcessSelectReserveP50: 'Select with reserve, in process, p50',
    grpcScoreP99: 'Score over gRPC (closed loop, one connection), p99',
    grpcSelectP99: 'Select over gRPC, same client, p99',
    grpcSelectReserveP99: 'Select with reserve over gRPC, p99',
    redisIndexRedisLedgerSelectP50: 'Select with the Redis index and the shared Redis ledger, p50',
    redisIndexRedisLedgerSelectLedgerRoundTrips: 'ledger round trips per Select (pipelined with the lookup)',
    redisIndexRedisLedgerSelectReserveLedgerRoundTrips: 'ledger round trips per Select with reserve',
  },
  scrape: {
    cpuMsPerScrape: 'load scrape of one vLLM /metrics page (fetch + parse), CPU',
    parseMsPerPage: 'parse alone (DP=2 page, ~65 kB, every loggers.py family; wanted lines decoded only)',
    inLoop64ScrapesPerSecond: '64 endpoints every 200 ms, scraped in the event loop: scrapes/s',
    inLoop64OkShare: 'same: share of scrapes ok',
    inLoop64FreshEndpoints: 'same: endpoints with fresh figures',
    worker64ScrapesPerSecond: '64 endpoints every 200 ms, scraped in the worker thread (default): scrapes/s',
    worker64OkShare: 'same: share of scrapes ok',
    worker64FreshEndpoints: 'same: endpoints with fresh figures',
    inLoop256ScrapesPerSecond: '256 endpoints every 200 ms, scraped in the event loop: scrapes/s',
    inLoop256MainLoopBusyMsPerSecond: 'same: main event loop busy',
    inLoop256LoopDelayP99: 'same: main event loop delay p99',
    inLoop256OkShare: 'same: share of scrapes ok',
    inLoop256FreshEndpoints: 'same: endpoints with fresh figures',
    worker256ScrapesPerSecond: '256 endpoints every 200 ms, scraped in the worker thread (default): scrapes/s',
    worker256MainLoopBusyMsPerSecond: 'same: main event loop busy',
    worker256LoopDelayP99: 'same: main event loop delay p99',
    worker256OkShare: 'same: share of scrapes ok',
    worker256FreshEndpoints: 'same: endpoints with fresh figures',
  },
  redis: {
    serverCommandsPerScore: 'Redis commands per Score',
    serverCommandsPerFlush: 'Redis commands per flush',
    serverScore512p50: 'Redis server: 512-block Score p50',
    clusterScore512p50: 'Redis Cluster (3 masters): 512-block Score p50',
    serverIngestKeysPerSecond: 'Redis server: ingest',
    serverRedisBytesPerEntry: 'Redis memory per entry',
  },
};

const ORDER = [
  'decode',
  'hashing',
  'ingest',
  'index-memory',
  'transport',
  'prompt',
  'grpc',
  'grpc-threads',
  'grpc-processes',
  'grpc-chat',
  'grpc-tools',
  'grpc-hygiene',
  'select',
  'scrape',
  'redis',
  'mm-hash',
];

function format(value: number): string {
  if (value >= 1_000_000) return `${(value / 1e6).toFixed(value >= 1e7 ? 1 : 2)}M`;
  if (value >= 10_000) return `${(value / 1e3).toFixed(0)}k`;
  if (value >= 100) return value.toFixed(0);
  return Number(value.toPrecision(3)).toString();
}

/** Published figures of llm-d beside ours, where the same thing was measured. */
const REFERENCE: Record<string, Record<string, string>> = {
  'index-memory': {
    addMicrosecondsPerKey: 'llm-d Go index: 0.61 µs/key (Apple M3 Pro)',
    lookupMicrosecondsPerKey: 'llm-d Go index: 17.9 µs/key (Apple M3 Pro)',
  },
};

/** Figures derived from others so that they read in the reference's unit. */
function derived(suite: string, figures: Record<string, Figure>): Record<string, Figure> {
  if (suite !== 'index-memory' || !figures.addsPerSecond || !figures.lookup512p50) return {};
  return {
    addMicrosecondsPerKey: { value: 1e6 / figures.addsPerSecond.value, unit: 'µs/key' },
    lookupMicrosecondsPerKey: { value: figures.lookup512p50.value / 512, unit: 'µs/key' },
  };
}

export function renderPerformanceTable(resultsDir: URL): string {
  const rows = ['| suite | what | measured | goal | published reference |', '|---|---|---|---|---|'];
  for (const suite of ORDER) {
    let result: { figures: Record<string, Figure>; date: string };
    try {
      result = JSON.parse(readFileSync(new URL(`${suite}.json`, resultsDir), 'utf8'));
    } catch {
      continue;
    }
    const shown = SHOWN[suite] ?? {};
    const reference = REFERENCE[suite] ?? {};
    for (const [name, f] of Object.entries({ ...result.figures, ...derived(suite, result.figures) })) {
      if (!(name in shown) && !(name in reference) && !f.goal) continue;
      rows.push(
        `| ${suite} | ${shown[name] ?? name} | ${format(f.value)} ${f.unit} | ${f.goal ?? ''} | ${reference[name] ?? ''} |`,
      );
    }
  }
  return rows.join('\n');
}

/** The simulator's table (bench/results/simulate.json, written by `npm run simulate`). */
export function renderSimulationTable(resultsDir: URL): string {
  const report = JSON.parse(readFileSync(new URL('simulate.json', resultsDir), 'utf8')) as SimulationReport;
  const p = report.parameters as { requests: number; rate: number; fleet: { endpoints: number; gpuBlocks: number } };
  return [
    `${p.fleet.endpoints} endpoints × ${p.fleet.gpuBlocks} blocks of 16 tokens, ${p.requests} requests per workload at ${p.rate} req/s, seed ${report.seed} (\`npm run simulate\`; chart: bench/results/simulate.svg).`,
    '',
    renderMarkdown(report),
  ].join('\n');
}

/** Replaces the text between `<!-- name:begin -->` and `<!-- name:end -->`. */
export function withSection(text: string, name: string, body: string): string {
  const begin = `<!-- ${name}:begin -->`;
  const end = `<!-- ${name}:end -->`;
  const a = text.indexOf(begin);
  const b = text.indexOf(end);
  if (a < 0 || b < a) throw new Error(`the file needs ${begin} … ${end}`);
  return `${text.slice(0, a + begin.length)}\n${body}\n${text.slice(b)}`;
}

export function withTable(readme: string, table: string): string {
  return withSection(readme, 'perf', table);
}

/** Every generated section of README.md and docs/simulator.md, from bench/results/. */
export function renderDocs(root: URL): { path: URL; text: string }[] {
  const results = new URL('bench/results/', root);
  const readmePath = new URL('README.md', root);
  const simulatorPath = new URL('docs/simulator.md', root);
  const simulation = renderSimulationTable(results);
  const readme = withSection(
    withTable(readFileSync(readmePath, 'utf8'), renderPerformanceTable(results)),
    'sim',
    simulation,
  );
  return [
    { path: readmePath, text: readme },
    { path: simulatorPath, text: withSection(readFileSync(simulatorPath, 'utf8'), 'sim', simulation) },
  ];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const { path, text } of renderDocs(new URL('../', import.meta.url))) writeFileSync(path, text);
  console.log('README.md performance tables and docs/simulator.md results updated from bench/results/');
}

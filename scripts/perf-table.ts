// Renders README.md's performance table from bench/results/*.json (the latest full runs) and, run directly, rewrites
// the section between <!-- perf:begin --> and <!-- perf:end -->. test/unit/docs/perf-table.test.ts checks the README
// is current. `npm run bench` then `npm run perf:readme` after a benchmark run.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

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
  hashing: { nsPerBlockRealistic: 'request-key hashing, 16-token blocks', nsPerBlockWideTokens: 'same, every token 5 CBOR bytes' },
  ingest: {
    storedBlocksPerSecond: 'decoded stores applied (hash + bridge + index), one core',
    removedBlocksPerSecond: 'removes applied',
    bytesPerBlockWithBridge: 'memory per (block, endpoint) incl. the engine-key bridge',
  },
  'index-memory': {
    bytesPerEntry: 'in-memory index at 10M entries',
    addsPerSecond: 'in-memory index adds',
    lookup512p50: '512-block lookup, 16 candidates, p50',
    score512p50: '512-block Score, 16 candidates, p50',
    score512p99: '512-block Score, 16 candidates, p99',
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
    requestsPerSecond: 'gRPC Score (1k tokens, 16 candidates) while ingesting 100k blocks/s',
    p50: 'same, p50',
    p99: 'same, p99',
    noopHandlerRequestsPerSecond: 'a no-op Score handler, same client (ceiling)',
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

const ORDER = ['decode', 'hashing', 'ingest', 'index-memory', 'transport', 'prompt', 'grpc', 'redis'];

function format(value: number): string {
  if (value >= 1_000_000) return `${(value / 1e6).toFixed(value >= 1e7 ? 1 : 2)}M`;
  if (value >= 10_000) return `${(value / 1e3).toFixed(0)}k`;
  if (value >= 100) return value.toFixed(0);
  return Number(value.toPrecision(3)).toString();
}

export function renderPerformanceTable(resultsDir: URL): string {
  const rows = ['| suite | what | measured | goal |', '|---|---|---|---|'];
  for (const suite of ORDER) {
    let result: { figures: Record<string, Figure>; date: string };
    try {
      result = JSON.parse(readFileSync(new URL(`${suite}.json`, resultsDir), 'utf8'));
    } catch {
      continue;
    }
    const shown = SHOWN[suite] ?? {};
    for (const [name, f] of Object.entries(result.figures)) {
      if (!(name in shown) && !f.goal) continue;
      rows.push(`| ${suite} | ${shown[name] ?? name} | ${format(f.value)} ${f.unit} | ${f.goal ?? ''} |`);
    }
  }
  return rows.join('\n');
}

const BEGIN = '<!-- perf:begin -->';
const END = '<!-- perf:end -->';

export function withTable(readme: string, table: string): string {
  const a = readme.indexOf(BEGIN);
  const b = readme.indexOf(END);
  if (a < 0 || b < a) throw new Error(`README.md needs ${BEGIN} … ${END} around the performance table`);
  return `${readme.slice(0, a + BEGIN.length)}\n${table}\n${readme.slice(b)}`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const root = new URL('../', import.meta.url);
  const readmePath = new URL('README.md', root);
  writeFileSync(readmePath, withTable(readFileSync(readmePath, 'utf8'), renderPerformanceTable(new URL('bench/results/', root))));
  console.log('README.md performance table updated from bench/results/');
}

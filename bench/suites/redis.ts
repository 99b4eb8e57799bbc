import dc from 'node:diagnostics_channel';
import { Redis } from 'ioredis';
import { RedisIndex, TierRegistry } from '../../src/index/index.js';
import { Scorer } from '../../src/scoring/index.js';
import { startCluster, startRedis } from '../../test/support/redis-server.js';
import { percentile, randomChain, rng, type Figure, type Suite } from '../harness.js';

const CHAIN = 512;
const ENDPOINTS = 16;
const CHAINS_PER_FLUSH = 8;

/**
 * Commands the clients sent (ioredis traces each command it writes to a socket, once, on diagnostics_channel):
 * what the index costs in round trips. The bench's own INFO calls and the cluster client's slot refreshes are left
 * out. (INFO commandstats cannot tell: it also counts the commands scripts run inside Redis.)
 */
let sent = 0;
dc.subscribe('tracing:ioredis:command:start', (message) => {
  const name = (message as { command?: string }).command?.toLowerCase();
  if (name !== 'info' && name !== 'cluster' && name !== 'command') sent++;
});
async function commands(_nodes: Redis[]): Promise<number> {
  return sent;
}

async function usedMemory(nodes: Redis[]): Promise<number> {
  let n = 0;
  for (const node of nodes) n += Number(/used_memory:(\d+)/.exec(await node.info('memory'))?.[1] ?? 0);
  return n;
}

/** Ingest (adds, flushed every 8 chains), then 512-block lookups and Scores among 16 candidates. */
async function measure(index: RedisIndex, tiers: TierRegistry, nodes: Redis[], chains: number, lookups: number) {
  const memBefore = await usedMemory(nodes);
  // Warm up the registry (first sight of an endpoint costs one registry call, not measured).
  for (let e = 0; e < ENDPOINTS; e++) index.add(`10.0.0.${e}:8000`, 'GPU', BigUint64Array.of(BigInt(e)));
  await index.flush();
  let flushes = 0;
  let seconds = 0;
  const cmdBefore = await commands(nodes);
  for (let c = 0; c < chains; c += CHAINS_PER_FLUSH) {
    const batch = [];
    for (let j = c; j < Math.min(chains, c + CHAINS_PER_FLUSH); j++) batch.push(randomChain(j));
    const t = process.hrtime.bigint();
    batch.forEach((keys, j) => index.add(`10.0.0.${(c + j) % ENDPOINTS}:8000`, 'GPU', keys, keys[0]));
    await index.flush();
    seconds += Number(process.hrtime.bigint() - t) / 1e9;
    flushes++;
  }
  // The first flush registers endpoints and tags (one PREPARE); count per flush over all of them.
  const commandsPerFlush = ((await commands(nodes)) - cmdBefore) / flushes;
  const entries = chains * CHAIN;
  const bytesPerEntry = ((await usedMemory(nodes)) - memBefore) / entries;

  const candidates = Array.from({ length: ENDPOINTS }, (_, e) => `10.0.0.${e}:8000`);
  const scorer = new Scorer(index, tiers);
  const random = rng(7);
  const lookupUs = new Float64Array(lookups);
  const missUs = new Float64Array(lookups);
  const cmdLookups = await commands(nodes);
  for (let i = 0; i < lookups; i++) {
    const keys = randomChain(Math.floor(random() * chains));
    const t = process.hrtime.bigint();
    const r = await scorer.score(keys, { candidates });
    lookupUs[i] = Number(process.hrtime.bigint() - t) / 1e3;
    if (r.scores.every((s) => s.matchedBlocks !== CHAIN)) throw new Error('bench: a stored chain did not match fully');
    const miss = randomChain(chains + i);
    const t2 = process.hrtime.bigint();
    await scorer.score(miss, { candidates });
    missUs[i] = Number(process.hrtime.bigint() - t2) / 1e3;
  }
  const commandsPerLookup = ((await commands(nodes)) - cmdLookups) / (2 * lookups);
  return { entries, seconds, flushes, commandsPerFlush, bytesPerEntry, lookupUs, missUs, commandsPerLookup };
}

function figures(tag: string, m: Awaited<ReturnType<typeof measure>>, goals: boolean): Record<string, Figure> {
  return {
    [`${tag}IngestKeysPerSecond`]: { value: m.entries / m.seconds, unit: 'keys/s' },
    [`${tag}CommandsPerFlush`]: { value: m.commandsPerFlush, unit: 'commands', goal: goals ? '≤ 1' : undefined },
    [`${tag}Score512p50`]: { value: percentile(m.lookupUs, 50), unit: 'µs' },
    [`${tag}Score512p99`]: { value: percentile(m.lookupUs, 99), unit: 'µs' },
    [`${tag}ScoreMissP50`]: { value: percentile(m.missUs, 50), unit: 'µs' },
    [`${tag}CommandsPerScore`]: { value: m.commandsPerLookup, unit: 'commands', goal: '1' },
    [`${tag}RedisBytesPerEntry`]: { value: m.bytesPerEntry, unit: 'B/entry' },
  };
}

/**
 * The Redis index against local redis-server processes started here: a single server (placement single) and a
 * 3-master cluster (placement anchor). Ingest: 512-key chains on 16 endpoints, 8 chains (4,096 keys) per flush.
 * Score: fully present 512-block prompts among 16 candidates (the script walks all 512 blocks), and misses.
 * Round trips are counted as commands served per operation (INFO commandstats).
 */
export const redisSuite: Suite = {
  name: 'redis',
  description:
    'Redis index: 512-block Score latency, ingest keys/s, commands per Score and per flush (server, cluster)',
  async run({ quick }) {
    const chains = quick ? 64 : 1024;
    const lookups = quick ? 200 : 2000;
    const result: Record<string, Figure> = {};

    const server = await startRedis();
    const nodes = [new Redis(server.port, '127.0.0.1')];
    try {
      const tiers = new TierRegistry();
      const index = await RedisIndex.open({ url: server.url, tiers, commandTimeoutMs: 10_000 });
      Object.assign(result, figures('server', await measure(index, tiers, nodes, chains, lookups), true));
      await index.close();
    } finally {
      nodes.forEach((n) => n.disconnect());
      await server.stop();
    }

    const cluster = await startCluster(3);
    const clusterNodes = cluster.nodes.map((n) => new Redis(n.port, '127.0.0.1'));
    try {
      const tiers = new TierRegistry();
      const index = await RedisIndex.open({ cluster: cluster.startupNodes, tiers, commandTimeoutMs: 10_000 });
      Object.assign(result, figures('cluster', await measure(index, tiers, clusterNodes, chains, lookups), false));
      await index.close();
    } finally {
      clusterNodes.forEach((n) => n.disconnect());
      await cluster.stop();
    }
    return {
      parameters: {
        chains,
        chainLength: CHAIN,
        endpoints: ENDPOINTS,
        candidates: ENDPOINTS,
        keysPerFlush: CHAINS_PER_FLUSH * CHAIN,
        lookups,
      },
      figures: result,
    };
  },
};

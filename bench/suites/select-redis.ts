import dc from 'node:diagnostics_channel';
import type { RedisIndex } from '../../src/index/index.js';
import { embeddedConfig, startEmbedded } from '../../src/service/embedded.js';
import { startRedis } from '../../test/support/redis-server.js';
import { percentile, rng, type Figure } from '../harness.js';
import { BENCH_CANDIDATES, indexResidentPrompts } from '../support/resident-prompts.js';

/**
 * Redis commands this process sent (ioredis's tracing channel), as bench/suites/redis.ts counts them: what a call
 * costs in round trips, not the commands its scripts run inside Redis.
 */
let sent = 0;
dc.subscribe('tracing:ioredis:command:start', (message) => {
  const name = (message as { command?: string }).command?.toLowerCase();
  if (name !== 'info' && name !== 'cluster' && name !== 'command') sent++;
});

/**
 * Select over a Redis index (one local redis-server, placement single), with the in-flight ledger in memory and in
 * Redis (select.ledger), in process and one call at a time, in the same run: p50/p99 of Select and Select + reserve
 * (each reservation released after, untimed), and per call the Redis commands sent and the ledger's script calls.
 */
export async function selectOverRedis(calls: number): Promise<Record<string, Figure>> {
  const server = await startRedis();
  const figures: Record<string, Figure> = {};
  try {
    for (const ledger of ['memory', 'redis'] as const) {
      const embedded = await startEmbedded(
        embeddedConfig({
          zmq: { addresses: [] },
          api: { maxSpeculativePerCaller: 0 },
          index: {
            backend: 'redis',
            redisUrl: server.url,
            redisKeyPrefix: `sel-${ledger}:`,
            redisCommandTimeoutMs: 10_000,
          },
          select: { ledger },
        }),
      );
      try {
        const prompts = indexResidentPrompts(embedded, rng(7));
        await (embedded.service.index as RedisIndex).flush();
        const select = embedded.api.select;
        const requests = prompts.map((tokens) => ({
          model: 'model',
          input: 'tokens',
          tokens: { tokenIds: tokens, items: [] },
          candidates: BENCH_CANDIDATES,
          tierWeights: {},
        }));
        // The ledger's script calls, from its metric (absent with the memory ledger).
        const ledgerTrips = async () => {
          const family = embedded.api.metrics.registry.getSingleMetric(
            'kv_indexer_select_ledger_redis_round_trips_total',
          );
          const values = family ? (await family.get()).values : [];
          return values.reduce((sum, v) => sum + v.value, 0);
        };
        const name = ledger === 'redis' ? 'RedisLedger' : 'MemoryLedger';
        for (const reserve of [false, true]) {
          const run = async (n: number, timed: boolean) => {
            const lat = new Float64Array(n);
            const tripsBefore = await ledgerTrips();
            let commands = 0;
            let releases = 0;
            for (let i = 0; i < n; i++) {
              const c0 = sent;
              const start = performance.now();
              const res = await select.select({ ...requests[i % requests.length], reserve } as never);
              lat[i] = performance.now() - start;
              commands += sent - c0;
              if (!res.reservationId) continue;
              await select.releaseReservation({ reservationId: res.reservationId } as never);
              releases++;
            }
            // Each release is one script call of its own, not Select's.
            const trips = (await ledgerTrips()) - tripsBefore - (ledger === 'redis' ? releases : 0);
            if (!timed) return;
            const key = `redisIndex${name}Select${reserve ? 'Reserve' : ''}`;
            figures[`${key}P50`] = { value: percentile(lat, 50), unit: 'ms' };
            figures[`${key}P99`] = { value: percentile(lat, 99), unit: 'ms' };
            figures[`${key}Commands`] = { value: commands / n, unit: 'commands/call' };
            if (ledger === 'redis') figures[`${key}LedgerRoundTrips`] = { value: trips / n, unit: 'round trips/call' };
          };
          await run(200, false); // warm-up: JIT, the endpoint ids, the scripts loaded
          await run(calls, true);
        }
      } finally {
        await embedded.stop();
      }
    }
  } finally {
    await server.stop();
  }
  return figures;
}

import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { freePort, startRedis } from '../support/redis-server.js';

/**
 * Issue 17, bug 1: a failed start used to print a raw stack trace, set exitCode = 1 and stay alive (worker threads,
 * the gRPC server, a Redis client), listening on nothing. Each case spawns the real CLI and asserts: it exits by
 * itself, with code 1, within seconds, and its last stdout line is the one structured failure line.
 */
describe('kv-indexer serve: start-up failures exit with one structured line', () => {
  let busy: Server;
  let busyPort: number;

  beforeAll(async () => {
    busyPort = await freePort();
    busy = createServer();
    await new Promise<void>((resolve) => busy.listen(busyPort, '127.0.0.1', resolve));
  });
  afterAll(() => new Promise<void>((resolve) => busy.close(() => resolve())));

  /** A serve command on free ports with `overrides` (--set flags), expected to fail. */
  async function failingServe(overrides: string[], env: NodeJS.ProcessEnv = {}) {
    const grpcPort = await freePort();
    const flags = [
      'serve',
      '--set',
      `api.grpcAddress=127.0.0.1:${grpcPort}`,
      '--set',
      'metrics.host=127.0.0.1',
      '--set',
      'metrics.port=0',
      '--set',
      'zmq.addresses=[]',
    ];
    for (const o of overrides) flags.push('--set', o);
    const result = await runCli(flags, env, 25_000);
    const last = result.logs.at(-1) as Record<string, unknown>;
    return { ...result, last };
  }

  function expectFailureLine(last: Record<string, unknown>, setting: string, msg: string, error: string) {
    expect(last).toMatchObject({ level: 60, name: 'kv-indexer', setting, error, msg });
    expect(Object.keys(last).sort()).toEqual(['error', 'hostname', 'level', 'msg', 'name', 'pid', 'setting', 'time']);
  }

  it('metrics port already taken', async () => {
    const r = await failingServe([`metrics.port=${busyPort}`]);
    expect(r.signal).toBeNull(); // it exited by itself (not killed by the timeout)
    expect(r.code).toBe(1);
    expect(r.ms).toBeLessThan(15_000);
    expectFailureLine(
      r.last,
      'metrics.port',
      `start-up failed: metrics.port 127.0.0.1:${busyPort}: address in use`,
      'address in use',
    );
    expect(r.stderr).not.toMatch(/EADDRINUSE|at Server/); // no raw stack trace
  });

  it('gRPC port already taken', async () => {
    const r = await failingServe([`api.grpcAddress=127.0.0.1:${busyPort}`]);
    expect([r.signal, r.code]).toEqual([null, 1]);
    expectFailureLine(
      r.last,
      'api.grpcAddress',
      `start-up failed: api.grpcAddress 127.0.0.1:${busyPort}: address in use`,
      'address in use',
    );
  });

  it('ZMQ bind port already taken (the failing address is named)', async () => {
    const free = await freePort();
    const r = await failingServe([`zmq.addresses=["tcp://127.0.0.1:${free}", "tcp://127.0.0.1:${busyPort}"]`]);
    expect([r.signal, r.code]).toEqual([null, 1]);
    expectFailureLine(
      r.last,
      'zmq.addresses',
      `start-up failed: zmq.addresses tcp://127.0.0.1:${busyPort}: address in use`,
      'address in use',
    );
  });

  // api.processes: the serving processes start in the primary's cluster; a failure in any of them, or in the
  // primary's own sockets, is the same one line naming the setting, and nothing stays running.
  it.each([
    ['api.grpcAddress', (busy: number) => `api.grpcAddress=127.0.0.1:${busy}`, (busy: number) => `127.0.0.1:${busy}`],
    ['metrics.port', (busy: number) => `metrics.port=${busy}`, (busy: number) => `127.0.0.1:${busy}`],
    [
      'zmq.addresses',
      (busy: number) => `zmq.addresses=["tcp://127.0.0.1:${busy}"]`,
      (busy: number) => `tcp://127.0.0.1:${busy}`,
    ],
  ])('api.processes=2: %s taken', async (setting, flag, value) => {
    const r = await failingServe(['api.processes=2', flag(busyPort)]);
    expect([r.signal, r.code]).toEqual([null, 1]);
    expectFailureLine(
      r.last,
      setting,
      `start-up failed: ${setting} ${value(busyPort)}: address in use`,
      'address in use',
    );
    // The failure line is the only error: the serving processes do not report their own.
    expect(r.logs.filter((l) => Number(l.level) >= 50)).toEqual([r.last]);
  });

  it('Redis down with a model registry loaded (tokenizer worker threads must not keep it alive)', async () => {
    const dead = await freePort(); // nothing listens there
    const r = await failingServe([
      'index.backend=redis',
      `index.redisUrl=redis://127.0.0.1:${dead}`,
      'models.registry=fixtures/models/demo.yaml',
    ]);
    expect([r.signal, r.code]).toEqual([null, 1]);
    expect(r.logs.some((l) => l.msg === 'models loaded')).toBe(true); // the workers were running
    expectFailureLine(
      r.last,
      'index.redisUrl',
      `start-up failed: index.redisUrl redis://127.0.0.1:${dead}: connection refused`,
      'connection refused',
    );
  });

  it("Redis with an allkeys-* maxmemory-policy: refused, the reason names Redis's setting first", async () => {
    // Issue 17 bug 2: allkeys-lru may evict the endpoint-id registry (RedisIndex.open refuses it). The failure line
    // names our setting that says which Redis (index.redisUrl) and, first in the reason, Redis's setting to change.
    const redis = await startRedis({ args: ['--maxmemory-policy', 'allkeys-lru'] });
    try {
      const r = await failingServe(['index.backend=redis', `index.redisUrl=${redis.url}`]);
      expect([r.signal, r.code]).toEqual([null, 1]);
      const reason =
        'maxmemory-policy allkeys-lru is unsafe: Redis may evict the endpoint-id registry and the leases, and then credit one ' +
        "pod's cached blocks to another; set maxmemory-policy to noeviction, or volatile-lru with index.redisEntryTtlMs > 0 " +
        'so that only block keys carry a TTL (docs/redis.md, "Eviction")';
      expectFailureLine(r.last, 'index.redisUrl', `start-up failed: index.redisUrl ${redis.url}: ${reason}`, reason);
      expect(redis.cli('CONFIG', 'GET', 'maxmemory-policy')).toContain('allkeys-lru'); // the service changed nothing
      expect(redis.cli('DBSIZE').trim()).toBe('0');
    } finally {
      await redis.stop();
    }
  });

  it('a bad setting names the setting', async () => {
    const r = await failingServe(['keys.blockSize=0']);
    expect([r.signal, r.code]).toEqual([null, 1]);
    expectFailureLine(
      r.last,
      'keys.blockSize',
      'start-up failed: keys.blockSize: Too small: expected number to be >=1',
      'keys.blockSize: Too small: expected number to be >=1',
    );
  });

  it('a bad images.fetch setting names the whole key (three levels deep)', async () => {
    const r = await failingServe(['images.fetch={"maxBytes":0}']);
    expect([r.signal, r.code]).toEqual([null, 1]);
    const error = 'images.fetch.maxBytes: Too small: expected number to be >=1';
    expectFailureLine(r.last, 'images.fetch.maxBytes', `start-up failed: ${error}`, error);
  });

  it('a bad discovery setting and a bad discovery endpoint spec name their setting', async () => {
    const r = await failingServe(['discovery.intervalMs=1']);
    expect([r.signal, r.code]).toEqual([null, 1]);
    const error = 'discovery.intervalMs: Too small: expected number to be >=10';
    expectFailureLine(r.last, 'discovery.intervalMs', `start-up failed: ${error}`, error);
    const s = await failingServe(['endpoints.static=["http://10.0.0.5:8000;ranks=2"]']);
    expect([s.signal, s.code]).toEqual([null, 1]);
    expect(s.last).toMatchObject({ level: 60, name: 'kv-indexer', setting: 'endpoints.static' });
    expect(s.last.msg).toBe(
      'start-up failed: endpoints.static http://10.0.0.5:8000;ranks=2: endpoint http://10.0.0.5:8000: ranks are listed by the discovery URL, not configured',
    );
  });

  it('a model registry that cannot be read names models.registry', async () => {
    const r = await failingServe(['models.registry=/nonexistent/registry.yaml']);
    expect([r.signal, r.code]).toEqual([null, 1]);
    expect(r.last).toMatchObject({ level: 60, setting: 'models.registry' });
    expect(String(r.last.msg)).toMatch(/^start-up failed: models\.registry \/nonexistent\/registry\.yaml: /);
  });
});

import { encode } from '@msgpack/msgpack';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { relaySocketPrefix } from '../../src/api/index.js';
import { SimPublisher } from '../../src/sim/publisher/publisher.js';
import { REPO, runCli, spawnCli, type CliRun } from '../support/cli.js';
import { grpcClient } from '../support/grpc-client.js';
import { freePort } from '../support/redis-server.js';
import { tokenRange, waitFor, waitForAsync } from '../support/zmq.js';

const MODEL = 'Qwen/Qwen3-8B';
/** Publishes to the service's bound socket (zmq.mode bind): the primary relays it to both processes. */
const BOUND = '10.0.2.1:8000';
/** A publisher the service connects to once AddEndpoint names it (through one process, replicated to the other). */
const ADDED = '10.0.2.2:8000';
const CLIENTS = 4;

type Log = Record<string, unknown> & { msg?: string; worker?: number; level?: number };

/** What the primary logs once it serves ("API serving", no `worker` field). */
interface Primary {
  grpcPort: number;
  metricsPort: number;
  pids: number[];
}

/** `serve` with api.processes=2 on ephemeral ports and `settings` (--set values); resolves once the primary serves. */
async function spawnProcesses(settings: string[]): Promise<{ run: CliRun; logs: () => Log[]; primary: Primary }> {
  const flags = ['api.processes=2', 'api.grpcAddress=127.0.0.1:0', 'metrics.host=127.0.0.1', 'metrics.port=0'];
  const run = spawnCli(['serve', ...[...flags, ...settings].flatMap((s) => ['--set', s])]);
  const logs = () => run.logs as Log[];
  const line = () => logs().find((l) => l.msg === 'API serving' && l.worker === undefined);
  await waitFor(() => line() !== undefined || run.child.exitCode !== null, 'the primary to serve', 60_000);
  return { run, logs, primary: line() as unknown as Primary };
}

const batch = (events: unknown[]) => encode([1_763_700_000, events, null], { useBigInt64: true });
/** A chain of `blocks` blocks (16 tokens each) over tokens 1 … 16·blocks, engine hashes from `base`. */
const chain = (blocks: number, base: number) => [
  'BlockStored',
  Array.from({ length: blocks }, (_, i) => BigInt(base + i)),
  null,
  tokenRange(blocks * 16),
  16,
  null,
  null,
];

/** `name{…label="value"…}` samples of one family on a /metrics page, by the value of `label`. */
function samples(text: string, name: string, where: string, label: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) || !line.includes(where)) continue;
    const value = new RegExp(`${label}="([^"]*)"`).exec(line)?.[1];
    if (value !== undefined) out.set(value, Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return out;
}

/**
 * Issue 16, serving processes: the real CLI with api.processes = 2 (node:cluster), a publisher on its bound socket
 * (relayed by the primary) and one added at runtime through one process. Every replica must hold the same blocks;
 * the primary's /metrics shows each process's series; a killed process fails only its own calls (UNAVAILABLE) and is
 * replaced, and the replacement follows the endpoints added before it started; SIGTERM drains every process.
 */
describe('kv-indexer serve with api.processes=2', () => {
  let run: CliRun;
  let bindAddress: string;
  let metricsPort: number;
  let grpcAddress: string;
  let pids: number[];
  let bound: SimPublisher;
  let added: SimPublisher;
  const clients: ReturnType<typeof grpcClient>[] = [];
  const logs = () => run.logs as Log[];
  const metrics = async () => (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const score = async (client: ReturnType<typeof grpcClient>, endpoint: string, blocks: number, tokens = blocks * 16) =>
    (
      (await client.call('Score', {
        model: MODEL,
        tokens: { tokenIds: tokenRange(tokens) },
        candidates: [endpoint],
      })) as { scores: { matchedBlocks: number }[] }
    ).scores[0].matchedBlocks;
  const applied = async (endpoint: string) =>
    samples(await metrics(), 'kv_indexer_endpoint_batches_applied_total', `endpoint="${endpoint}"`, 'worker');

  beforeAll(async () => {
    bindAddress = `tcp://127.0.0.1:${await freePort()}`;
    const started = await spawnProcesses(['zmq.mode=bind', `zmq.addresses=["${bindAddress}"]`]);
    run = started.run;
    const serving = started.primary;
    grpcAddress = `127.0.0.1:${serving.grpcPort}`;
    metricsPort = serving.metricsPort;
    pids = serving.pids;
    // Distinct channel options: a connection each, which node:cluster hands to the processes in turn.
    for (let i = 0; i < CLIENTS; i++)
      clients.push(
        grpcClient(
          grpcAddress,
          'kvindexer/v1/kvindexer.proto',
          'kvindexer.v1.KvIndexer',
          undefined,
          {},
          {
            'grpc.primary_user_agent': `client-${i}`,
          },
        ),
      );
    // Connected one after another, before any other connection: node:cluster hands them to the processes in turn.
    for (const client of clients) await client.call('GetInfo', {});
    bound = new SimPublisher({ topic: `kv@${BOUND}@${MODEL}`, endpoint: bindAddress });
    await bound.start();
    added = new SimPublisher({
      topic: `kv@${ADDED}@${MODEL}`,
      endpoint: 'tcp://127.0.0.1:*',
      replayEndpoint: 'tcp://127.0.0.1:*',
    });
    await added.start();
  }, 90_000);

  afterAll(async () => {
    for (const c of clients) c.close();
    if (run.child.exitCode === null) run.child.kill('SIGKILL');
    await bound?.close();
    await added?.close();
  });

  it('starts two serving processes on one gRPC port, ready on every probe', async () => {
    expect(pids).toHaveLength(2);
    expect(new Set(pids).size).toBe(2);
    expect(
      logs()
        .filter((l) => l.msg === 'serving process started')
        .map((l) => l.worker),
    ).toEqual(expect.arrayContaining([0, 1]));
    // The test's connections are spread over both processes (each counts its own on the primary's /metrics).
    expect(samples(await metrics(), 'kv_indexer_grpc_connections', '', 'worker')).toEqual(
      new Map([
        ['0', CLIENTS / 2],
        ['1', CLIENTS / 2],
      ]),
    );
    const health = await fetch(`http://127.0.0.1:${metricsPort}/healthz`);
    expect(health.status).toBe(200);
    for (const client of clients) {
      const h = grpcClient(grpcAddress, 'grpc/health/v1/health.proto', 'grpc.health.v1.Health');
      expect(await h.call('Check', { service: 'readiness' })).toEqual({ status: 'SERVING' });
      h.close();
      expect(await client.call('GetInfo', {})).toMatchObject({ backend: 'memory', fingerprint: { blockSize: 16 } });
    }
    const text = await metrics();
    expect(text).toMatch(/^kv_indexer_serving_processes 2$/m);
    expect(text).toMatch(/^kv_indexer_serving_process_restarts_total 0$/m);
    // One HELP per family although both processes expose it.
    expect(text.split('\n').filter((l) => l.startsWith('# HELP kv_indexer_blocks_total '))).toHaveLength(1);
  });

  it('relays the bound socket to every replica: both hold the chain, every connection scores it', async () => {
    // Empty batches until both processes have one (ZMQ's slow joiner), then a chain of 4 blocks.
    await waitForAsync(
      async () => {
        await bound.publish(batch([]));
        return [...(await applied(BOUND)).values()].filter((n) => n > 0).length === 2;
      },
      'the bound publisher to reach both processes',
      15_000,
    );
    await bound.publish(batch([chain(4, 1000)]));
    await waitForAsync(
      async () => {
        const stored = samples(await metrics(), 'kv_indexer_blocks_total', 'op="stored"', 'worker');
        return stored.get('0') === 4 && stored.get('1') === 4;
      },
      'both replicas to store the 4 blocks',
      10_000,
    );
    for (const client of clients) expect(await score(client, BOUND, 4)).toBe(4);
  });

  it('applies AddEndpoint and ClearEndpoint on every replica, whichever process served the call', async () => {
    await clients[0].call('AddEndpoint', {
      endpoint: ADDED,
      zmqAddress: added.pubAddress,
      replayAddress: added.replayAddress,
    });
    // Both processes subscribed before the call was answered: the first batch reaches both (replay fills any gap).
    await waitForAsync(
      async () => {
        await added.publish(batch([]));
        return [...(await applied(ADDED)).values()].filter((n) => n > 0).length === 2;
      },
      'the added publisher to reach both processes',
      15_000,
    );
    await added.publish(batch([chain(3, 2000)]));
    await waitForAsync(
      async () => {
        const held = await Promise.all(clients.map((c) => score(c, ADDED, 3)));
        return held.every((n) => n === 3);
      },
      'every connection to score the added endpoint',
      10_000,
    );
    expect(await clients[1].call('ClearEndpoint', { endpoint: ADDED })).toEqual({ clearedEntries: '3' });
    // Answered once every replica applied it: no connection sees the blocks any more.
    for (const client of clients) expect(await score(client, ADDED, 3)).toBe(0);
    await added.publish(batch([chain(3, 2000)]));
    await waitForAsync(
      async () => (await Promise.all(clients.map((c) => score(c, ADDED, 3)))).every((n) => n === 3),
      'the added endpoint republished',
      10_000,
    );
  });

  it('applies Reserve, Score.speculate and Release on every replica (speculative entries), with the caller’s address', async () => {
    const SPECULATED = '10.0.2.9:8000';
    const { blockKeys } = (await clients[0].call('ComputeBlockKeys', {
      model: MODEL,
      tokens: { tokenIds: tokenRange(5 * 16) },
    })) as { blockKeys: string[] };
    expect(blockKeys).toHaveLength(5);
    const speculative = async (client: ReturnType<typeof grpcClient>) =>
      (
        (await client.call('Score', {
          model: MODEL,
          tokens: { tokenIds: tokenRange(5 * 16) },
          candidates: [SPECULATED],
        })) as { scores: { speculativeBlocks: number }[] }
      ).scores[0].speculativeBlocks;
    expect(await clients[0].call('Reserve', { endpoint: SPECULATED, blockKeys, ttlMs: 60_000 })).toEqual({
      reservedBlocks: 5,
    });
    for (const client of clients) expect(await speculative(client)).toBe(5);
    expect(await clients[1].call('Release', { endpoint: SPECULATED, blockKeys })).toEqual({ releasedBlocks: 5 });
    for (const client of clients) expect(await speculative(client)).toBe(0);
    // Score's own `speculate` field: the entries reach every replica too, and a Release through another process
    // takes them back everywhere.
    await clients[1].call('Score', {
      model: MODEL,
      tokens: { tokenIds: tokenRange(5 * 16) },
      candidates: [SPECULATED],
      speculate: { endpoint: SPECULATED, ttlMs: 60_000 },
    });
    for (const client of clients) expect(await speculative(client)).toBe(5);
    // A prompt shorter than a block speculates nothing, and is answered as by one process.
    const short = (await clients[1].call('Score', {
      model: MODEL,
      tokens: { tokenIds: tokenRange(3) },
      candidates: [SPECULATED],
      speculate: { endpoint: SPECULATED, ttlMs: 60_000 },
    })) as { totalBlocks: number; tokenCount: number };
    expect([short.totalBlocks, short.tokenCount]).toEqual([0, 3]);
    expect(await clients[0].call('Release', { endpoint: SPECULATED, blockKeys })).toEqual({ releasedBlocks: 5 });
    for (const client of clients) expect(await speculative(client)).toBe(0);
  });

  it('keeps one Select ledger for all processes and its speculative entries in every replica: a reservation made on one connection is load, completed and released on another', async () => {
    // clients[0] and clients[1] reach different processes (the first test checks the spread).
    const PICKED = '10.0.3.1:8000';
    const select = {
      model: MODEL,
      tokens: { tokenIds: tokenRange(64) },
      candidates: [PICKED],
      expectedOutputTokens: 160,
    };
    const inflight = async (client: ReturnType<typeof grpcClient>) => {
      const r = (await client.call('Select', select)) as {
        candidates: { inflightPrefillTokens: string; inflightDecodeBlocks: string }[];
      };
      return [r.candidates[0].inflightPrefillTokens, r.candidates[0].inflightDecodeBlocks];
    };
    const made = (await clients[0].call('Select', { ...select, reserve: true })) as {
      endpoint: string;
      reservationId: string;
    };
    expect(made.endpoint).toBe(PICKED);
    expect(made.reservationId).toMatch(/^[0-9a-f]{32}$/);
    // Its speculative entries (the 4 blocks of the prompt on the pick) are in every replica's index.
    for (const client of clients) {
      const scored = (await client.call('Score', {
        model: MODEL,
        tokens: { tokenIds: tokenRange(64) },
        candidates: [PICKED],
      })) as { scores: { matchedBlocks: number; speculativeBlocks: number }[] };
      expect(scored.scores[0]).toMatchObject({ matchedBlocks: 4, speculativeBlocks: 4 });
    }
    // 64 tokens not cached anywhere, 160 output tokens = 10 blocks of 16: the same load seen through either process.
    for (const client of clients) expect(await inflight(client)).toEqual(['64', '10']);
    expect(await clients[1].call('PrefillComplete', { reservationId: made.reservationId })).toMatchObject({
      endpoint: PICKED,
    });
    for (const client of clients) expect(await inflight(client)).toEqual(['0', '10']);
    expect(await clients[1].call('ReleaseReservation', { reservationId: made.reservationId })).toEqual({
      endpoint: PICKED,
      prefillCompleted: true,
    });
    for (const client of clients) expect(await inflight(client)).toEqual(['0', '0']);
    const again = await clients[0].call('ReleaseReservation', { reservationId: made.reservationId }).then(
      () => null,
      (err: { code: number }) => err.code,
    );
    expect(again).toBe(5); // NOT_FOUND: released through the other process
  });

  it('replaces a killed process: only its calls fail, UNAVAILABLE; the replacement follows the added endpoint', async () => {
    const victim = pids[0];
    const outcomes: number[] = [];
    let running = true;
    // Long prompts (32k tokens, a few ms of work each), 4 in flight per connection: calls are on the wire at the kill.
    const loops = Array.from({ length: CLIENTS * 4 }, (_, i) => i).map(async (i) => {
      const client = clients[i % CLIENTS];
      while (running) {
        outcomes.push(
          await score(client, BOUND, 4, 32_768).then(
            (matched) => (matched === 4 ? 0 : -matched - 100),
            (err: { code?: number }) => err.code ?? -1,
          ),
        );
      }
    });
    await waitFor(() => outcomes.length >= 200, '200 calls answered before the kill', 20_000);
    process.kill(victim, 'SIGKILL');
    // While the replacement starts, a replicated write is answered by the processes that serve (none waits for the
    // one still loading): OK, or UNAVAILABLE on a connection that was the killed process's.
    const { blockKeys } = (await clients[0]
      .call('ComputeBlockKeys', {
        model: MODEL,
        tokens: { tokenIds: tokenRange(32) },
      })
      .catch(() => clients[1].call('ComputeBlockKeys', { model: MODEL, tokens: { tokenIds: tokenRange(32) } }))) as {
      blockKeys: string[];
    };
    const reserves = await Promise.all(
      clients.map((c) =>
        c.call('Reserve', { endpoint: '10.0.2.8:8000', blockKeys, ttlMs: 1_000 }, 3_000).then(
          (r) => JSON.stringify(r),
          (err: { code?: number }) => `code ${err.code}`,
        ),
      ),
    );
    expect(reserves.filter((r) => r !== '{"reservedBlocks":2}' && r !== 'code 14')).toEqual([]);
    expect(reserves).toContain('{"reservedBlocks":2}');
    await waitFor(
      () => logs().some((l) => l.msg === 'serving process replaced: serving again'),
      'the replacement to serve',
      30_000,
    );
    running = false;
    await Promise.all(loops);
    // Calls on the killed process's connections failed UNAVAILABLE; every other call was answered in full (the
    // replacement's index starts empty, so once clients reconnect to it the bound chain may be missing: -100).
    expect(outcomes.filter((c) => c !== 0 && c !== 14 && c !== -100)).toEqual([]);
    expect(outcomes.filter((c) => c === 14).length).toBeGreaterThan(0);
    const exited = logs().find((l) => l.msg?.startsWith('serving process exited')) as Log & { pid: number };
    expect(exited).toMatchObject({ worker: 0, pid: victim, signal: 'SIGKILL', level: 50 });
    expect(await fetch(`http://127.0.0.1:${metricsPort}/healthz`).then((r) => r.status)).toBe(200);
    const text = await metrics();
    expect(text).toMatch(/^kv_indexer_serving_process_restarts_total 1$/m);
    expect(text).toMatch(/^kv_indexer_serving_processes 2$/m);
    // The replacement replayed AddEndpoint: it follows ADDED (replayed from the publisher's ROUTER from seq 0).
    await waitForAsync(
      async () => {
        await added.publish(batch([]));
        return ((await applied(ADDED)).get('0') ?? 0) > 0;
      },
      'the replacement to follow the added endpoint',
      15_000,
    );
    // Its index holds what it replayed of ADDED (3 entries) and nothing of BOUND (no replay socket, empty at start);
    // the other process keeps both.
    await waitForAsync(
      async () => {
        const entries = samples(await metrics(), 'kv_indexer_index_entries', '', 'worker');
        return entries.get('0') === 3 && entries.get('1') === 7;
      },
      'the replacement to hold the added endpoint’s 3 entries',
      15_000,
    );
  }, 60_000);

  it('drains every process on SIGTERM and exits 0', async () => {
    run.child.kill('SIGTERM');
    const { code } = await run.exit;
    expect(code).toBe(0);
    const drained = logs().filter((l) => l.msg === 'gRPC calls drained');
    expect(drained.map((l) => l.worker).sort()).toEqual([0, 1]);
    expect(logs().at(-1)).toMatchObject({ msg: 'stopped' });
    const all = [
      ...pids,
      ...logs()
        .filter((l) => l.msg === 'serving process started')
        .map((l) => l.pid as number),
    ];
    for (const pid of all) expect(() => process.kill(pid, 0)).toThrow();
    // No relay socket file is left behind, the killed process's included.
    expect(readdirSync(tmpdir()).filter((n) => all.some((pid) => n.startsWith(relaySocketPrefix(pid))))).toEqual([]);
    expect(run.stderr()).toBe('');
  });
});

describe('api.processes with a shape it cannot serve', () => {
  it('refuses index.backend redis at start-up, naming the setting', async () => {
    const r = await runCli(['serve', '--set', 'api.processes=2', '--set', 'index.backend=redis']);
    expect(r.code).toBe(1);
    expect(r.logs).toHaveLength(1);
    expect(r.logs[0]).toMatchObject({ level: 60, setting: 'api.processes' });
    expect(String(r.logs[0].error)).toMatch(/needs index.backend memory/);
  });
});

describe('api.processes: a replacement that cannot start', () => {
  it('is retried with backoff; after 5 failed starts every process reports liveness NOT_SERVING; it returns once one serves', async () => {
    // The admin token file is read at each process's start: gone, every replacement fails (api.adminTokenFile).
    const dir = mkdtempSync(join(tmpdir(), 'kvi-processes-'));
    const token = join(dir, 'token');
    writeFileSync(token, 'a-token-of-twenty-chars\n');
    const { run, logs, primary: serving } = await spawnProcesses(['zmq.addresses=[]', `api.adminTokenFile=${token}`]);
    let health: ReturnType<typeof grpcClient> | null = null;
    try {
      const client = grpcClient(
        `127.0.0.1:${serving.grpcPort}`,
        'grpc/health/v1/health.proto',
        'grpc.health.v1.Health',
      );
      health = client;
      // A probe on the killed process's connection fails; the next one reconnects to a live process.
      const check = (service: string) =>
        client.call('Check', { service }).then(
          (r) => (r as { status: string }).status,
          (err: { code?: number }) => `error ${err.code}`,
        );
      const healthz = () => fetch(`http://127.0.0.1:${serving.metricsPort}/healthz`).then((r) => r.status);
      expect(await check('readiness')).toBe('SERVING');
      rmSync(token);
      process.kill(serving.pids[1], 'SIGKILL');
      // The survivor answers every probe with the fleet's state: not ready while a process is missing, alive until
      // five replacements in a row failed.
      await waitForAsync(async () => (await check('readiness')) === 'NOT_SERVING', 'readiness to go', 10_000);
      expect(await check('liveness')).toBe('SERVING');
      expect(await healthz()).toBe(503);
      await waitForAsync(async () => (await check('liveness')) === 'NOT_SERVING', 'liveness to be given up', 60_000);
      const failures = logs().filter((l) => l.msg === 'serving process failed to start');
      expect(failures.length).toBeGreaterThanOrEqual(5);
      expect(failures[0]).toMatchObject({ worker: 1, level: 50 });
      expect(String(failures[0].err)).toMatch(/api\.adminTokenFile/);
      // The file is back: the next attempt serves; liveness and readiness return.
      writeFileSync(token, 'a-token-of-twenty-chars\n');
      await waitForAsync(async () => (await check('readiness')) === 'SERVING', 'a replacement to serve', 60_000);
      expect(await check('liveness')).toBe('SERVING');
      expect(await healthz()).toBe(200);
      run.child.kill('SIGTERM');
      expect((await run.exit).code).toBe(0);
    } finally {
      health?.close();
      if (run.child.exitCode === null) run.child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});

describe('api.processes: the primary killed', () => {
  // node:cluster ends a worker whose primary is gone at once (no drain; in a pod the container ends with its primary).
  it('its serving processes exit by themselves, leaving no relay socket file', async () => {
    const { run, primary } = await spawnProcesses(['zmq.addresses=[]']);
    try {
      const { pids } = primary;
      const alive = (pid: number) => {
        try {
          process.kill(pid, 0);
          return true;
        } catch {
          return false;
        }
      };
      expect(pids.map(alive)).toEqual([true, true]);
      run.child.kill('SIGKILL');
      await waitFor(() => !pids.some(alive), 'the serving processes to exit', 20_000);
      expect(readdirSync(tmpdir()).filter((n) => pids.some((pid) => n.startsWith(relaySocketPrefix(pid))))).toEqual([]);
    } finally {
      if (run.child.exitCode === null) run.child.kill('SIGKILL');
    }
  }, 60_000);
});

describe('api.processes: SIGTERM while a replacement is still loading', () => {
  it('stops it too (what the primary sent waits for its handler) and exits 0, nobody killed', async () => {
    const { run, logs, primary } = await spawnProcesses(['zmq.addresses=[]']);
    try {
      const { pids } = primary;
      process.kill(pids[0], 'SIGKILL');
      // The replacement is forked after 100 ms and takes about a second to load: SIGTERM lands in between.
      await waitFor(() => logs().some((l) => l.msg?.startsWith('serving process exited')), 'the exit seen', 10_000);
      await new Promise((r) => setTimeout(r, 300));
      run.child.kill('SIGTERM');
      const { code } = await run.exit;
      expect(code).toBe(0);
      // One error (the kill); nobody killed at shutdown; the survivor and the replacement both stopped.
      expect(
        logs()
          .filter((l) => (l.level ?? 0) >= 50)
          .map((l) => l.msg),
      ).toEqual([expect.stringMatching(/^serving process exited/)]);
      expect(logs().filter((l) => l.msg === 'serving process did not stop: killed')).toEqual([]);
      expect(
        logs().filter((l) => l.msg === 'serving process stopping: draining gRPC, then closing sockets'),
      ).toHaveLength(2);
      expect(logs().at(-1)).toMatchObject({ msg: 'stopped' });
    } finally {
      if (run.child.exitCode === null) run.child.kill('SIGKILL');
    }
  }, 60_000);
});

describe('api.processes: Ctrl-C during start-up (SIGINT to the whole process group)', () => {
  it('stops every process; none is taken for a crash and replaced; exit 0', async () => {
    // Its own process group, as a shell gives a foreground job: the signal reaches the primary and its processes.
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'src/cli/main.ts',
        'serve',
        ...['zmq.addresses=[]', 'api.processes=2', 'api.grpcAddress=127.0.0.1:0', 'metrics.port=0'].flatMap((s) => [
          '--set',
          s,
        ]),
      ],
      {
        cwd: REPO,
        env: { ...process.env, KV_INDEXER_STATS_INTERVAL_SECONDS: '0' },
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const logs: Log[] = [];
    createInterface({ input: child.stdout! }).on('line', (line) => logs.push(JSON.parse(line) as Log));
    const exit = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    try {
      // Both processes are starting (each has opened its write path); the primary has not served yet.
      await waitFor(() => logs.filter((l) => l.msg === 'kv-indexer started').length >= 1, 'a process starting', 60_000);
      process.kill(-child.pid!, 'SIGINT');
      expect(await exit).toBe(0);
      expect(logs.filter((l) => (l.level ?? 0) >= 50)).toEqual([]);
      // A process still loading when the signal came may have ended by it; no process was replaced either way.
      expect(logs.filter((l) => l.msg === 'serving process replaced: serving again')).toEqual([]);
      expect(logs.at(-1)).toMatchObject({ msg: 'stopped' });
    } finally {
      if (child.exitCode === null) process.kill(-child.pid!, 'SIGKILL');
    }
  }, 60_000);
});

/**
 * Real redis-server processes for tests: a single server or a 3-master Redis Cluster, each on free 127.0.0.1 ports,
 * without persistence (`--save "" --appendonly no`). Every process started here is killed when the test process
 * exits, even when a test fails before its own cleanup runs.
 */

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) {
    child.kill('SIGKILL');
    child.kill('SIGCONT');
  }
});

export interface RedisServer {
  readonly port: number;
  readonly url: string;
  /** Kills the process (SIGKILL): clients see the connection drop. */
  kill(): Promise<void>;
  /** Freezes the process (SIGSTOP): connections stay open but nothing is answered — a "slow" Redis. */
  pause(): void;
  /** Undoes pause() (SIGCONT). */
  resume(): void;
  /** Starts a fresh, empty server on the same port (after kill()). */
  restart(): Promise<void>;
  /** Stops the process and removes its working directory. */
  stop(): Promise<void>;
  /** Runs redis-cli against this server and returns its stdout. */
  cli(...args: string[]): string;
}

export interface RedisCluster {
  readonly nodes: RedisServer[];
  readonly startupNodes: { host: string; port: number }[];
  stop(): Promise<void>;
}

/** A TCP port that is free now (and, with bus = true, port + 10000 as well, for the cluster bus). */
export async function freePort(bus = false): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await listenOnce(0);
    if (!bus) return port;
    if (port + 10_000 < 65_536 && (await canListen(port + 10_000))) return port;
  }
  throw new Error('no free port pair found');
}

function listenOnce(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(port, '127.0.0.1', () => {
      const addr = srv.address();
      const p = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(p));
    });
  });
}

async function canListen(port: number): Promise<boolean> {
  try {
    await listenOnce(port);
    return true;
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function cli(port: number, args: string[]): { ok: boolean; out: string } {
  const r = spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { encoding: 'utf8', timeout: 10_000 });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

async function waitFor(what: string, check: () => boolean, tries = 200): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (check()) return;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Starts one redis-server; cluster = true enables cluster mode (the node still needs `--cluster create`). */
export async function startRedis(options: { cluster?: boolean } = {}): Promise<RedisServer> {
  const port = await freePort(options.cluster);
  const dir = mkdtempSync(join(tmpdir(), 'kvi-redis-'));
  let child: ChildProcess | undefined;

  const launch = async () => {
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir];
    if (options.cluster) {
      args.push('--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--cluster-node-timeout', '2000');
    }
    const proc = spawn('redis-server', args, { stdio: 'ignore' });
    live.add(proc);
    proc.once('exit', () => live.delete(proc));
    child = proc;
    await waitFor(`redis-server on ${port}`, () => proc.exitCode === null && cli(port, ['ping']).out.includes('PONG'));
  };

  const kill = async () => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGKILL');
    proc.kill('SIGCONT');
    await exited;
  };

  await launch();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    kill,
    pause: () => void child?.kill('SIGSTOP'),
    resume: () => void child?.kill('SIGCONT'),
    restart: launch,
    async stop() {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
    cli: (...args: string[]) => cli(port, args).out,
  };
}

/** Three cluster-enabled masters (no replicas), slots assigned by `redis-cli --cluster create`. */
export async function startCluster(masters = 3): Promise<RedisCluster> {
  const nodes: RedisServer[] = [];
  const stop = async () => {
    await Promise.all(nodes.map((n) => n.stop()));
  };
  try {
    for (let i = 0; i < masters; i++) nodes.push(await startRedis({ cluster: true }));
    const create = spawnSync(
      'redis-cli',
      ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'],
      { encoding: 'utf8', timeout: 30_000 },
    );
    if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stdout}${create.stderr}`);
    await waitFor('cluster_state:ok on every node', () =>
      nodes.every((n) => n.cli('cluster', 'info').includes('cluster_state:ok')),
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return { nodes, startupNodes: nodes.map((n) => ({ host: '127.0.0.1', port: n.port })), stop };
}

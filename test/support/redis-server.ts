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
import type { TestPki } from './tls.js';

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

/** How a test server is locked: a password for the default user (`requirepass`), TLS with certificates of a test PKI. */
export interface RedisLocks {
  /** requirepass (and masterauth on cluster nodes). */
  password?: string;
  /** TLS only (no plaintext port), server certificate from this PKI; clients must present one of its certificates. */
  tls?: TestPki;
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

/** redis-cli flags that get through the locks (the default user's password, the test PKI's client certificate). */
function cliLocks(locks: RedisLocks): string[] {
  const out: string[] = [];
  if (locks.password) out.push('-a', locks.password, '--no-auth-warning');
  if (locks.tls)
    out.push('--tls', '--cacert', locks.tls.caCert, '--cert', locks.tls.clientCert, '--key', locks.tls.clientKey);
  return out;
}

function cli(port: number, args: string[], locks: RedisLocks = {}): { ok: boolean; out: string } {
  const r = spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...cliLocks(locks), ...args], {
    encoding: 'utf8',
    timeout: 10_000,
  });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

async function waitFor(what: string, check: () => boolean, tries = 200): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (check()) return;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * Starts one redis-server; cluster = true enables cluster mode (the node still needs `--cluster create`); `args` are
 * further redis-server arguments (e.g. `['--maxmemory-policy', 'allkeys-lru']`).
 */
export async function startRedis(
  options: { cluster?: boolean; args?: string[] } & RedisLocks = {},
): Promise<RedisServer> {
  const locks: RedisLocks = { password: options.password, tls: options.tls };
  const port = await freePort(options.cluster);
  const dir = mkdtempSync(join(tmpdir(), 'kvi-redis-'));
  let child: ChildProcess | undefined;

  const launch = async () => {
    const args = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir];
    if (locks.tls) {
      const pki = locks.tls;
      args.push(
        '--port',
        '0',
        '--tls-port',
        String(port),
        '--tls-cert-file',
        pki.serverCert,
        '--tls-key-file',
        pki.serverKey,
        '--tls-ca-cert-file',
        pki.caCert,
      );
      // The cluster bus is TLS too; a node connecting to another presents the PKI's client certificate.
      if (options.cluster)
        args.push(
          '--tls-cluster',
          'yes',
          '--tls-replication',
          'yes',
          '--tls-client-cert-file',
          pki.clientCert,
          '--tls-client-key-file',
          pki.clientKey,
        );
    } else {
      args.push('--port', String(port));
    }
    if (locks.password) args.push('--requirepass', locks.password, '--masterauth', locks.password);
    if (options.cluster) {
      args.push(
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        `nodes-${port}.conf`,
        '--cluster-node-timeout',
        '2000',
      );
    }
    args.push(...(options.args ?? []));
    const proc = spawn('redis-server', args, { stdio: 'ignore' });
    live.add(proc);
    proc.once('exit', () => live.delete(proc));
    child = proc;
    await waitFor(
      `redis-server on ${port}`,
      () => proc.exitCode === null && cli(port, ['ping'], locks).out.includes('PONG'),
    );
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
    url: `${locks.tls ? 'rediss' : 'redis'}://127.0.0.1:${port}`,
    kill,
    pause: () => void child?.kill('SIGSTOP'),
    resume: () => void child?.kill('SIGCONT'),
    restart: launch,
    async stop() {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
    cli: (...args: string[]) => cli(port, args, locks).out,
  };
}

/** Three cluster-enabled masters (no replicas), slots assigned by `redis-cli --cluster create`. */
export async function startCluster(masters = 3, locks: RedisLocks = {}): Promise<RedisCluster> {
  const nodes: RedisServer[] = [];
  const stop = async () => {
    await Promise.all(nodes.map((n) => n.stop()));
  };
  try {
    for (let i = 0; i < masters; i++) nodes.push(await startRedis({ cluster: true, ...locks }));
    const create = spawnSync(
      'redis-cli',
      [
        ...cliLocks(locks),
        '--cluster',
        'create',
        ...nodes.map((n) => `127.0.0.1:${n.port}`),
        '--cluster-replicas',
        '0',
        '--cluster-yes',
      ],
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

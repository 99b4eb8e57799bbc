/**
 * The ioredis connection of the Redis index (a single server or a Cluster) with the index's scripts defined on it:
 * ioredis sends EVALSHA and falls back to EVAL on NOSCRIPT, so each script's body crosses the wire once per server.
 *
 * Fail fast: the offline queue is off, so while the connection is down a command rejects at once instead of queueing
 * (memory stays bounded, callers answer degraded); a command that takes longer than commandTimeoutMs rejects too.
 * Reconnects use exponential backoff (50 ms doubling to 2 s, with jitter), forever.
 *
 * Credentials and TLS: a single server takes them from its URL (redis://user:pass@…, rediss:// for TLS) and/or from
 * `username`, `password` and `tls`; cluster nodes only from the latter (ioredis `redisOptions`, applied to every node).
 * A failed first connection is reported with the server's reason (WRONGPASS, NOPERM, a TLS verification error) in a
 * fresh error: ioredis errors carry the failed command's arguments (AUTH/HELLO with the password), so none of them
 * is passed on.
 */

import { Cluster, Redis } from 'ioredis';
import { LOOKUP_LUA } from './lookup-script.js';
import { PREPARE_LUA } from './registry-script.js';
import { APPLY_LUA, STATS_LUA } from './scripts.js';

export type RedisArg = string | Buffer | number;

export interface RedisConnectionOptions {
  /** redis://[user:pass@]host:port[/db] of a single server. */
  url?: string;
  /** Startup nodes of a Redis Cluster (any subset of its nodes). */
  cluster?: readonly { host: string; port: number }[];
  /** Per-command deadline; default 1000 ms. */
  commandTimeoutMs?: number;
  /** Deadline for the initial connection; default 5000 ms. */
  connectTimeoutMs?: number;
  /** ACL user (Redis 6+); default: the URL's, else `default`. */
  username?: string;
  /** Password (AUTH); default: the URL's. */
  password?: string;
  /**
   * Where the password comes from when it can change (a rotated Secret): called before every reconnection, and a new
   * answer is what the connections made from then on authenticate with (an undefined answer or a throw keeps the
   * previous one). Connections already open stay authenticated, as Redis keeps them after a password change.
   */
  passwordSource?: () => string | undefined;
  /** TLS to the server(s) (also implied by a rediss:// URL): PEM CA bundle, client certificate and key (mutual TLS). */
  tls?: RedisTlsOptions;
}

export interface RedisTlsOptions {
  /** Trusted CAs for the server certificate; default: Node's built-in CAs. */
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

/** Errors whose message names why a connection was refused, in words that carry no secret. */
export function connectFailure(err: Error | undefined, fallback: Error): Error {
  // A cluster gives up with "Failed to refresh slots cache." and keeps the node's own reason beside it.
  const nodeError = (x: Error | undefined) => (x as { lastNodeError?: Error } | undefined)?.lastNodeError;
  const e = nodeError(err) ?? nodeError(fallback) ?? err ?? fallback;
  const code = (e as { code?: unknown }).code;
  if (/^(WRONGPASS|NOAUTH|NOPERM)\b/.test(e.message)) return new Error(`Redis refused the credentials: ${e.message}`);
  if (typeof code === 'string' && /SSL|TLS|CERT|UNABLE_TO_VERIFY|DEPTH_ZERO|HOSTNAME/.test(code)) {
    // OpenSSL's own messages ("8096…:error:0A00045C:SSL routines:…") say no more than their code.
    return new Error(
      `TLS handshake with Redis failed: ${e.message.includes(':error:') ? code : `${e.message} (${code})`}`,
    );
  }
  return new Error(e.message);
}

export function backoff(times: number): number {
  return Math.min(50 * 2 ** Math.min(times - 1, 6), 2000) + Math.floor(Math.random() * 50);
}

const SCRIPTS = {
  kviApply: APPLY_LUA,
  kviStats: STATS_LUA,
  kviLookup: LOOKUP_LUA,
  kviPrepare: PREPARE_LUA,
} as const;

type ScriptName = keyof typeof SCRIPTS;
type ScriptFn = (key: string | Buffer, ...args: RedisArg[]) => Promise<unknown>;

export class RedisConnection {
  readonly client: Redis | Cluster;
  readonly isCluster: boolean;
  private readonly calls: Record<ScriptName, ScriptFn>;
  private lastError: Error | undefined;
  private readonly passwordSource: (() => string | undefined) | null;

  constructor(options: RedisConnectionOptions) {
    const commandTimeout = options.commandTimeoutMs ?? 1000;
    const connectTimeout = options.connectTimeoutMs ?? 5000;
    const auth = {
      ...(options.username !== undefined ? { username: options.username } : {}),
      ...(options.password !== undefined ? { password: options.password } : {}),
      ...(options.tls ? { tls: { ...options.tls } } : {}),
      // No CLIENT SETINFO on connect: one command less for the ACL (docs/security.md), no NOPERM in the ACL LOG.
      disableClientInfo: true,
    };
    if (options.cluster && options.cluster.length > 0) {
      this.isCluster = true;
      this.client = new Cluster([...options.cluster], {
        lazyConnect: true,
        enableOfflineQueue: false,
        clusterRetryStrategy: (times: number) => this.retryDelay(times),
        scaleReads: 'master',
        redisOptions: { commandTimeout, connectTimeout, maxRetriesPerRequest: 1, ...auth },
      });
    } else {
      this.isCluster = false;
      // Settings in the URL win over these (ioredis), so a password is taken from one place: serve checks that.
      this.client = new Redis(options.url as string, {
        ...auth,
        lazyConnect: true,
        enableOfflineQueue: false,
        commandTimeout,
        connectTimeout,
        maxRetriesPerRequest: 1,
        retryStrategy: (times: number) => this.retryDelay(times),
      });
    }
    this.passwordSource = options.passwordSource ?? null;
    if (this.passwordSource && this.client instanceof Cluster) {
      // A cluster remakes a lost node's connection on its own (no clusterRetryStrategy call while the others are up):
      // each new node connection takes the current password before it connects.
      this.client.on('+node', (node: Redis) => {
        this.refreshPassword();
        const password = this.poolOptions()?.password;
        if (password !== undefined) node.options.password = password;
      });
    }
    // Without a listener ioredis would print connection errors; the index reports them through its own calls. The
    // last one tells why a first connection failed (ioredis rejects connect() with "Connection is closed").
    this.client.on('error', (err: Error) => {
      this.lastError = err;
    });
    const calls = {} as Record<ScriptName, ScriptFn>;
    for (const [name, lua] of Object.entries(SCRIPTS) as [ScriptName, string][]) {
      this.client.defineCommand(name, { numberOfKeys: 1, lua });
      const fn = (this.client as unknown as Record<string, ScriptFn>)[name];
      calls[name] = fn.bind(this.client);
    }
    this.calls = calls;
  }

  /** The options ioredis makes a cluster's node connections from (its connection pool's copy of redisOptions). */
  private poolOptions(): { password?: string } | undefined {
    return (this.client as unknown as { connectionPool?: { redisOptions?: { password?: string } } }).connectionPool
      ?.redisOptions;
  }

  /** The reconnection backoff, after taking up a changed password (see passwordSource). */
  private retryDelay(times: number): number {
    this.refreshPassword();
    return backoff(times);
  }

  /**
   * Asks passwordSource and, when the password changed, makes new connections use it: a single server's options, and
   * on a cluster the options new node connections are made from plus those of the nodes known now.
   */
  private refreshPassword(): void {
    if (!this.passwordSource) return;
    let password: string | undefined;
    try {
      password = this.passwordSource();
    } catch {
      return; // e.g. a Secret volume caught mid-update: the next reconnection asks again
    }
    if (password === undefined || password.length === 0) return;
    if (this.client instanceof Cluster) {
      // ioredis makes node connections from its connection pool's copy of redisOptions (an internal of ioredis 5–6;
      // test/integration/redis-locks.test.ts rotates a cluster's password to catch a change).
      const options = this.poolOptions();
      if (!options || options.password === password) return;
      options.password = password;
      (this.client.options.redisOptions ??= {}).password = password;
      for (const node of this.client.nodes()) node.options.password = password;
    } else {
      if (this.client.options.password === password) return;
      this.client.options.password = password;
    }
  }

  /** Connects; rejects with the server's or the TLS layer's reason (no ioredis error, no command arguments). */
  async connect(): Promise<void> {
    this.lastError = undefined;
    try {
      await this.client.connect();
    } catch (err) {
      throw connectFailure(this.lastError, err as Error);
    }
  }

  get ready(): boolean {
    return this.client.status === 'ready';
  }

  script(name: ScriptName, key: string | Buffer, ...args: RedisArg[]): Promise<unknown> {
    return this.calls[name](key, ...args);
  }

  hmget(key: string, ...fields: string[]): Promise<(string | null)[]> {
    return this.client.hmget(key, ...fields);
  }

  smembers(key: string): Promise<string[]> {
    return this.client.smembers(key);
  }

  /** Memory used by the server(s): used_memory summed over the masters. */
  async usedMemory(): Promise<number> {
    const nodes = this.client instanceof Cluster ? this.client.nodes('master') : [this.client];
    const infos = await Promise.all(nodes.map((n) => n.info('memory')));
    return infos.reduce((sum, info) => sum + Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0), 0);
  }

  /**
   * maxmemory-policy of every master, from INFO memory (already in the least-privilege ACL, unlike CONFIG GET, which
   * would also reveal the password); a server that does not report it is left out.
   */
  async evictionPolicies(): Promise<string[]> {
    const nodes = this.client instanceof Cluster ? this.client.nodes('master') : [this.client];
    const infos = await Promise.all(nodes.map((n) => n.info('memory')));
    return infos.flatMap((info) => /maxmemory_policy:(\S+)/.exec(info)?.[1] ?? []);
  }

  get(key: string): Promise<string | null> {
    return this.client.get(key);
  }

  del(key: string): Promise<number> {
    return this.client.del(key);
  }

  /** The server's run id (single server only): it changes when a server restarts, losing non-persisted data. */
  async runId(): Promise<string | undefined> {
    if (this.client instanceof Cluster) return undefined;
    const info = await this.client.info('server');
    return /run_id:(\w+)/.exec(info)?.[1];
  }

  async close(): Promise<void> {
    try {
      await this.client.quit();
    } catch {
      this.client.disconnect();
    }
  }
}

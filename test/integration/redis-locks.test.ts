import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { inspect } from 'node:util';
import type { Cluster } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi } from '../../src/service/start-api.js';
import { startService, type RunningService } from '../../src/service/start-service.js';
import { StartupError } from '../../src/service/startup-error.js';
import { RedisIndex } from '../../src/index/index.js';
import { ConfigError, ConfigSchema } from '../../src/ops/index.js';
import { runCli } from '../support/cli.js';
import { grpcClient } from '../support/grpc-client.js';
import { startCluster, startRedis, type RedisCluster, type RedisServer } from '../support/redis-server.js';
import { makeTestPki, type TestPki } from '../support/tls.js';
import { connectedPublisher, kvMessage, tokenRange, waitFor } from '../support/zmq.js';

const MODEL = 'Qwen/Qwen3-8B';
const A = '10.0.0.1:8000';
const PASSWORD = 'requirepass-S3cret-0123456789';
const ACL_SECRET = 'acl-user-S3cret-9876543210';
const WRONG = 'not-the-password-5555';

/**
 * The least-privilege ACL of the indexer, exactly as docs/security.md recommends it: what the client sends (INFO for
 * the ready check and the run id, EVALSHA/EVAL for the scripts, HMGET and SMEMBERS for the registry), what the Lua
 * scripts call (Redis checks each redis.call against the caller's ACL), and on a cluster CLUSTER SLOTS/INFO, ASKING and
 * CLIENT SETNAME (ioredis names its slot-refresh and subscriber connections; a refusal would be harmless but logged).
 * Keys: the configured prefix only; no Pub/Sub channels.
 */
const ACL_COMMANDS =
  '+info +evalsha +eval +hmget +smembers +hget +hset +hdel +hgetall +hkeys +hincrby +get +set +del +exists +incr +pexpire +sadd +zadd +zrem +zrangebyscore';
const ACL_CLUSTER = '+cluster|slots +cluster|info +asking +client|setname';
const aclArgs = (prefix: string, secret: string, extra = '') => [
  'ACL',
  'SETUSER',
  'indexer',
  'reset',
  'on',
  `>${secret}`,
  `~${prefix}*`,
  'resetchannels',
  '-@all',
  ...`${ACL_COMMANDS} ${extra}`.trim().split(' '),
];

describe('docs/security.md', () => {
  it('recommends exactly the ACL these tests run with', () => {
    const doc = readFileSync(new URL('../../docs/security.md', import.meta.url), 'utf8');
    expect(doc).toContain(`ACL SETUSER indexer reset on >PASSWORD ~kvi:* resetchannels -@all ${ACL_COMMANDS}\n`);
    expect(doc).toContain(`and on a cluster also \`${ACL_CLUSTER}\``);
  });
});

/** A pino logger at trace level writing into `lines`: what the service would print. */
function capture() {
  const lines: string[] = [];
  const log = pino(
    { level: 'trace' },
    new Writable({ write: (chunk, _e, done) => (lines.push(String(chunk)), done()) }),
  );
  return { log, lines };
}

function configWith(index: Record<string, unknown>) {
  return ConfigSchema.parse({
    zmq: { addresses: ['tcp://127.0.0.1:*'] },
    index: { backend: 'redis', redisKeyPrefix: 'test:', ...index },
    api: { grpcAddress: '127.0.0.1:0' },
    metrics: { host: '127.0.0.1', port: 0 },
    log: { level: 'trace', statsIntervalSeconds: 0 },
  });
}

/**
 * The whole service against a locked Redis: a batch published over ZMQ is ingested and scored over gRPC. Returns the
 * matched blocks and the service (still running) for further checks, and the logs.
 */
async function ingestAndScore(index: Record<string, unknown>, tokensFrom = 1) {
  const { log, lines } = capture();
  const config = configWith(index);
  const service = await startService(config, log);
  const api = await startApi(service, config, log);
  const kv = grpcClient(`127.0.0.1:${api.grpcPort}`, 'kvindexer/v1/kvindexer.proto', 'kvindexer.v1.KvIndexer');
  const pub = await connectedPublisher(
    service.subscriber.lastEndpoint!,
    kvMessage('kv@10.9.9.9:1@probe', 0, [0, [], null]),
    () => service.pipeline.endpoints().has('10.9.9.9:1'),
  );
  try {
    await pub.send(
      kvMessage(`kv@${A}@${MODEL}`, 0, [
        1,
        [['BlockStored', [1n, 2n, 3n], null, tokenRange(48, tokensFrom), 16, null, null]],
        null,
      ]),
    );
    await waitFor(() => service.pipeline.endpoints().get(A) === 0n, 'the batch applied');
    await service.index.flush();
    const res = await kv.call('Score', {
      model: MODEL,
      tokens: { tokenIds: tokenRange(48, tokensFrom) },
      candidates: [A],
    });
    return {
      matched: res.scores[0].matchedBlocks as number,
      degraded: res.degraded as boolean,
      service,
      lines,
      stop: async () => {
        pub.close();
        kv.close();
        await api.stop();
        await service.stop();
      },
    };
  } catch (err) {
    pub.close();
    kv.close();
    await api.stop();
    await service.stop();
    throw err;
  }
}

/** Starting the service must fail; returns the error and everything logged meanwhile. */
async function failingStart(index: Record<string, unknown>) {
  const { log, lines } = capture();
  const err = await startService(configWith(index), log).then(
    async (s: RunningService) => {
      await s.stop();
      return new Error('the service started');
    },
    (e: unknown) => e as Error,
  );
  // A failed start names the setting (StartupError, service/startup-error.ts): `index.redisUrl <url>: <reason>`.
  const setting = err instanceof StartupError ? err.setting : null;
  return {
    err,
    setting,
    reason: err instanceof StartupError ? err.reason : err.message,
    lines,
    everything: `${inspect(err, { depth: null, showHidden: true })}\n${String(err.stack)}\n${lines.join('')}`,
  };
}

describe('Redis with requirepass (the default user has a password)', () => {
  let redis: RedisServer;
  let pki: TestPki;
  let passwordFile: string;

  beforeAll(async () => {
    redis = await startRedis({ password: PASSWORD });
    pki = makeTestPki(); // only for its directory
    passwordFile = join(pki.dir, 'redis-password');
    writeFileSync(passwordFile, `${PASSWORD}\n`);
  }, 60_000);
  afterAll(async () => {
    await redis?.stop();
  });

  it('ingests and scores with the password in the URL, or from index.redisPasswordFile; neither is logged', async () => {
    const inUrl = await ingestAndScore({ redisUrl: `redis://:${PASSWORD}@127.0.0.1:${redis.port}` });
    await inUrl.stop();
    expect([inUrl.matched, inUrl.degraded]).toEqual([3, false]);
    const fromFile = await ingestAndScore({ redisUrl: redis.url, redisPasswordFile: passwordFile }, 100);
    await fromFile.stop();
    expect([fromFile.matched, fromFile.degraded]).toEqual([3, false]);
    const started = inUrl.lines.find((l) => l.includes('kv-indexer started'))!;
    expect(JSON.parse(started).index).toEqual({
      backend: 'redis',
      url: `redis://:***@127.0.0.1:${redis.port}`,
      keyPrefix: 'test:',
      tls: false,
    });
    expect(JSON.parse(fromFile.lines.find((l) => l.includes('kv-indexer started'))!).index).toEqual({
      backend: 'redis',
      url: redis.url,
      keyPrefix: 'test:',
      passwordFile,
      tls: false,
    });
    expect(inUrl.lines.join('') + fromFile.lines.join('')).not.toContain(PASSWORD);
  });

  it("a wrong password fails the start with the server's reason and without the password", async () => {
    const { setting, reason, everything } = await failingStart({
      redisUrl: `redis://:${WRONG}@127.0.0.1:${redis.port}`,
    });
    expect(setting).toBe('index.redisUrl');
    expect(reason).toBe(
      'redis index unavailable (connect): Redis refused the credentials: WRONGPASS invalid username-password pair or user is disabled.',
    );
    expect(everything).not.toContain(WRONG);
    const missing = await failingStart({ redisUrl: redis.url });
    expect(missing.reason).toMatch(/^redis index unavailable \(connect\): Redis refused the credentials: NOAUTH /);
  });

  it('refuses a password (or user) both in the URL and in the settings, an empty password file and an unreadable one', async () => {
    const empty = join(pki.dir, 'empty-password');
    writeFileSync(empty, '\n');
    const cases: [Record<string, unknown>, string][] = [
      [
        { redisUrl: `redis://:${PASSWORD}@127.0.0.1:${redis.port}`, redisPasswordFile: passwordFile },
        'index.redisPasswordFile and a password in index.redisUrl: give the password in one place (the file)',
      ],
      [{ redisUrl: redis.url, redisPasswordFile: empty }, `index.redisPasswordFile: ${empty} is empty`],
      [
        {
          redisUrl: `redis://indexer@127.0.0.1:${redis.port}`,
          redisUsername: 'indexer',
          redisPasswordFile: passwordFile,
        },
        'index.redisUsername and a user in index.redisUrl: give the user in one place',
      ],
      [
        { redisUrl: redis.url, redisPasswordFile: '/nonexistent/redis-password' },
        "index.redisPasswordFile: cannot read /nonexistent/redis-password: ENOENT: no such file or directory, open '/nonexistent/redis-password'",
      ],
    ];
    for (const [index, message] of cases) {
      const { err } = await failingStart(index);
      expect([err instanceof ConfigError, err.message]).toEqual([true, message]);
    }
  });

  it('a rotated password file is used when the connection is made again, without a restart', async () => {
    const ROTATED = 'rotated-S3cret-after-0123';
    const rotatedFile = join(pki.dir, 'redis-password-rotating');
    writeFileSync(rotatedFile, `${PASSWORD}\n`);
    const run = await ingestAndScore({ redisUrl: redis.url, redisPasswordFile: rotatedFile }, 200);
    const asRotated = (...args: string[]) =>
      spawnSync(
        'redis-cli',
        ['-h', '127.0.0.1', '-p', String(redis.port), '-a', ROTATED, '--no-auth-warning', ...args],
        { encoding: 'utf8' },
      ).stdout;
    try {
      expect([run.matched, run.degraded]).toEqual([3, false]);
      const before = await run.service.index.endpointEntries(A);
      // The operator rotates: Redis takes the new password (open connections stay authenticated), the Secret file
      // follows, then every client connection is dropped — the indexer must come back with the new password.
      expect(redis.cli('CONFIG', 'SET', 'requirepass', ROTATED).trim()).toBe('OK');
      writeFileSync(rotatedFile, `${ROTATED}\n`);
      expect(Number(asRotated('CLIENT', 'KILL', 'TYPE', 'normal').trim())).toBeGreaterThanOrEqual(1);
      const deadline = Date.now() + 10_000;
      let entries: unknown;
      for (;;) {
        entries = await run.service.index.endpointEntries(A).catch((err: Error) => err.message);
        if (typeof entries !== 'string' || Date.now() > deadline) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(entries).toEqual(before);
      expect(
        asRotated('CLIENT', 'LIST')
          .split('\n')
          .filter((l) => l.includes('cmd=')).length,
      ).toBeGreaterThanOrEqual(2);
      expect(run.lines.join('')).not.toContain(ROTATED);
    } finally {
      asRotated('CONFIG', 'SET', 'requirepass', PASSWORD);
      await run.stop();
    }
  });

  it('--print-config shows the URL without its password', async () => {
    const run = await runCli([
      'serve',
      '--print-config',
      '--set',
      `index.redisUrl=redis://:${PASSWORD}@127.0.0.1:${redis.port}`,
    ]);
    expect(run.code).toBe(0);
    expect(run.stdout).not.toContain(PASSWORD);
    expect(JSON.parse(run.stdout).index.redisUrl).toBe(`redis://:***@127.0.0.1:${redis.port}`);
  }, 60_000);
});

describe('Redis with the least-privilege ACL user', () => {
  let redis: RedisServer;

  beforeAll(async () => {
    redis = await startRedis({ password: PASSWORD });
    expect(redis.cli(...aclArgs('test:', ACL_SECRET)).trim()).toBe('OK');
  }, 60_000);
  afterAll(async () => {
    await redis?.stop();
  });

  it('is enough for everything the backend does: ingest, Score, speculation, stats, clear, leases; nothing denied', async () => {
    const run = await ingestAndScore({ redisUrl: `redis://indexer:${ACL_SECRET}@127.0.0.1:${redis.port}` });
    try {
      expect([run.matched, run.degraded]).toEqual([3, false]);
      const index = run.service.index as RedisIndex;
      const keys = new BigUint64Array([11n, 12n]);
      await index.reserve('10.0.0.2:8000', keys, 60_000);
      expect(await index.release('10.0.0.2:8000', keys)).toBe(2);
      expect(await index.endpointEntries(A)).toEqual({ GPU: 3 });
      expect((await index.stats()).entries).toBe(3);
      expect(await index.sweepExpired()).toBe(0);
      index.clearEndpoint(A);
      await index.flush();
      expect((await index.stats()).entries).toBe(0);
      const leases = index.leases('replica-1', 10_000);
      expect((await leases.acquire([A])).map((l) => l.status)).toEqual(['acquired']);
      expect(await leases.renew()).toEqual({ lost: [], lapsed: [] });
      await leases.release();
      expect(run.lines.join('')).not.toContain(ACL_SECRET);
    } finally {
      await run.stop();
    }
    // Nothing was refused along the way (ACL LOG lists every denied command or key).
    expect(redis.cli('ACL', 'LOG').trim()).toBe('');
  });

  it('the ACL is enforced: keys outside the prefix are refused; a wrong secret fails the start', async () => {
    const other = await RedisIndex.open({
      url: `redis://indexer:${ACL_SECRET}@127.0.0.1:${redis.port}`,
      keyPrefix: 'other:',
    });
    try {
      other.add(A, 'GPU', new BigUint64Array([1n]));
      const refused = await other.flush().then(
        () => undefined,
        (e: Error) => e.message,
      );
      expect(refused).toBe('NOPERM this user has no permissions to access one of the keys used as arguments');
    } finally {
      await other.close();
    }
    const wrong = await failingStart({ redisUrl: `redis://indexer:${WRONG}@127.0.0.1:${redis.port}` });
    expect(wrong.reason).toBe(
      'redis index unavailable (connect): Redis refused the credentials: WRONGPASS invalid username-password pair or user is disabled.',
    );
    expect(wrong.everything).not.toContain(WRONG);
  });
});

describe('Redis over TLS (Debian redis-server 7.0 is built with TLS); Redis requires client certificates by default', () => {
  let redis: RedisServer;
  let pki: TestPki;
  let foreign: TestPki;

  beforeAll(async () => {
    pki = makeTestPki();
    foreign = makeTestPki();
    redis = await startRedis({ tls: pki, password: PASSWORD });
    writeFileSync(join(pki.dir, 'redis-password'), PASSWORD);
  }, 60_000);
  afterAll(async () => {
    await redis?.stop();
  });

  const tlsFiles = (ca: TestPki, client: TestPki) => ({
    redisTlsCaFile: ca.caCert,
    redisTlsCertFile: client.clientCert,
    redisTlsKeyFile: client.clientKey,
  });

  it('ingests and scores over rediss:// with the CA file and a client certificate (mutual TLS), and with redisTls: true', async () => {
    const url = await ingestAndScore({
      redisUrl: redis.url,
      redisPasswordFile: join(pki.dir, 'redis-password'),
      ...tlsFiles(pki, pki),
    });
    await url.stop();
    expect([url.matched, url.degraded]).toEqual([3, false]);
    expect(JSON.parse(url.lines.find((l) => l.includes('kv-indexer started'))!).index.tls).toBe(true);
    // The same server named redis://: redisTls turns TLS on.
    const flag = await ingestAndScore(
      { redisUrl: `redis://:${PASSWORD}@127.0.0.1:${redis.port}`, redisTls: true, ...tlsFiles(pki, pki) },
      100,
    );
    await flag.stop();
    expect([flag.matched, flag.degraded]).toEqual([3, false]);
    expect(url.lines.join('') + flag.lines.join('')).not.toContain(PASSWORD);
  });

  it('fails the start clearly on a server certificate of another CA, without a client certificate, or with a foreign one', async () => {
    const base = { redisUrl: `rediss://:${PASSWORD}@127.0.0.1:${redis.port}` };
    const wrongCa = await failingStart({ ...base, ...tlsFiles(foreign, pki) });
    expect(wrongCa.reason).toBe(
      'redis index unavailable (connect): TLS handshake with Redis failed: self-signed certificate in certificate chain (SELF_SIGNED_CERT_IN_CHAIN)',
    );
    const noCa = await failingStart({ ...base, redisTlsCertFile: pki.clientCert, redisTlsKeyFile: pki.clientKey });
    expect(noCa.reason).toBe(
      'redis index unavailable (connect): TLS handshake with Redis failed: self-signed certificate in certificate chain (SELF_SIGNED_CERT_IN_CHAIN)',
    );
    const noClientCert = await failingStart({ ...base, redisTlsCaFile: pki.caCert });
    expect(noClientCert.reason).toBe(
      'redis index unavailable (connect): TLS handshake with Redis failed: ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
    );
    const foreignClient = await failingStart({ ...base, ...tlsFiles(pki, foreign) });
    expect(foreignClient.reason).toBe(
      'redis index unavailable (connect): TLS handshake with Redis failed: ERR_SSL_TLSV1_ALERT_UNKNOWN_CA',
    );
    for (const f of [wrongCa, noCa, noClientCert, foreignClient]) expect(f.everything).not.toContain(PASSWORD);
  });

  it('refuses TLS files without TLS, and a certificate without its key', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [
        { redisUrl: 'redis://127.0.0.1:1', redisTlsCaFile: pki.caCert },
        'index.redisTlsCaFile, redisTlsCertFile and redisTlsKeyFile need index.redisTls: true (or a rediss:// URL)',
      ],
      [
        { redisUrl: 'rediss://127.0.0.1:1', redisTlsCertFile: pki.clientCert },
        'index.redisTlsCertFile and index.redisTlsKeyFile go together',
      ],
      [
        { redisUrl: 'rediss://127.0.0.1:1', redisTlsCaFile: '/nonexistent/ca.pem' },
        "index.redisTlsCaFile: cannot read /nonexistent/ca.pem: ENOENT: no such file or directory, open '/nonexistent/ca.pem'",
      ],
    ];
    for (const [index, message] of cases) {
      const { err } = await failingStart(index);
      expect([err instanceof ConfigError, err.message]).toEqual([true, message]);
    }
  });
});

describe('Redis Cluster with TLS, a password and the ACL user on every node', () => {
  let cluster: RedisCluster;
  let pki: TestPki;
  let secretFile: string;

  beforeAll(async () => {
    pki = makeTestPki();
    cluster = await startCluster(3, { tls: pki, password: PASSWORD });
    for (const node of cluster.nodes) expect(node.cli(...aclArgs('test:', ACL_SECRET, ACL_CLUSTER)).trim()).toBe('OK');
    secretFile = join(pki.dir, 'redis-secret');
    writeFileSync(secretFile, `${ACL_SECRET}\n`);
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  /** The index settings of this cluster: TLS with the test PKI, the ACL user, its password from `passwordFile`. */
  const clusterSettings = (passwordFile: string) => ({
    redisCluster: cluster.startupNodes.map((n) => `${n.host}:${n.port}`),
    redisUsername: 'indexer',
    redisPasswordFile: passwordFile,
    redisTls: true,
    redisTlsCaFile: pki.caCert,
    redisTlsCertFile: pki.clientCert,
    redisTlsKeyFile: pki.clientKey,
  });

  it('ingests and scores through index.redisUsername + redisPasswordFile + TLS; nothing denied, nothing logged', async () => {
    const run = await ingestAndScore(clusterSettings(secretFile));
    try {
      expect([run.matched, run.degraded]).toEqual([3, false]);
      const index = run.service.index as RedisIndex;
      expect(index.needsAnchors).toBe(true);
      expect((await index.stats()).entries).toBe(3);
      const leases = index.leases('replica-1', 10_000);
      expect((await leases.acquire([A])).map((l) => l.status)).toEqual(['acquired']);
      await leases.release();
      expect(JSON.parse(run.lines.find((l) => l.includes('kv-indexer started'))!).index).toEqual({
        backend: 'redis',
        cluster: cluster.startupNodes.map((n) => `${n.host}:${n.port}`),
        keyPrefix: 'test:',
        username: 'indexer',
        passwordFile: secretFile,
        tls: true,
      });
      expect(run.lines.join('')).not.toContain(ACL_SECRET);
    } finally {
      await run.stop();
    }
    for (const node of cluster.nodes) expect(node.cli('ACL', 'LOG').trim()).toBe('');
  });

  it('a rotated password of the ACL user is taken from the file when the cluster connections are made again', async () => {
    const ROTATED = 'rotated-acl-S3cret-0123456789';
    const rotatingFile = join(pki.dir, 'redis-secret-rotating');
    writeFileSync(rotatingFile, `${ACL_SECRET}\n`);
    const run = await ingestAndScore(clusterSettings(rotatingFile), 300);
    try {
      expect([run.matched, run.degraded]).toEqual([3, false]);
      const before = await run.service.index.stats();
      // Rotate: every node swaps the user's password, the Secret file follows, the user's connections are dropped.
      for (const node of cluster.nodes)
        expect(node.cli('ACL', 'SETUSER', 'indexer', `>${ROTATED}`, `<${ACL_SECRET}`).trim()).toBe('OK');
      writeFileSync(rotatingFile, `${ROTATED}\n`);
      const statsAgain = async () => {
        const deadline = Date.now() + 15_000;
        for (;;) {
          const stats = await run.service.index.stats().then(
            (x) => x.entries,
            (err: Error) => err.message,
          );
          if (typeof stats !== 'string' || Date.now() > deadline) return stats;
          await new Promise((r) => setTimeout(r, 100));
        }
      };
      // Every master answers through the indexer's own cluster connection (a key of each node's slots).
      const client = (run.service.index as unknown as { conn: { client: Cluster } }).conn.client;
      const everyMaster = async () => {
        const deadline = Date.now() + 15_000;
        for (;;) {
          const answers = await Promise.all(
            probeKeys.map((k) =>
              client.get(k).then(
                () => 'ok',
                (e: Error) => e.message,
              ),
            ),
          );
          if (answers.every((a) => a === 'ok') || Date.now() > deadline) return answers;
          await new Promise((r) => setTimeout(r, 100));
        }
      };
      const slotKeyOf = (node: RedisServer) => {
        // A key the node serves itself (another node's key answers MOVED).
        for (let i = 0; i < 200; i++) if (!node.cli('GET', `test:probe-${i}`).includes('MOVED')) return i;
        throw new Error(`no key found for the node on port ${node.port}`);
      };
      const probeKeys = cluster.nodes.map((n) => `test:probe-${slotKeyOf(n)}`);
      expect(await everyMaster()).toEqual(['ok', 'ok', 'ok']);
      // One node drops the indexer (the cluster stays up and remakes that node's connection on its own) ...
      cluster.nodes[1].cli('CLIENT', 'KILL', 'USER', 'indexer');
      expect(await everyMaster()).toEqual(['ok', 'ok', 'ok']);
      expect(await statsAgain()).toBe(before.entries);
      // ... then every node does (the whole cluster connection is made again).
      for (const node of cluster.nodes) node.cli('CLIENT', 'KILL', 'USER', 'indexer');
      expect(await everyMaster()).toEqual(['ok', 'ok', 'ok']);
      expect(await statsAgain()).toBe(before.entries);
      expect(run.lines.join('')).not.toContain(ROTATED);
    } finally {
      for (const node of cluster.nodes) node.cli('ACL', 'SETUSER', 'indexer', `>${ACL_SECRET}`, `<${ROTATED}`);
      await run.stop();
    }
  }, 40_000);

  it('a wrong password fails the start clearly, without the password', async () => {
    const wrongFile = join(pki.dir, 'wrong-secret');
    writeFileSync(wrongFile, WRONG);
    const { setting, reason, everything } = await failingStart(clusterSettings(wrongFile));
    // ioredis gives up with "Failed to refresh slots cache."; the node's reason is what is reported.
    expect(setting).toBe('index.redisCluster');
    expect(reason).toBe(
      'redis index unavailable (connect): Redis refused the credentials: WRONGPASS invalid username-password pair or user is disabled.',
    );
    expect(everything).not.toContain(WRONG);
  });
});

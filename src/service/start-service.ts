import {
  bindReplayAddress,
  EventPipeline,
  EventTransport,
  Ingestor,
  parseEndpointSpec,
  ZmqSubscriber,
  type TransportOptions,
} from '../events/index.js';
import { EncoderResidency, MemoryIndex, RedisIndex, TierRegistry } from '../index/index.js';
import { BlockHasher } from '../keys/index.js';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { ConfigError, type Config, type Logger } from '../ops/index.js';
import { readCurveClientKeys } from './curve-keys.js';
import { EndpointOwnership } from './endpoint-ownership.js';
import { atSetting } from './startup-error.js';

/** The configured index backend (both implement Index; the memory one also answers synchronously). */
export type ServiceIndex = MemoryIndex | RedisIndex;

export interface RunningService {
  config: Config;
  index: ServiceIndex;
  ingestor: Ingestor;
  /** Which endpoints have processed which images (per process, from the events ingested here, whatever the backend). */
  residency: EncoderResidency;
  pipeline: EventPipeline;
  /** The sockets: bind-mode SUB plus one SUB per connect-mode endpoint; add/remove endpoints at runtime here. */
  transport: EventTransport;
  /** The bind-mode SUB socket (not started when nothing is bound). */
  subscriber: ZmqSubscriber;
  /** Lease-driven ownership of the static endpoints (endpoints.leaseTtlMs with the Redis backend), else null. */
  ownership: EndpointOwnership | null;
  /** Stops everything; leases are released unless `releaseLeases: false` (a crash, in tests). */
  stop(options?: { releaseLeases?: boolean }): Promise<void>;
}

/** The transport's options from the config: zmq.* (legacy shape) plus endpoints.* and replay.*. */
export function transportSettings(config: Config) {
  const bind = config.zmq.mode === 'bind' ? config.zmq.addresses : [];
  // With leases, the static endpoints are connected by EndpointOwnership as their leases are won.
  const leased = config.endpoints.leaseTtlMs > 0;
  const endpoints = [
    ...(config.zmq.mode === 'connect' ? config.zmq.addresses : []),
    ...(leased ? [] : config.endpoints.static),
  ];
  const replayPort = config.replay.bindPort;
  return {
    transport: {
      bind,
      endpoints,
      endpointsFile: config.endpoints.file || null,
      fileCheckIntervalMs: config.endpoints.fileCheckSeconds * 1000,
      receiveHighWaterMark: config.zmq.receiveHighWaterMark,
      curve: readCurveClientKeys(config.zmq),
      discovery: config.discovery,
    },
    pipeline: {
      format: config.zmq.format,
      maxConcurrentReplays: config.replay.maxConcurrent,
      staleMs: config.endpoints.staleSeconds * 1000,
      clearStaleMs: config.endpoints.clearStaleSeconds * 1000,
      limits: {
        maxTopicBytes: config.zmq.maxTopicBytes,
        maxPayloadBytes: config.zmq.maxPayloadBytes,
        maxEndpoints: config.endpoints.maxTracked,
      },
      resolveReplay:
        replayPort > 0 ? (endpoint: string, rank: number) => bindReplayAddress(endpoint, replayPort, rank) : undefined,
      stream: {
        queueCapacity: config.endpoints.queueBatches,
        replayEnabled: config.replay.enabled,
        replayTimeoutMs: config.replay.timeoutMs,
        replayIdleTimeoutMs: config.replay.idleTimeoutMs,
        replayCooldownMs: config.replay.cooldownMs,
        onUnrecoverable: config.replay.onUnrecoverable,
        restartDistance: BigInt(config.replay.restartDistance),
      },
    },
  };
}

/**
 * Opens the configured index. With Redis, an endpoint whose writes may have been lost (failed flush, buffer overflow,
 * Redis restarted empty) is cleared and resynchronised by its stream (replay from 0 when its publisher has one).
 */
async function openIndex(
  config: Config,
  tiers: TierRegistry,
  resync: (endpoint: string, reason: string) => void,
): Promise<ServiceIndex> {
  const c = config.index;
  if (c.backend === 'memory') return new MemoryIndex({ maxEntries: c.maxEntries, shards: c.shards, tiers });
  const cluster = c.redisCluster.map((node) => {
    const at = node.lastIndexOf(':');
    return { host: node.slice(0, at), port: Number(node.slice(at + 1)) };
  });
  return RedisIndex.open({
    ...(cluster.length > 0 ? { cluster } : { url: c.redisUrl }),
    ...redisCredentials(config),
    keyPrefix: c.redisKeyPrefix,
    commandTimeoutMs: c.redisCommandTimeoutMs,
    entryTtlMs: c.redisEntryTtlMs,
    tiers,
    onResync: resync,
  });
}

/**
 * The ACL user, the password (from index.redisPasswordFile: a mounted Secret, never in the configuration) and the TLS
 * material of the Redis connection, read now so that a bad path fails the start. TLS is on with index.redisTls or a
 * rediss:// URL; the CA, certificate and key files need it on.
 */
export function redisCredentials(config: Config): {
  username?: string;
  password?: string;
  passwordSource?: () => string | undefined;
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer };
} {
  const c = config.index;
  const read = (key: string, path: string) => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new ConfigError(`index.${key}: cannot read ${path}: ${(err as Error).message}`);
    }
  };
  const single = c.redisCluster.length === 0;
  const tls = c.redisTls || (single && /^rediss:\/\//i.test(c.redisUrl));
  const out: ReturnType<typeof redisCredentials> = {};
  if (c.redisUsername) {
    if (single && /^\w+:\/\/[^:@/]+(:[^@/]*)?@/.test(c.redisUrl)) {
      throw new ConfigError('index.redisUsername and a user in index.redisUrl: give the user in one place');
    }
    out.username = c.redisUsername;
  }
  if (c.redisPasswordFile) {
    if (single && /^\w+:\/\/[^@/]*:[^@/]*@/.test(c.redisUrl)) {
      throw new ConfigError(
        'index.redisPasswordFile and a password in index.redisUrl: give the password in one place (the file)',
      );
    }
    const password = read('redisPasswordFile', c.redisPasswordFile)
      .toString('utf8')
      .replace(/\r?\n$/, '');
    if (password.length === 0) throw new ConfigError(`index.redisPasswordFile: ${c.redisPasswordFile} is empty`);
    out.password = password;
    // Read again before every reconnection, so a rotated Secret is picked up without a restart.
    const path = c.redisPasswordFile;
    out.passwordSource = () => readFileSync(path, 'utf8').replace(/\r?\n$/, '');
  }
  if (!tls && (c.redisTlsCaFile || c.redisTlsCertFile || c.redisTlsKeyFile)) {
    throw new ConfigError(
      'index.redisTlsCaFile, redisTlsCertFile and redisTlsKeyFile need index.redisTls: true (or a rediss:// URL)',
    );
  }
  if (!!c.redisTlsCertFile !== !!c.redisTlsKeyFile)
    throw new ConfigError('index.redisTlsCertFile and index.redisTlsKeyFile go together');
  if (tls) {
    out.tls = {
      ...(c.redisTlsCaFile ? { ca: read('redisTlsCaFile', c.redisTlsCaFile) } : {}),
      ...(c.redisTlsCertFile
        ? { cert: read('redisTlsCertFile', c.redisTlsCertFile), key: read('redisTlsKeyFile', c.redisTlsKeyFile) }
        : {}),
    };
  }
  return out;
}

/** `redis://user:secret@host:6379` → `redis://user:***@host:6379`: never log a password. */
export function redactUrl(url: string): string {
  return url.replace(/^(\w+:\/\/[^:@/]*:)[^@/]*@/, '$1***@');
}

/** Builds and starts the write path with the configured index. */
export async function startService(
  config: Config,
  log: Logger,
  /** `relay`: a serving process takes the bind-mode messages from the primary's relay at this address (no bind). */
  options: { relay?: string | null } = {},
): Promise<RunningService> {
  const tiers = new TierRegistry();
  const hasher = new BlockHasher(config.keys);
  let pipeline: EventPipeline | null = null;
  // A bad static spec (e.g. a discovery URL with ranks=) names endpoints.static, before anything is opened (the
  // transport would otherwise fail under zmq.addresses).
  for (const s of config.endpoints.static)
    await atSetting('endpoints.static', typeof s === 'string' ? s : JSON.stringify(s), async () =>
      parseEndpointSpec(s),
    );
  if (config.select.ledger === 'redis' && config.index.backend !== 'redis')
    throw new ConfigError('select.ledger: redis needs index.backend redis (the ledger shares its connection)');
  const redisSetting =
    config.index.redisCluster.length > 0
      ? ['index.redisCluster', config.index.redisCluster.join(',')]
      : ['index.redisUrl', redactUrl(config.index.redisUrl)];
  const index = await atSetting(redisSetting[0], redisSetting[1], () =>
    openIndex(config, tiers, (endpoint, reason) => {
      log.warn({ endpoint, reason }, 'index writes of this endpoint may be lost: clearing and resynchronising it');
      pipeline?.clearEndpoint(endpoint, 'resync');
    }),
  );
  const e = config.endpoints;
  const defaultStoreBound =
    e.storeBoundMaxBlocks > 0 || e.storeBoundTtlSeconds > 0
      ? {
          maxBlocks: e.storeBoundMaxBlocks > 0 ? e.storeBoundMaxBlocks : null,
          ttlMs: e.storeBoundTtlSeconds > 0 ? e.storeBoundTtlSeconds * 1000 : null,
        }
      : null;
  const residency = new EncoderResidency({
    cacheEntries: config.encoder.cacheEntries,
    ttlMs: config.encoder.ttlSeconds * 1000,
    maxEntries: config.encoder.maxEntries,
  });
  const ingestor = new Ingestor({ hasher, writer: index, tiers, defaultStoreBound, residency });
  const settings = transportSettings(config);
  const transportOptions: TransportOptions = {
    ...settings.transport,
    ...(options.relay ? { bind: [], relay: options.relay } : {}),
    storeBound: (identities, bound) => {
      for (const identity of identities) ingestor.setStoreBound(identity, bound ?? null);
    },
  };
  pipeline = new EventPipeline(ingestor, log, {
    ...settings.pipeline,
    // Synchronous counts for the stats line; the API asks the index itself (remote ones too).
    blockCounts: index instanceof MemoryIndex ? (identity) => index.endpointEntriesSync(identity) : undefined,
  });
  const transport = new EventTransport(pipeline, transportOptions, log);
  const events = pipeline;
  let ownership: EndpointOwnership | null = null;
  if (config.endpoints.leaseTtlMs > 0) {
    if (!(index instanceof RedisIndex))
      throw new ConfigError('endpoints.leaseTtlMs needs index.backend: redis (the leases live in Redis)');
    const owner = `${hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`;
    const specs = config.endpoints.static.map((s) => parseEndpointSpec(s));
    ownership = new EndpointOwnership(specs, index.leases(owner, config.endpoints.leaseTtlMs), transport, index, log);
  }
  if (
    settings.transport.bind.length === 0 &&
    settings.transport.endpoints.length === 0 &&
    !settings.transport.endpointsFile
  ) {
    log.warn(
      {},
      'no bind address, no endpoints and no endpoints file: events arrive only from endpoints added at runtime',
    );
  }
  try {
    await atSetting(
      'zmq.addresses',
      (err) => String((err as { address?: string }).address ?? settings.transport.bind.join(',')),
      () => transport.start(),
    );
    await ownership?.start();
  } catch (err) {
    // Nothing may stay open behind a failed start (a Redis connection keeps the process alive).
    await ownership?.stop(true).catch(() => undefined);
    await transport.stop().catch(() => undefined);
    await index.close().catch(() => undefined);
    throw err;
  }
  const backend =
    config.index.backend === 'redis'
      ? {
          backend: 'redis',
          ...(config.index.redisCluster.length > 0
            ? { cluster: config.index.redisCluster }
            : { url: redactUrl(config.index.redisUrl) }),
          keyPrefix: config.index.redisKeyPrefix,
          // Paths only: the password file's content is never logged.
          ...(config.index.redisUsername ? { username: config.index.redisUsername } : {}),
          ...(config.index.redisPasswordFile ? { passwordFile: config.index.redisPasswordFile } : {}),
          tls:
            config.index.redisTls ||
            (config.index.redisCluster.length === 0 && /^rediss:\/\//i.test(config.index.redisUrl)),
        }
      : { backend: 'memory', maxEntries: config.index.maxEntries };
  log.info(
    { zmq: config.zmq, endpoints: config.endpoints, replay: config.replay, keys: hasher.fingerprint, index: backend },
    'kv-indexer started',
  );

  // Stale endpoints past endpoints.clearStaleSeconds are cleared by a sweep a few times per that period.
  let staleTimer: NodeJS.Timeout | undefined;
  if (config.endpoints.clearStaleSeconds > 0) {
    staleTimer = setInterval(
      () => events.sweepStale(),
      Math.min(5_000, (config.endpoints.clearStaleSeconds * 1000) / 4),
    );
    staleTimer.unref();
  }
  // Store-bound TTLs expire between events too: a sweep every second drops what is due (bounded per call).
  const storeBoundTimer = setInterval(() => ingestor.sweepStoreBounds(), 1_000);
  storeBoundTimer.unref();
  // Residency reads ignore aged-out entries; the sweep gives their memory back and counts them.
  const residencyTimer = setInterval(() => residency.sweep(), 1_000);
  residencyTimer.unref();
  let statsTimer: NodeJS.Timeout | undefined;
  if (config.log.statsIntervalSeconds > 0) {
    statsTimer = setInterval(() => {
      index.stats().then(
        (stats) => log.info({ index: stats, transport: events.counters, ingest: { ...ingestor.counters } }, 'stats'),
        (err: unknown) => log.warn({ err: String(err) }, 'index stats unavailable'),
      );
    }, config.log.statsIntervalSeconds * 1000);
    statsTimer.unref();
  }
  return {
    config,
    index,
    ingestor,
    residency,
    pipeline: events,
    transport,
    subscriber: transport.bindSubscriber,
    ownership,
    async stop(options = {}) {
      clearInterval(statsTimer);
      clearInterval(staleTimer);
      clearInterval(storeBoundTimer);
      clearInterval(residencyTimer);
      await ownership?.stop(options.releaseLeases ?? true);
      await transport.stop();
      await index.close();
    },
  };
}

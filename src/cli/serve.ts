import { bindReplayAddress, EventPipeline, EventTransport, Ingestor, parseEndpointSpec, ZmqSubscriber } from '../events/index.js';
import { MemoryIndex, RedisIndex, TierRegistry } from '../index/index.js';
import { BlockHasher } from '../keys/index.js';
import { hostname } from 'node:os';
import { ConfigError, type Config, type Logger } from '../ops/index.js';
import { EndpointOwnership } from './endpoint-ownership.js';

/** The configured index backend (both implement Index; the memory one also answers synchronously). */
export type ServiceIndex = MemoryIndex | RedisIndex;

export interface RunningService {
  config: Config;
  index: ServiceIndex;
  ingestor: Ingestor;
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
  const endpoints = [...(config.zmq.mode === 'connect' ? config.zmq.addresses : []), ...(leased ? [] : config.endpoints.static)];
  const replayPort = config.replay.bindPort;
  return {
    transport: {
      bind,
      endpoints,
      endpointsFile: config.endpoints.file || null,
      fileCheckIntervalMs: config.endpoints.fileCheckSeconds * 1000,
      receiveHighWaterMark: config.zmq.receiveHighWaterMark,
    },
    pipeline: {
      format: config.zmq.format,
      maxConcurrentReplays: config.replay.maxConcurrent,
      staleMs: config.endpoints.staleSeconds * 1000,
      resolveReplay: replayPort > 0 ? (endpoint: string, rank: number) => bindReplayAddress(endpoint, replayPort, rank) : undefined,
      stream: {
        queueCapacity: config.endpoints.queueBatches,
        replayEnabled: config.replay.enabled,
        replayTimeoutMs: config.replay.timeoutMs,
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
async function openIndex(config: Config, tiers: TierRegistry, resync: (endpoint: string, reason: string) => void): Promise<ServiceIndex> {
  const c = config.index;
  if (c.backend === 'memory') return new MemoryIndex({ maxEntries: c.maxEntries, shards: c.shards, tiers });
  const cluster = c.redisCluster.map((node) => {
    const at = node.lastIndexOf(':');
    return { host: node.slice(0, at), port: Number(node.slice(at + 1)) };
  });
  return RedisIndex.open({
    ...(cluster.length > 0 ? { cluster } : { url: c.redisUrl }),
    keyPrefix: c.redisKeyPrefix,
    commandTimeoutMs: c.redisCommandTimeoutMs,
    tiers,
    onResync: resync,
  });
}

/** `redis://user:secret@host:6379` → `redis://user:***@host:6379`: never log a password. */
export function redactUrl(url: string): string {
  return url.replace(/^(\w+:\/\/[^:@/]*:)[^@/]*@/, '$1***@');
}

/** Builds and starts the write path with the configured index. */
export async function startService(config: Config, log: Logger): Promise<RunningService> {
  const tiers = new TierRegistry();
  const hasher = new BlockHasher(config.keys);
  let pipeline: EventPipeline | null = null;
  const index = await openIndex(config, tiers, (endpoint, reason) => {
    log.warn({ endpoint, reason }, 'index writes of this endpoint may be lost: clearing and resynchronising it');
    pipeline?.clearEndpoint(endpoint);
  });
  const ingestor = new Ingestor({ hasher, writer: index, tiers });
  const settings = transportSettings(config);
  pipeline = new EventPipeline(ingestor, log, {
    ...settings.pipeline,
    // Synchronous counts for the stats line; the API asks the index itself (remote ones too).
    blockCounts: index instanceof MemoryIndex ? (identity) => index.endpointEntriesSync(identity) : undefined,
  });
  const transport = new EventTransport(pipeline, settings.transport, log);
  const events = pipeline;
  let ownership: EndpointOwnership | null = null;
  if (config.endpoints.leaseTtlMs > 0) {
    if (!(index instanceof RedisIndex)) throw new ConfigError('endpoints.leaseTtlMs needs index.backend: redis (the leases live in Redis)');
    const owner = `${hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`;
    const specs = config.endpoints.static.map((s) => parseEndpointSpec(s));
    ownership = new EndpointOwnership(specs, index.leases(owner, config.endpoints.leaseTtlMs), transport, index, log);
  }
  if (settings.transport.bind.length === 0 && settings.transport.endpoints.length === 0 && !settings.transport.endpointsFile) {
    log.warn({}, 'no bind address, no endpoints and no endpoints file: events arrive only from endpoints added at runtime');
  }
  await transport.start();
  await ownership?.start();
  const backend =
    config.index.backend === 'redis'
      ? {
          backend: 'redis',
          ...(config.index.redisCluster.length > 0 ? { cluster: config.index.redisCluster } : { url: redactUrl(config.index.redisUrl) }),
          keyPrefix: config.index.redisKeyPrefix,
        }
      : { backend: 'memory', maxEntries: config.index.maxEntries };
  log.info({ zmq: config.zmq, endpoints: config.endpoints, replay: config.replay, keys: hasher.fingerprint, index: backend }, 'kv-indexer started');

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
    pipeline: events,
    transport,
    subscriber: transport.bindSubscriber,
    ownership,
    async stop(options = {}) {
      clearInterval(statsTimer);
      await ownership?.stop(options.releaseLeases ?? true);
      await transport.stop();
      await index.close();
    },
  };
}

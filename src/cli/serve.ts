import { bindReplayAddress, EventPipeline, EventTransport, Ingestor, ZmqSubscriber } from '../events/index.js';
import { MemoryIndex, TierRegistry } from '../index/index.js';
import { BlockHasher } from '../keys/index.js';
import { createLogger, loadConfig, type Config, type Logger } from '../ops/index.js';

export interface RunningService {
  config: Config;
  index: MemoryIndex;
  ingestor: Ingestor;
  pipeline: EventPipeline;
  /** The sockets: bind-mode SUB plus one SUB per connect-mode endpoint; add/remove endpoints at runtime here. */
  transport: EventTransport;
  /** The bind-mode SUB socket (not started when nothing is bound). */
  subscriber: ZmqSubscriber;
  stop(): Promise<void>;
}

/** The transport's options from the config: zmq.* (legacy shape) plus endpoints.* and replay.*. */
export function transportSettings(config: Config) {
  const bind = config.zmq.mode === 'bind' ? config.zmq.addresses : [];
  const endpoints = [...(config.zmq.mode === 'connect' ? config.zmq.addresses : []), ...config.endpoints.static];
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

/** Builds and starts the write path with an in-memory index. */
export async function startService(config: Config, log: Logger): Promise<RunningService> {
  const tiers = new TierRegistry();
  const hasher = new BlockHasher(config.keys);
  const index = new MemoryIndex({ maxEntries: config.index.maxEntries, shards: config.index.shards, tiers });
  const ingestor = new Ingestor({ hasher, writer: index, tiers });
  const settings = transportSettings(config);
  const pipeline = new EventPipeline(ingestor, log, {
    ...settings.pipeline,
    blockCounts: (identity) => index.endpointEntriesSync(identity),
  });
  const transport = new EventTransport(pipeline, settings.transport, log);
  if (settings.transport.bind.length === 0 && settings.transport.endpoints.length === 0 && !settings.transport.endpointsFile) {
    log.warn({}, 'no bind address, no endpoints and no endpoints file: events arrive only from endpoints added at runtime');
  }
  await transport.start();
  log.info(
    { zmq: config.zmq, endpoints: config.endpoints, replay: config.replay, keys: hasher.fingerprint, maxEntries: config.index.maxEntries },
    'kv-indexer started',
  );

  let statsTimer: NodeJS.Timeout | undefined;
  if (config.log.statsIntervalSeconds > 0) {
    statsTimer = setInterval(() => {
      const stats = index.statsSync();
      log.info({ index: stats, transport: pipeline.counters, ingest: { ...ingestor.counters } }, 'stats');
    }, config.log.statsIntervalSeconds * 1000);
    statsTimer.unref();
  }
  return {
    config,
    index,
    ingestor,
    pipeline,
    transport,
    subscriber: transport.bindSubscriber,
    async stop() {
      clearInterval(statsTimer);
      await transport.stop();
      await index.close();
    },
  };
}

/** `serve`: run until SIGINT/SIGTERM, then close sockets and exit. */
export async function serve(env: NodeJS.ProcessEnv): Promise<void> {
  const config = loadConfig(env);
  const log = createLogger(config.log.level);
  const service = await startService(config, log);
  await new Promise<void>((resolve) => {
    const shutdown = (signal: string) => {
      log.info({ signal }, 'shutting down');
      resolve();
    };
    process.once('SIGINT', shutdown);
    process.once('SIGTERM', shutdown);
  });
  await service.stop();
  log.info('stopped');
}

import { EventPipeline, Ingestor, ZmqSubscriber } from '../events/index.js';
import { MemoryIndex, TierRegistry } from '../index/index.js';
import { BlockHasher } from '../keys/index.js';
import { createLogger, loadConfig, type Config, type Logger } from '../ops/index.js';

export interface RunningService {
  config: Config;
  index: MemoryIndex;
  ingestor: Ingestor;
  pipeline: EventPipeline;
  subscriber: ZmqSubscriber;
  stop(): Promise<void>;
}

/** Builds and starts the write path with an in-memory index. */
export async function startService(config: Config, log: Logger): Promise<RunningService> {
  const tiers = new TierRegistry();
  const hasher = new BlockHasher(config.keys);
  const index = new MemoryIndex({ maxEntries: config.index.maxEntries, shards: config.index.shards, tiers });
  const ingestor = new Ingestor({ hasher, writer: index, tiers });
  const pipeline = new EventPipeline(ingestor, log, config.zmq.format);
  const subscriber = new ZmqSubscriber(config.zmq);
  await subscriber.start((frames) => pipeline.handle(frames));
  log.info({ zmq: config.zmq, keys: hasher.fingerprint, maxEntries: config.index.maxEntries }, 'kv-indexer started');

  let statsTimer: NodeJS.Timeout | undefined;
  if (config.log.statsIntervalSeconds > 0) {
    statsTimer = setInterval(() => {
      const stats = index.statsSync();
      log.info({ index: stats, pipeline: pipeline.counters, ingest: { ...ingestor.counters } }, 'stats');
    }, config.log.statsIntervalSeconds * 1000);
    statsTimer.unref();
  }
  return {
    config,
    index,
    ingestor,
    pipeline,
    subscriber,
    async stop() {
      clearInterval(statsTimer);
      await subscriber.close();
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

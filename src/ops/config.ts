import { z } from 'zod';

/**
 * The service configuration: one schema, embedded defaults, overridable by environment variables (KV_INDEXER_*).
 * Validated at start with readable errors.
 */
export const ConfigSchema = z.object({
  keys: z
    .object({
      blockSize: z.number().int().min(1).max(65536).default(16),
      hashSeed: z.string().default(''),
    })
    .default({ blockSize: 16, hashSeed: '' }),
  index: z
    .object({
      maxEntries: z.number().int().min(1).default(50_000_000),
      shards: z.number().int().min(1).max(4096).default(64),
    })
    .default({ maxEntries: 50_000_000, shards: 64 }),
  zmq: z
    .object({
      mode: z.enum(['bind', 'connect']).default('bind'),
      addresses: z.array(z.string().min(1)).min(1).default(['tcp://*:5557']),
      format: z.enum(['vllm', 'sglang']).default('vllm'),
      receiveHighWaterMark: z.number().int().min(1).default(100_000),
    })
    .default({ mode: 'bind', addresses: ['tcp://*:5557'], format: 'vllm', receiveHighWaterMark: 100_000 }),
  log: z
    .object({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      statsIntervalSeconds: z.number().min(0).default(30),
    })
    .default({ level: 'info', statsIntervalSeconds: 30 }),
});

export type Config = z.infer<typeof ConfigSchema>;

/** Environment variable → config path. Lists are comma-separated. */
const ENV_PATHS: Record<string, { path: [string, string]; kind: 'int' | 'number' | 'string' | 'list' }> = {
  KV_INDEXER_BLOCK_SIZE: { path: ['keys', 'blockSize'], kind: 'int' },
  KV_INDEXER_HASH_SEED: { path: ['keys', 'hashSeed'], kind: 'string' },
  KV_INDEXER_MAX_ENTRIES: { path: ['index', 'maxEntries'], kind: 'int' },
  KV_INDEXER_INDEX_SHARDS: { path: ['index', 'shards'], kind: 'int' },
  KV_INDEXER_ZMQ_MODE: { path: ['zmq', 'mode'], kind: 'string' },
  KV_INDEXER_ZMQ_ADDRESSES: { path: ['zmq', 'addresses'], kind: 'list' },
  KV_INDEXER_ZMQ_FORMAT: { path: ['zmq', 'format'], kind: 'string' },
  KV_INDEXER_LOG_LEVEL: { path: ['log', 'level'], kind: 'string' },
  KV_INDEXER_STATS_INTERVAL_SECONDS: { path: ['log', 'statsIntervalSeconds'], kind: 'number' },
};

export class ConfigError extends Error {}

/** Defaults ← environment. Throws ConfigError listing every problem with its path. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const raw: Record<string, Record<string, unknown>> = {};
  for (const [name, { path, kind }] of Object.entries(ENV_PATHS)) {
    const value = env[name];
    if (value === undefined) continue;
    const section = (raw[path[0]] ??= {});
    section[path[1]] =
      kind === 'int' || kind === 'number' ? (value.trim() === '' ? NaN : Number(value))
      : kind === 'list' ? value.split(',').map((s) => s.trim()).filter(Boolean)
      : value;
  }
  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  return parsed.data;
}

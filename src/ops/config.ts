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
  api: z
    .object({
      /** gRPC listen address. */
      grpcAddress: z.string().min(1).default('0.0.0.0:50051'),
      /** Largest accepted gRPC message. */
      maxMessageBytes: z.number().int().min(1024).default(16 * 1024 * 1024),
      maxCandidates: z.number().int().min(1).default(1024),
      /** Longest prompt (tokens or block keys × block size) a request may carry. */
      maxPromptTokens: z.number().int().min(1).default(262_144),
      /** Default TTL of speculative entries (Reserve, Score.speculate). */
      speculativeTtlMs: z.number().int().min(1).max(600_000).default(2_000),
      /** When the index backend fails: true = zero scores with `degraded`, false = UNAVAILABLE. */
      failOpen: z.boolean().default(true),
    })
    .default({
      grpcAddress: '0.0.0.0:50051',
      maxMessageBytes: 16 * 1024 * 1024,
      maxCandidates: 1024,
      maxPromptTokens: 262_144,
      speculativeTtlMs: 2_000,
      failOpen: true,
    }),
  metrics: z
    .object({
      /** HTTP listen address for /metrics and /healthz; port 0 = off. */
      host: z.string().min(1).default('0.0.0.0'),
      port: z.number().int().min(0).max(65535).default(9090),
    })
    .default({ host: '0.0.0.0', port: 9090 }),
  scoring: z
    .object({
      /** Weight of a block by the tier it is held on; unlisted tiers weigh `unknownTierWeight`. */
      tierWeights: z.record(z.string(), z.number().min(0)).default({ GPU: 1.0, CPU: 0.8 }),
      unknownTierWeight: z.number().min(0).default(1.0),
    })
    .default({ tierWeights: { GPU: 1.0, CPU: 0.8 }, unknownTierWeight: 1.0 }),
  log: z
    .object({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      statsIntervalSeconds: z.number().min(0).default(30),
    })
    .default({ level: 'info', statsIntervalSeconds: 30 }),
});

export type Config = z.infer<typeof ConfigSchema>;

/** Environment variable → config path. Lists are comma-separated. */
const ENV_PATHS: Record<string, { path: [string, string]; kind: 'int' | 'number' | 'string' | 'list' | 'bool' }> = {
  KV_INDEXER_BLOCK_SIZE: { path: ['keys', 'blockSize'], kind: 'int' },
  KV_INDEXER_HASH_SEED: { path: ['keys', 'hashSeed'], kind: 'string' },
  KV_INDEXER_MAX_ENTRIES: { path: ['index', 'maxEntries'], kind: 'int' },
  KV_INDEXER_INDEX_SHARDS: { path: ['index', 'shards'], kind: 'int' },
  KV_INDEXER_ZMQ_MODE: { path: ['zmq', 'mode'], kind: 'string' },
  KV_INDEXER_ZMQ_ADDRESSES: { path: ['zmq', 'addresses'], kind: 'list' },
  KV_INDEXER_ZMQ_FORMAT: { path: ['zmq', 'format'], kind: 'string' },
  KV_INDEXER_GRPC_ADDRESS: { path: ['api', 'grpcAddress'], kind: 'string' },
  KV_INDEXER_MAX_CANDIDATES: { path: ['api', 'maxCandidates'], kind: 'int' },
  KV_INDEXER_MAX_PROMPT_TOKENS: { path: ['api', 'maxPromptTokens'], kind: 'int' },
  KV_INDEXER_FAIL_OPEN: { path: ['api', 'failOpen'], kind: 'bool' },
  KV_INDEXER_METRICS_HOST: { path: ['metrics', 'host'], kind: 'string' },
  KV_INDEXER_METRICS_PORT: { path: ['metrics', 'port'], kind: 'int' },
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
      : kind === 'bool' ? parseBool(value)
      : value;
  }
  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  return parsed.data;
}

/** `true`/`1`/`yes`/`on` and their opposites; anything else is left as the string so that validation names it. */
function parseBool(value: string): boolean | string {
  const v = value.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(v)) return true;
  if (['false', '0', 'no', 'off'].includes(v)) return false;
  return value;
}

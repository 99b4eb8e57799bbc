import { z } from 'zod';
import { DEFAULT_TIER_WEIGHT_TABLE, UNKNOWN_TIER_WEIGHT, InvalidInputError } from '../common/index.js';
import { EncoderSchema } from './encoder-config.js';
import { SelectConfigSchema } from './select-config.js';
import { ApiConfigSchema } from './api-config.js';
import { EndpointsConfigSchema } from './endpoints-config.js';
import { LoadScrapeSchema } from './load-scrape-config.js';

/** http(s) image fetching (config `images.fetch`, src/prompt/image-fetch.ts, docs/models.md "Image URLs"). */
export const ImageFetchSchema = z
  .object({
    /** Off: http(s) images are sized from width/height or the model's default (`estimated`), never fetched. */
    enabled: z.boolean().default(false),
    /** Hosts that may be fetched: exact names or `*.example.com`; empty = none. */
    allowHosts: z.array(z.string().min(1)).default([]),
    /** Private, loopback and link-local addresses are refused unless set (a name resolving to one, too). */
    allowPrivateAddresses: z.boolean().default(false),
    /** Largest body, checked from Content-Length and again while the body streams. */
    maxBytes: z
      .number()
      .int()
      .min(1)
      .default(20 * 1024 * 1024),
    /** Whole fetch, redirects included. */
    timeoutMs: z.number().int().min(1).default(5000),
    /** Fetches in flight at once (further ones wait). */
    maxConcurrent: z.number().int().min(1).default(8),
    /** Redirects to the same host followed; a redirect to another host always fails. */
    maxRedirects: z.number().int().min(0).max(10).default(3),
    /** Bodies cached by URL (0 = no cache). */
    cacheEntries: z.number().int().min(0).default(256),
    cacheBytes: z
      .number()
      .int()
      .min(0)
      .default(256 * 1024 * 1024),
  })
  .strict()
  .prefault({});
export type ImageFetchConfig = z.output<typeof ImageFetchSchema>;

/**
 * The service configuration: one schema, embedded defaults, overridable by environment variables (KV_INDEXER_*).
 * Validated at start with readable errors.
 */
export const ConfigSchema = z.object({
  keys: z
    .object({
      blockSize: z.number().int().min(1).max(65536).default(16).meta({ env: 'KV_INDEXER_BLOCK_SIZE' }),
      hashSeed: z.string().default('').meta({ env: 'KV_INDEXER_HASH_SEED' }),
    })
    .prefault({}),
  index: z
    .object({
      /** `memory` (this process only) or `redis` (shared by replicas; see docs/redis.md). */
      backend: z.enum(['memory', 'redis']).default('memory').meta({ env: 'KV_INDEXER_INDEX_BACKEND' }),
      maxEntries: z.number().int().min(1).default(50_000_000).meta({ env: 'KV_INDEXER_MAX_ENTRIES' }),
      shards: z.number().int().min(1).max(4096).default(64).meta({ env: 'KV_INDEXER_INDEX_SHARDS' }),
      /** redis://[user:pass@]host:port[/db] (backend redis). */
      redisUrl: z.string().default('redis://127.0.0.1:6379').meta({ env: 'KV_INDEXER_REDIS_URL' }),
      /** Redis Cluster startup nodes `host:port` (backend redis); when set, used instead of redisUrl. */
      redisCluster: z
        .array(z.string().regex(/^[^\s:]+:\d{1,5}$/, 'expected host:port'))
        .default([])
        .meta({ env: 'KV_INDEXER_REDIS_CLUSTER' }),
      /** Key prefix; replicas sharing one index use the same prefix (and block size and seed). */
      redisKeyPrefix: z.string().min(1).default('kvi:').meta({ env: 'KV_INDEXER_REDIS_KEY_PREFIX' }),
      redisCommandTimeoutMs: z.number().int().min(1).default(1000).meta({ env: 'KV_INDEXER_REDIS_COMMAND_TIMEOUT_MS' }),
      /** TTL of block keys, refreshed by each add (0 = none); with maxmemory-policy volatile-lru only they are evictable. */
      redisEntryTtlMs: z.number().int().min(0).default(0).meta({ env: 'KV_INDEXER_REDIS_ENTRY_TTL_MS' }),
      /** ACL user of the Redis connection(s) ('' = the URL's, else `default`); see docs/security.md for its rights. */
      redisUsername: z.string().default('').meta({ env: 'KV_INDEXER_REDIS_USERNAME' }),
      /** File holding the Redis password (a mounted Secret); for a single server or every cluster node. '' = none. */
      redisPasswordFile: z.string().default('').meta({ env: 'KV_INDEXER_REDIS_PASSWORD_FILE' }),
      /** TLS to Redis (a rediss:// redisUrl implies it); PEM files: CA bundle ('' = Node's CAs), client cert + key (mTLS). */
      redisTls: z.boolean().default(false).meta({ env: 'KV_INDEXER_REDIS_TLS' }),
      redisTlsCaFile: z.string().default('').meta({ env: 'KV_INDEXER_REDIS_TLS_CA_FILE' }),
      redisTlsCertFile: z.string().default('').meta({ env: 'KV_INDEXER_REDIS_TLS_CERT_FILE' }),
      redisTlsKeyFile: z.string().default('').meta({ env: 'KV_INDEXER_REDIS_TLS_KEY_FILE' }),
    })
    .prefault({}),
  zmq: z
    .object({
      mode: z.enum(['bind', 'connect']).default('bind').meta({ env: 'KV_INDEXER_ZMQ_MODE' }),
      /** Bind addresses (mode bind) or PUB addresses to connect to (mode connect); empty: none of that kind. */
      addresses: z.array(z.string().min(1)).default(['tcp://*:5557']).meta({ env: 'KV_INDEXER_ZMQ_ADDRESSES' }),
      format: z.enum(['vllm', 'sglang']).default('vllm').meta({ env: 'KV_INDEXER_ZMQ_FORMAT' }),
      receiveHighWaterMark: z.number().int().min(1).default(100_000),
      /** Longer topic frames are dropped (`bad_topic`) before they are decoded, cached or logged. */
      maxTopicBytes: z.number().int().min(16).default(1024).meta({ env: 'KV_INDEXER_ZMQ_MAX_TOPIC_BYTES' }),
      /** Larger payload frames are dropped (`payload_too_large`, a lost batch) before decoding. */
      maxPayloadBytes: z
        .number()
        .int()
        .min(1024)
        .default(16 * 1024 * 1024)
        .meta({ env: 'KV_INDEXER_ZMQ_MAX_PAYLOAD_BYTES' }),
      /**
       * CURVE for connect-mode endpoints (publishers that are CURVE servers, e.g. a ZMQ proxy in front of vLLM): files
       * holding the publishers' public key and this service's key pair, Z85 text; all three or none ('' = plaintext).
       */
      curveServerPublicKeyFile: z.string().default('').meta({ env: 'KV_INDEXER_ZMQ_CURVE_SERVER_PUBLIC_KEY_FILE' }),
      curvePublicKeyFile: z.string().default('').meta({ env: 'KV_INDEXER_ZMQ_CURVE_PUBLIC_KEY_FILE' }),
      curveSecretKeyFile: z.string().default('').meta({ env: 'KV_INDEXER_ZMQ_CURVE_SECRET_KEY_FILE' }),
    })
    .prefault({}),
  api: ApiConfigSchema,
  models: z
    .object({
      /** Model registry file (YAML/JSON, docs/models.md) for chat/prompt input; '' = tokens/keys input only. */
      registry: z.string().default('').meta({ env: 'KV_INDEXER_MODELS' }),
    })
    .prefault({}),
  // http(s) image URLs in chat requests (src/prompt/image-fetch.ts, docs/models.md "Image URLs").
  images: z.object({ fetch: ImageFetchSchema }).prefault({}),
  // Which endpoints have processed which images, from their KV events (src/index/encoder-residency.ts).
  encoder: EncoderSchema,
  /** Load signals: scraping of vLLM's /metrics (load-scrape-config.ts). */
  load: z.object({ scrape: LoadScrapeSchema }).prefault({}),
  metrics: z
    .object({
      /** HTTP listen address for /metrics and /healthz (port 0 picks a free port). */
      host: z.string().min(1).default('0.0.0.0').meta({ env: 'KV_INDEXER_METRICS_HOST' }),
      port: z.number().int().min(0).max(65535).default(9090).meta({ env: 'KV_INDEXER_METRICS_PORT' }),
      /** Endpoints with their own per-endpoint series; the others are folded into endpoint="other". */
      maxEndpointSeries: z
        .number()
        .int()
        .min(0)
        .max(65_536)
        .default(256)
        .meta({ env: 'KV_INDEXER_METRICS_MAX_ENDPOINT_SERIES' }),
    })
    .prefault({}),
  scoring: z
    .object({
      /**
       * Weight of a block by the tier it is held on; unlisted tiers weigh `unknownTierWeight`. Setting it replaces
       * the whole table. The table is common/tier-weights.ts (the scorer's default too), which cites where
       * each weight comes from.
       */
      tierWeights: z.record(z.string(), z.number().min(0)).default(DEFAULT_TIER_WEIGHT_TABLE),
      unknownTierWeight: z.number().min(0).default(UNKNOWN_TIER_WEIGHT),
    })
    .prefault({}),
  // Event transport (src/events, docs/events.md): connect-mode endpoints, per-endpoint queues and staleness.
  endpoints: EndpointsConfigSchema,
  // Discovery endpoints (a vLLM HTTP base URL as an endpoint spec): polling of GET /kv_event_sources (vLLM #55844).
  discovery: z
    .object({
      /** Time between polls while answers are good. */
      intervalMs: z.number().int().min(10).default(5_000).meta({ env: 'KV_INDEXER_DISCOVERY_INTERVAL_MS' }),
      /** A poll must be answered completely within this. */
      timeoutMs: z.number().int().min(10).default(2_000).meta({ env: 'KV_INDEXER_DISCOVERY_TIMEOUT_MS' }),
      /** After n refused answers in a row the next poll waits min(maxBackoffMs, intervalMs × 2^n). */
      maxBackoffMs: z.number().int().min(10).default(60_000).meta({ env: 'KV_INDEXER_DISCOVERY_MAX_BACKOFF_MS' }),
      /** Longer answers are refused (`too_large`) unparsed. */
      maxBodyBytes: z
        .number()
        .int()
        .min(256)
        .max(16 * 1024 * 1024)
        .default(65_536)
        .meta({ env: 'KV_INDEXER_DISCOVERY_MAX_BODY_BYTES' }),
      /** Answers listing more sources are refused (`too_many_sources`); vLLM lists one per data-parallel rank. */
      maxSources: z.number().int().min(1).max(64).default(64).meta({ env: 'KV_INDEXER_DISCOVERY_MAX_SOURCES' }),
    })
    .prefault({}),
  // Gap recovery over the publishers' replay ROUTERs (spec/vllm-kv-events.md §1).
  replay: z
    .object({
      enabled: z
        .union([z.boolean(), z.enum(['true', 'false']).transform((v) => v === 'true')])
        .default(true)
        .meta({ env: 'KV_INDEXER_REPLAY_ENABLED' }),
      timeoutMs: z.number().int().min(1).default(2_000).meta({ env: 'KV_INDEXER_REPLAY_TIMEOUT_MS' }),
      /** A started replay that pauses this long lost its tail (the publisher's send high-water mark): resumed at once. */
      idleTimeoutMs: z.number().int().min(1).default(500).meta({ env: 'KV_INDEXER_REPLAY_IDLE_TIMEOUT_MS' }),
      cooldownMs: z.number().int().min(0).default(5_000).meta({ env: 'KV_INDEXER_REPLAY_COOLDOWN_MS' }),
      maxConcurrent: z.number().int().min(1).default(4).meta({ env: 'KV_INDEXER_REPLAY_MAX_CONCURRENT' }),
      /** When replay cannot fill a hole: clear the endpoint and rebuild from live events, or keep it marked degraded. */
      onUnrecoverable: z
        .enum(['clear', 'degrade'])
        .default('clear')
        .meta({ env: 'KV_INDEXER_REPLAY_ON_UNRECOVERABLE' }),
      /** Bind mode: replay ROUTER port of topic `<ip>:<port>` is `tcp://<ip>:<bindPort + rank>` (0 = no replay). */
      bindPort: z.number().int().min(0).max(65535).default(0).meta({ env: 'KV_INDEXER_REPLAY_BIND_PORT' }),
      /** A sequence number this far below the last one is a publisher restart whatever its timestamp. */
      restartDistance: z.number().int().min(1).default(1_000_000).meta({ env: 'KV_INDEXER_REPLAY_RESTART_DISTANCE' }),
    })
    .prefault({}),
  // Select: cache against load, in-flight reservations (src/ops/select-config.ts).
  select: SelectConfigSchema,
  log: z
    .object({
      level: z
        .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
        .default('info')
        .meta({ env: 'KV_INDEXER_LOG_LEVEL' }),
      statsIntervalSeconds: z.number().min(0).default(30).meta({ env: 'KV_INDEXER_STATS_INTERVAL_SECONDS' }),
    })
    .prefault({}),
});

export type Config = z.infer<typeof ConfigSchema>;

type EnvKind = 'int' | 'number' | 'string' | 'list' | 'bool';

/**
 * Environment variable → config path, and how its text is read (lists are comma-separated). Derived from the schema:
 * a setting names its variable in its `env` metadata, and the variable's kind is the setting's type. Paths are
 * `section.key`, or `section.group.key` inside a nested section (load.scrape.intervalMs).
 */
export const ENV_PATHS: Record<string, { path: string[]; kind: EnvKind }> = envTable();

function envTable(): Record<string, { path: string[]; kind: EnvKind }> {
  const table: Record<string, { path: string[]; kind: EnvKind }> = {};
  const walk = (shape: Record<string, z.ZodType>, prefix: string[]) => {
    for (const [key, field] of Object.entries(shape)) {
      const path = [...prefix, key];
      const env = (field.meta() as { env?: string } | undefined)?.env;
      if (env) table[env] = { path, kind: envKind(field, path.join('.')) };
      const inner = objectOf(field);
      if (inner && prefix.length <= 1) walk(inner.shape as Record<string, z.ZodType>, path); // a section, a nested one
    }
  };
  walk(ConfigSchema.shape as unknown as Record<string, z.ZodType>, []);
  return table;
}

/** The object schema under a field's default / prefault / optional wrappers, or null when it is not an object. */
function objectOf(field: z.ZodType): z.ZodObject | null {
  let t: z.ZodType = field;
  while (t instanceof z.ZodDefault || t instanceof z.ZodPrefault || t instanceof z.ZodOptional)
    t = t.unwrap() as z.ZodType;
  return t instanceof z.ZodObject ? t : null;
}

function envKind(field: z.ZodType, path: string): EnvKind {
  let t: z.ZodType = field;
  while (t instanceof z.ZodDefault || t instanceof z.ZodPrefault || t instanceof z.ZodOptional)
    t = t.unwrap() as z.ZodType;
  if (t instanceof z.ZodNumber) return t.format === 'safeint' ? 'int' : 'number';
  if (t instanceof z.ZodBoolean) return 'bool';
  if (t instanceof z.ZodArray) return 'list';
  // A union (replay.enabled: a boolean, or "true"/"false" text) is handed over as text for the schema to read.
  if (t instanceof z.ZodString || t instanceof z.ZodEnum || t instanceof z.ZodUnion) return 'string';
  throw new Error(`${path}: no environment reading for this setting's type`);
}

export class ConfigError extends InvalidInputError {}

/** A partial configuration, as a file, the environment or flags give it: merged key by key (nested sections too). */
export type RawConfig = Record<string, Record<string, unknown>>;

/** The KV_INDEXER_* variables as a partial configuration. */
export function configFromEnv(env: NodeJS.ProcessEnv): RawConfig {
  const raw: RawConfig = {};
  for (const [name, { path, kind }] of Object.entries(ENV_PATHS)) {
    const value = env[name];
    if (value === undefined) continue;
    let section: Record<string, unknown> = (raw[path[0]] ??= {});
    for (const key of path.slice(1, -1)) section = (section[key] ??= {}) as Record<string, unknown>;
    section[path[path.length - 1]] =
      kind === 'int' || kind === 'number'
        ? value.trim() === ''
          ? NaN
          : Number(value)
        : kind === 'list'
          ? value
              .split(',')
              .map((s) => s.trim())
              .filter(Boolean)
          : kind === 'bool'
            ? parseBool(value)
            : value;
  }
  return raw;
}

/**
 * Validates merged layers (later layers win, key by key within a section and within a nested section such as
 * load.scrape: a file's load.scrape.intervalMs and the environment's load.scrape.enabled both hold). A setting whose
 * value is itself an object (scoring.tierWeights) is replaced whole. Throws ConfigError listing every problem.
 */
export function resolveConfig(...layers: RawConfig[]): Config {
  const raw: RawConfig = {};
  for (const layer of layers) {
    for (const [section, values] of Object.entries(layer)) {
      if (!isPlainObject(values)) {
        throw new ConfigError(`invalid configuration:\n  ${section}: must be an object of settings`);
      }
      const schema = ConfigSchema.shape[section as keyof typeof ConfigSchema.shape] as z.ZodType | undefined;
      const merged: Record<string, unknown> = { ...(raw[section] ?? {}) };
      const shape = schema ? (objectOf(schema)?.shape as Record<string, z.ZodType> | undefined) : undefined;
      for (const [key, value] of Object.entries(values)) {
        const nested = shape?.[key] ? objectOf(shape[key]) : null;
        merged[key] =
          nested && isPlainObject(value) && isPlainObject(merged[key]) ? { ...merged[key], ...value } : value;
      }
      raw[section] = merged;
    }
  }
  const parsed = ConfigSchema.strict().safeParse(raw);
  const lines = unknownKeys(raw);
  if (!parsed.success)
    lines.push(...parsed.error.issues.map((i) => `  ${i.path.join('.') || '(top level)'}: ${i.message}`));
  if (lines.length > 0 || !parsed.success) throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  return parsed.data;
}

/** A misspelt key would silently keep its default: name every key the schema does not know. */
function unknownKeys(raw: RawConfig): string[] {
  const problems: string[] = [];
  for (const [section, values] of Object.entries(raw)) {
    const schema = ConfigSchema.shape[section as keyof typeof ConfigSchema.shape];
    if (!schema) continue; // reported by strict()
    const known = Object.keys(schema.unwrap().shape);
    for (const key of Object.keys(values)) {
      if (!known.includes(key)) problems.push(`  ${section}.${key}: unknown setting (known: ${known.join(', ')})`);
    }
  }
  return problems;
}

/** Defaults ← environment. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  return resolveConfig(configFromEnv(env));
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** `true`/`1`/`yes`/`on` and their opposites; anything else is left as the string so that validation names it. */
function parseBool(value: string): boolean | string {
  const v = value.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(v)) return true;
  if (['false', '0', 'no', 'off'].includes(v)) return false;
  return value;
}

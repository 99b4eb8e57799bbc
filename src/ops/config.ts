import { z } from 'zod';
import { DEFAULT_TIER_WEIGHT_TABLE, UNKNOWN_TIER_WEIGHT } from '../common/index.js';
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
    maxBytes: z.number().int().min(1).default(20 * 1024 * 1024),
    /** Whole fetch, redirects included. */
    timeoutMs: z.number().int().min(1).default(5000),
    /** Fetches in flight at once (further ones wait). */
    maxConcurrent: z.number().int().min(1).default(8),
    /** Redirects to the same host followed; a redirect to another host always fails. */
    maxRedirects: z.number().int().min(0).max(10).default(3),
    /** Bodies cached by URL (0 = no cache). */
    cacheEntries: z.number().int().min(0).default(256),
    cacheBytes: z.number().int().min(0).default(256 * 1024 * 1024),
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
      blockSize: z.number().int().min(1).max(65536).default(16),
      hashSeed: z.string().default(''),
    })
    .default({ blockSize: 16, hashSeed: '' }),
  index: z
    .object({
      /** `memory` (this process only) or `redis` (shared by replicas; see docs/redis.md). */
      backend: z.enum(['memory', 'redis']).default('memory'),
      maxEntries: z.number().int().min(1).default(50_000_000),
      shards: z.number().int().min(1).max(4096).default(64),
      /** redis://[user:pass@]host:port[/db] (backend redis). */
      redisUrl: z.string().default('redis://127.0.0.1:6379'),
      /** Redis Cluster startup nodes `host:port` (backend redis); when set, used instead of redisUrl. */
      redisCluster: z.array(z.string().regex(/^[^\s:]+:\d{1,5}$/, 'expected host:port')).default([]),
      /** Key prefix; replicas sharing one index use the same prefix (and block size and seed). */
      redisKeyPrefix: z.string().min(1).default('kvi:'),
      redisCommandTimeoutMs: z.number().int().min(1).default(1000),
      /** TTL of block keys, refreshed by each add (0 = none); with maxmemory-policy volatile-lru only they are evictable. */
      redisEntryTtlMs: z.number().int().min(0).default(0),
      /** ACL user of the Redis connection(s) ('' = the URL's, else `default`); see docs/security.md for its rights. */
      redisUsername: z.string().default(''),
      /** File holding the Redis password (a mounted Secret); for a single server or every cluster node. '' = none. */
      redisPasswordFile: z.string().default(''),
      /** TLS to Redis (a rediss:// redisUrl implies it); PEM files: CA bundle ('' = Node's CAs), client cert + key (mTLS). */
      redisTls: z.boolean().default(false),
      redisTlsCaFile: z.string().default(''),
      redisTlsCertFile: z.string().default(''),
      redisTlsKeyFile: z.string().default(''),
    })
    .default({
      backend: 'memory',
      maxEntries: 50_000_000,
      shards: 64,
      redisUrl: 'redis://127.0.0.1:6379',
      redisCluster: [],
      redisKeyPrefix: 'kvi:',
      redisCommandTimeoutMs: 1000,
      redisEntryTtlMs: 0,
      redisUsername: '',
      redisPasswordFile: '',
      redisTls: false,
      redisTlsCaFile: '',
      redisTlsCertFile: '',
      redisTlsKeyFile: '',
    }),
  zmq: z
    .object({
      mode: z.enum(['bind', 'connect']).default('bind'),
      /** Bind addresses (mode bind) or PUB addresses to connect to (mode connect); empty: none of that kind. */
      addresses: z.array(z.string().min(1)).default(['tcp://*:5557']),
      format: z.enum(['vllm', 'sglang']).default('vllm'),
      receiveHighWaterMark: z.number().int().min(1).default(100_000),
      /** Longer topic frames are dropped (`bad_topic`) before they are decoded, cached or logged. */
      maxTopicBytes: z.number().int().min(16).default(1024),
      /** Larger payload frames are dropped (`payload_too_large`, a lost batch) before decoding. */
      maxPayloadBytes: z.number().int().min(1024).default(16 * 1024 * 1024),
      /**
       * CURVE for connect-mode endpoints (publishers that are CURVE servers, e.g. a ZMQ proxy in front of vLLM): files
       * holding the publishers' public key and this service's key pair, Z85 text; all three or none ('' = plaintext).
       */
      curveServerPublicKeyFile: z.string().default(''),
      curvePublicKeyFile: z.string().default(''),
      curveSecretKeyFile: z.string().default(''),
    })
    .default({
      mode: 'bind',
      addresses: ['tcp://*:5557'],
      format: 'vllm',
      receiveHighWaterMark: 100_000,
      maxTopicBytes: 1024,
      maxPayloadBytes: 16 * 1024 * 1024,
      curveServerPublicKeyFile: '',
      curvePublicKeyFile: '',
      curveSecretKeyFile: '',
    }),
  api: z
    .object({
      /** gRPC listen address. */
      grpcAddress: z.string().min(1).default('0.0.0.0:50051'),
      /** Largest accepted gRPC message. */
      maxMessageBytes: z.number().int().min(1024).default(16 * 1024 * 1024),
      maxCandidates: z.number().int().min(1).default(1024),
      /** Longest prompt (tokens or block keys × block size) a request may carry. */
      maxPromptTokens: z.number().int().min(1).default(262_144),
      /** Multimodal items a tokens request may carry (each one's identifier is hashed into every block it covers). */
      maxItems: z.number().int().min(1).default(64),
      /** Default TTL of speculative entries (Reserve, Score.speculate). */
      speculativeTtlMs: z.number().int().min(1).max(600_000).default(2_000),
      /** When the index backend fails: true = zero scores with `degraded`, false = UNAVAILABLE. */
      failOpen: z.boolean().default(true),
      /** TLS: PEM files; empty = plaintext. With `tlsClientCaFile`, clients must present a certificate it signed (mTLS). */
      tlsCertFile: z.string().default(''),
      tlsKeyFile: z.string().default(''),
      tlsClientCaFile: z.string().default(''),
      /** File holding the bearer token required by AddEndpoint/RemoveEndpoint/ClearEndpoint; empty = no check. */
      adminTokenFile: z.string().default(''),
      /**
       * Host names (not only IP literals) as endpoints of Reserve, Score.speculate and, without an admin token,
       * AddEndpoint (docs/security.md). Off: a caller cannot make the service resolve or connect to arbitrary names.
       */
      allowHostnameEndpoints: z.boolean().default(false),
      /** Speculative entries (Reserve, Score.speculate) one caller (peer address) may hold unexpired; 0 = no bound. */
      maxSpeculativePerCaller: z.number().int().min(0).default(100_000),
      /** HTTP/2 hygiene (docs/configuration.md, "gRPC connections"): idle and maximum age of a connection, grace. */
      maxConnectionIdleMs: z.number().int().min(1).default(300_000),
      maxConnectionAgeMs: z.number().int().min(1).default(1_800_000),
      maxConnectionAgeGraceMs: z.number().int().min(0).default(30_000),
      /** Server PINGs after this much silence; no acknowledgement within keepaliveTimeoutMs closes the connection. */
      keepaliveTimeMs: z.number().int().min(1).default(60_000),
      keepaliveTimeoutMs: z.number().int().min(1).default(20_000),
      /** Calls in flight per connection; open connections; time for a new connection's TLS + HTTP/2 handshake. */
      maxConcurrentStreams: z.number().int().min(1).default(1024),
      maxConnections: z.number().int().min(1).default(4096),
      handshakeTimeoutMs: z.number().int().min(1).default(10_000),
    })
    .default({
      grpcAddress: '0.0.0.0:50051',
      maxMessageBytes: 16 * 1024 * 1024,
      maxCandidates: 1024,
      maxPromptTokens: 262_144,
      maxItems: 64,
      speculativeTtlMs: 2_000,
      failOpen: true,
      tlsCertFile: '',
      tlsKeyFile: '',
      tlsClientCaFile: '',
      adminTokenFile: '',
      allowHostnameEndpoints: false,
      maxSpeculativePerCaller: 100_000,
      maxConnectionIdleMs: 300_000,
      maxConnectionAgeMs: 1_800_000,
      maxConnectionAgeGraceMs: 30_000,
      keepaliveTimeMs: 60_000,
      keepaliveTimeoutMs: 20_000,
      maxConcurrentStreams: 1024,
      maxConnections: 4096,
      handshakeTimeoutMs: 10_000,
    }),
  models: z
    .object({
      /** Model registry file (YAML/JSON, docs/models.md) for chat/prompt input; '' = tokens/keys input only. */
      registry: z.string().default(''),
    })
    .default({ registry: '' }),
  // http(s) image URLs in chat requests (src/prompt/image-fetch.ts, docs/models.md "Image URLs").
  images: z.object({ fetch: ImageFetchSchema }).prefault({}),
  /** Load signals: scraping of vLLM's /metrics (load-scrape-config.ts). */
  load: z.object({ scrape: LoadScrapeSchema }).prefault({}),
  metrics: z
    .object({
      /** HTTP listen address for /metrics and /healthz (port 0 picks a free port). */
      host: z.string().min(1).default('0.0.0.0'),
      port: z.number().int().min(0).max(65535).default(9090),
      /** Endpoints with their own per-endpoint series; the others are folded into endpoint="other". */
      maxEndpointSeries: z.number().int().min(0).max(65_536).default(256),
    })
    .default({ host: '0.0.0.0', port: 9090, maxEndpointSeries: 256 }),
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
    .default({ tierWeights: DEFAULT_TIER_WEIGHT_TABLE, unknownTierWeight: UNKNOWN_TIER_WEIGHT }),
  // Event transport (src/events, docs/events.md): connect-mode endpoints, per-endpoint queues and staleness.
  endpoints: z
    .object({
      /**
       * Connect-mode endpoint specs `tcp://ip:5557[;replay=tcp://ip:5558][;ranks=n][;serving=ip:8000|identities=…]` or
       * a vLLM HTTP base URL `http://ip:8000` to discover them from (docs/events.md), connected besides zmq.*.
       */
      static: z.array(z.string().min(1)).default([]),
      /** YAML/JSON file listing connect-mode endpoints, watched for changes ('' = none). */
      file: z.string().default(''),
      fileCheckSeconds: z.number().min(0.1).default(2),
      /** An endpoint silent for this long is reported stale. */
      staleSeconds: z.number().min(1).default(60),
      /**
       * An endpoint silent for this long has its entries cleared (0 = never). vLLM publishes only when its cache
       * changes, so an idle pod is silent too: set this well above the longest idle time you expect.
       */
      clearStaleSeconds: z.number().min(0).default(0),
      /** Decoded batches queued per endpoint; beyond it batches are dropped and the endpoint resyncs by replay. */
      queueBatches: z.number().int().min(1).default(10_000),
      /**
       * Connect mode with several replicas sharing a Redis index: the static endpoints are owned through leases of
       * this TTL in Redis, so each is ingested by one replica at a time (0 = off: connect to every static endpoint).
       */
      leaseTtlMs: z.number().int().min(0).default(0),
      /** Endpoint identities (endpoint × data-parallel rank) tracked at once; batches of further ones are dropped. */
      maxTracked: z.number().int().min(1).max(65_536).default(16_384),
      /**
       * Default store bound of every endpoint (a spec's max_blocks/ttl overrides it): engine blocks kept per endpoint
       * identity, oldest dropped first (0 = no limit). For publishers that never announce removals (LMCache).
       */
      storeBoundMaxBlocks: z.number().int().min(0).max(1e9).default(0),
      /** Default store bound TTL: an engine block not stored again for this long is dropped (0 = never). */
      storeBoundTtlSeconds: z.number().min(0).max(30 * 86400).default(0),
    })
    .default({
      static: [],
      file: '',
      fileCheckSeconds: 2,
      staleSeconds: 60,
      clearStaleSeconds: 0,
      queueBatches: 10_000,
      leaseTtlMs: 0,
      maxTracked: 16_384,
      storeBoundMaxBlocks: 0,
      storeBoundTtlSeconds: 0,
    }),
  // Discovery endpoints (a vLLM HTTP base URL as an endpoint spec): polling of GET /kv_event_sources (vLLM #55844).
  discovery: z
    .object({
      /** Time between polls while answers are good. */
      intervalMs: z.number().int().min(10).default(5_000),
      /** A poll must be answered completely within this. */
      timeoutMs: z.number().int().min(10).default(2_000),
      /** After n refused answers in a row the next poll waits min(maxBackoffMs, intervalMs × 2^n). */
      maxBackoffMs: z.number().int().min(10).default(60_000),
      /** Longer answers are refused (`too_large`) unparsed. */
      maxBodyBytes: z.number().int().min(256).max(16 * 1024 * 1024).default(65_536),
      /** Answers listing more sources are refused (`too_many_sources`); vLLM lists one per data-parallel rank. */
      maxSources: z.number().int().min(1).max(64).default(64),
    })
    .default({ intervalMs: 5_000, timeoutMs: 2_000, maxBackoffMs: 60_000, maxBodyBytes: 65_536, maxSources: 64 }),
  // Gap recovery over the publishers' replay ROUTERs (spec/vllm-kv-events.md §1).
  replay: z
    .object({
      enabled: z.union([z.boolean(), z.enum(['true', 'false']).transform((v) => v === 'true')]).default(true),
      timeoutMs: z.number().int().min(1).default(2_000),
      /** A started replay that pauses this long lost its tail (the publisher's send high-water mark): resumed at once. */
      idleTimeoutMs: z.number().int().min(1).default(500),
      cooldownMs: z.number().int().min(0).default(5_000),
      maxConcurrent: z.number().int().min(1).default(4),
      /** When replay cannot fill a hole: clear the endpoint and rebuild from live events, or keep it marked degraded. */
      onUnrecoverable: z.enum(['clear', 'degrade']).default('clear'),
      /** Bind mode: replay ROUTER port of topic `<ip>:<port>` is `tcp://<ip>:<bindPort + rank>` (0 = no replay). */
      bindPort: z.number().int().min(0).max(65535).default(0),
      /** A sequence number this far below the last one is a publisher restart whatever its timestamp. */
      restartDistance: z.number().int().min(1).default(1_000_000),
    })
    .default({ enabled: true, timeoutMs: 2_000, idleTimeoutMs: 500, cooldownMs: 5_000, maxConcurrent: 4, onUnrecoverable: 'clear', bindPort: 0, restartDistance: 1_000_000 }),
  log: z
    .object({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      statsIntervalSeconds: z.number().min(0).default(30),
    })
    .default({ level: 'info', statsIntervalSeconds: 30 }),
});

export type Config = z.infer<typeof ConfigSchema>;

/** Environment variable → config path. Lists are comma-separated. */
export const ENV_PATHS: Record<string, { path: [string, string]; kind: 'int' | 'number' | 'string' | 'list' | 'bool' }> = {
  KV_INDEXER_BLOCK_SIZE: { path: ['keys', 'blockSize'], kind: 'int' },
  KV_INDEXER_HASH_SEED: { path: ['keys', 'hashSeed'], kind: 'string' },
  KV_INDEXER_MAX_ENTRIES: { path: ['index', 'maxEntries'], kind: 'int' },
  KV_INDEXER_INDEX_SHARDS: { path: ['index', 'shards'], kind: 'int' },
  KV_INDEXER_INDEX_BACKEND: { path: ['index', 'backend'], kind: 'string' },
  KV_INDEXER_REDIS_URL: { path: ['index', 'redisUrl'], kind: 'string' },
  KV_INDEXER_REDIS_CLUSTER: { path: ['index', 'redisCluster'], kind: 'list' },
  KV_INDEXER_REDIS_KEY_PREFIX: { path: ['index', 'redisKeyPrefix'], kind: 'string' },
  KV_INDEXER_REDIS_COMMAND_TIMEOUT_MS: { path: ['index', 'redisCommandTimeoutMs'], kind: 'int' },
  KV_INDEXER_REDIS_ENTRY_TTL_MS: { path: ['index', 'redisEntryTtlMs'], kind: 'int' },
  KV_INDEXER_REDIS_USERNAME: { path: ['index', 'redisUsername'], kind: 'string' },
  KV_INDEXER_REDIS_PASSWORD_FILE: { path: ['index', 'redisPasswordFile'], kind: 'string' },
  KV_INDEXER_REDIS_TLS: { path: ['index', 'redisTls'], kind: 'bool' },
  KV_INDEXER_REDIS_TLS_CA_FILE: { path: ['index', 'redisTlsCaFile'], kind: 'string' },
  KV_INDEXER_REDIS_TLS_CERT_FILE: { path: ['index', 'redisTlsCertFile'], kind: 'string' },
  KV_INDEXER_REDIS_TLS_KEY_FILE: { path: ['index', 'redisTlsKeyFile'], kind: 'string' },
  KV_INDEXER_ZMQ_MODE: { path: ['zmq', 'mode'], kind: 'string' },
  KV_INDEXER_ZMQ_ADDRESSES: { path: ['zmq', 'addresses'], kind: 'list' },
  KV_INDEXER_ZMQ_FORMAT: { path: ['zmq', 'format'], kind: 'string' },
  KV_INDEXER_ZMQ_MAX_TOPIC_BYTES: { path: ['zmq', 'maxTopicBytes'], kind: 'int' },
  KV_INDEXER_ZMQ_MAX_PAYLOAD_BYTES: { path: ['zmq', 'maxPayloadBytes'], kind: 'int' },
  KV_INDEXER_ZMQ_CURVE_SERVER_PUBLIC_KEY_FILE: { path: ['zmq', 'curveServerPublicKeyFile'], kind: 'string' },
  KV_INDEXER_ZMQ_CURVE_PUBLIC_KEY_FILE: { path: ['zmq', 'curvePublicKeyFile'], kind: 'string' },
  KV_INDEXER_ZMQ_CURVE_SECRET_KEY_FILE: { path: ['zmq', 'curveSecretKeyFile'], kind: 'string' },
  KV_INDEXER_GRPC_ADDRESS: { path: ['api', 'grpcAddress'], kind: 'string' },
  KV_INDEXER_MAX_CANDIDATES: { path: ['api', 'maxCandidates'], kind: 'int' },
  KV_INDEXER_MAX_PROMPT_TOKENS: { path: ['api', 'maxPromptTokens'], kind: 'int' },
  KV_INDEXER_MAX_ITEMS: { path: ['api', 'maxItems'], kind: 'int' },
  KV_INDEXER_FAIL_OPEN: { path: ['api', 'failOpen'], kind: 'bool' },
  KV_INDEXER_MAX_MESSAGE_BYTES: { path: ['api', 'maxMessageBytes'], kind: 'int' },
  KV_INDEXER_SPECULATIVE_TTL_MS: { path: ['api', 'speculativeTtlMs'], kind: 'int' },
  KV_INDEXER_TLS_CERT_FILE: { path: ['api', 'tlsCertFile'], kind: 'string' },
  KV_INDEXER_TLS_KEY_FILE: { path: ['api', 'tlsKeyFile'], kind: 'string' },
  KV_INDEXER_TLS_CLIENT_CA_FILE: { path: ['api', 'tlsClientCaFile'], kind: 'string' },
  KV_INDEXER_ADMIN_TOKEN_FILE: { path: ['api', 'adminTokenFile'], kind: 'string' },
  KV_INDEXER_ALLOW_HOSTNAME_ENDPOINTS: { path: ['api', 'allowHostnameEndpoints'], kind: 'bool' },
  KV_INDEXER_MAX_SPECULATIVE_PER_CALLER: { path: ['api', 'maxSpeculativePerCaller'], kind: 'int' },
  KV_INDEXER_GRPC_MAX_CONNECTION_IDLE_MS: { path: ['api', 'maxConnectionIdleMs'], kind: 'int' },
  KV_INDEXER_GRPC_MAX_CONNECTION_AGE_MS: { path: ['api', 'maxConnectionAgeMs'], kind: 'int' },
  KV_INDEXER_GRPC_MAX_CONNECTION_AGE_GRACE_MS: { path: ['api', 'maxConnectionAgeGraceMs'], kind: 'int' },
  KV_INDEXER_GRPC_KEEPALIVE_TIME_MS: { path: ['api', 'keepaliveTimeMs'], kind: 'int' },
  KV_INDEXER_GRPC_KEEPALIVE_TIMEOUT_MS: { path: ['api', 'keepaliveTimeoutMs'], kind: 'int' },
  KV_INDEXER_GRPC_MAX_CONCURRENT_STREAMS: { path: ['api', 'maxConcurrentStreams'], kind: 'int' },
  KV_INDEXER_GRPC_MAX_CONNECTIONS: { path: ['api', 'maxConnections'], kind: 'int' },
  KV_INDEXER_GRPC_HANDSHAKE_TIMEOUT_MS: { path: ['api', 'handshakeTimeoutMs'], kind: 'int' },
  KV_INDEXER_MODELS: { path: ['models', 'registry'], kind: 'string' },
  KV_INDEXER_METRICS_HOST: { path: ['metrics', 'host'], kind: 'string' },
  KV_INDEXER_METRICS_PORT: { path: ['metrics', 'port'], kind: 'int' },
  KV_INDEXER_METRICS_MAX_ENDPOINT_SERIES: { path: ['metrics', 'maxEndpointSeries'], kind: 'int' },
  KV_INDEXER_ENDPOINTS: { path: ['endpoints', 'static'], kind: 'list' },
  KV_INDEXER_ENDPOINTS_FILE: { path: ['endpoints', 'file'], kind: 'string' },
  KV_INDEXER_ENDPOINTS_FILE_CHECK_SECONDS: { path: ['endpoints', 'fileCheckSeconds'], kind: 'number' },
  KV_INDEXER_STALE_SECONDS: { path: ['endpoints', 'staleSeconds'], kind: 'number' },
  KV_INDEXER_CLEAR_STALE_SECONDS: { path: ['endpoints', 'clearStaleSeconds'], kind: 'number' },
  KV_INDEXER_QUEUE_BATCHES: { path: ['endpoints', 'queueBatches'], kind: 'int' },
  KV_INDEXER_ENDPOINT_LEASE_TTL_MS: { path: ['endpoints', 'leaseTtlMs'], kind: 'int' },
  KV_INDEXER_MAX_ENDPOINTS: { path: ['endpoints', 'maxTracked'], kind: 'int' },
  KV_INDEXER_DISCOVERY_INTERVAL_MS: { path: ['discovery', 'intervalMs'], kind: 'int' },
  KV_INDEXER_DISCOVERY_TIMEOUT_MS: { path: ['discovery', 'timeoutMs'], kind: 'int' },
  KV_INDEXER_DISCOVERY_MAX_BACKOFF_MS: { path: ['discovery', 'maxBackoffMs'], kind: 'int' },
  KV_INDEXER_DISCOVERY_MAX_BODY_BYTES: { path: ['discovery', 'maxBodyBytes'], kind: 'int' },
  KV_INDEXER_DISCOVERY_MAX_SOURCES: { path: ['discovery', 'maxSources'], kind: 'int' },
  KV_INDEXER_STORE_BOUND_MAX_BLOCKS: { path: ['endpoints', 'storeBoundMaxBlocks'], kind: 'int' },
  KV_INDEXER_STORE_BOUND_TTL_SECONDS: { path: ['endpoints', 'storeBoundTtlSeconds'], kind: 'number' },
  KV_INDEXER_REPLAY_ENABLED: { path: ['replay', 'enabled'], kind: 'string' },
  KV_INDEXER_REPLAY_TIMEOUT_MS: { path: ['replay', 'timeoutMs'], kind: 'int' },
  KV_INDEXER_REPLAY_IDLE_TIMEOUT_MS: { path: ['replay', 'idleTimeoutMs'], kind: 'int' },
  KV_INDEXER_REPLAY_COOLDOWN_MS: { path: ['replay', 'cooldownMs'], kind: 'int' },
  KV_INDEXER_REPLAY_MAX_CONCURRENT: { path: ['replay', 'maxConcurrent'], kind: 'int' },
  KV_INDEXER_REPLAY_ON_UNRECOVERABLE: { path: ['replay', 'onUnrecoverable'], kind: 'string' },
  KV_INDEXER_REPLAY_BIND_PORT: { path: ['replay', 'bindPort'], kind: 'int' },
  KV_INDEXER_REPLAY_RESTART_DISTANCE: { path: ['replay', 'restartDistance'], kind: 'int' },
  KV_INDEXER_LOG_LEVEL: { path: ['log', 'level'], kind: 'string' },
  KV_INDEXER_STATS_INTERVAL_SECONDS: { path: ['log', 'statsIntervalSeconds'], kind: 'number' },
};

export class ConfigError extends Error {}

/** A partial configuration, as a file, the environment or flags give it: merged section by section. */
export type RawConfig = Record<string, Record<string, unknown>>;

/** The KV_INDEXER_* variables as a partial configuration. */
export function configFromEnv(env: NodeJS.ProcessEnv): RawConfig {
  const raw: RawConfig = {};
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
  return raw;
}

/** Validates merged layers (later layers win, key by key within a section). Throws ConfigError listing every problem. */
export function resolveConfig(...layers: RawConfig[]): Config {
  const raw: RawConfig = {};
  for (const layer of layers) {
    for (const [section, values] of Object.entries(layer)) {
      if (values === null || typeof values !== 'object' || Array.isArray(values)) {
        throw new ConfigError(`invalid configuration:\n  ${section}: must be an object of settings`);
      }
      raw[section] = { ...(raw[section] ?? {}), ...values };
    }
  }
  const parsed = ConfigSchema.strict().safeParse(raw);
  const lines = unknownKeys(raw);
  if (!parsed.success) lines.push(...parsed.error.issues.map((i) => `  ${i.path.join('.') || '(top level)'}: ${i.message}`));
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

/** `true`/`1`/`yes`/`on` and their opposites; anything else is left as the string so that validation names it. */
function parseBool(value: string): boolean | string {
  const v = value.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(v)) return true;
  if (['false', '0', 'no', 'off'].includes(v)) return false;
  return value;
}

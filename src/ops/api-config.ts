import { z } from 'zod';

/** The gRPC API (config `api`): address, request limits, TLS and admin token, HTTP/2 hygiene (docs/configuration.md). */
export const ApiConfigSchema = z
  .object({
    /** gRPC listen address. */
    grpcAddress: z.string().min(1).default('0.0.0.0:50051').meta({ env: 'KV_INDEXER_GRPC_ADDRESS' }),
    /** Largest accepted gRPC message. */
    maxMessageBytes: z
      .number()
      .int()
      .min(1024)
      .default(16 * 1024 * 1024)
      .meta({ env: 'KV_INDEXER_MAX_MESSAGE_BYTES' }),
    maxCandidates: z.number().int().min(1).default(1024).meta({ env: 'KV_INDEXER_MAX_CANDIDATES' }),
    /** Longest prompt (tokens or block keys × block size) a request may carry. */
    maxPromptTokens: z.number().int().min(1).default(262_144).meta({ env: 'KV_INDEXER_MAX_PROMPT_TOKENS' }),
    /** Multimodal items a tokens request may carry (each one's identifier is hashed into every block it covers). */
    maxItems: z.number().int().min(1).default(64).meta({ env: 'KV_INDEXER_MAX_ITEMS' }),
    /** Default TTL of speculative entries (Reserve, Score.speculate). */
    speculativeTtlMs: z
      .number()
      .int()
      .min(1)
      .max(600_000)
      .default(2_000)
      .meta({ env: 'KV_INDEXER_SPECULATIVE_TTL_MS' }),
    /** When the index backend fails: true = zero scores with `degraded`, false = UNAVAILABLE. */
    failOpen: z.boolean().default(true).meta({ env: 'KV_INDEXER_FAIL_OPEN' }),
    /** TLS: PEM files; empty = plaintext. With `tlsClientCaFile`, clients must present a certificate it signed (mTLS). */
    tlsCertFile: z.string().default('').meta({ env: 'KV_INDEXER_TLS_CERT_FILE' }),
    tlsKeyFile: z.string().default('').meta({ env: 'KV_INDEXER_TLS_KEY_FILE' }),
    tlsClientCaFile: z.string().default('').meta({ env: 'KV_INDEXER_TLS_CLIENT_CA_FILE' }),
    /** File holding the bearer token required by AddEndpoint/RemoveEndpoint/ClearEndpoint; empty = no check. */
    adminTokenFile: z.string().default('').meta({ env: 'KV_INDEXER_ADMIN_TOKEN_FILE' }),
    /**
     * Host names (not only IP literals) as endpoints of Reserve, Score.speculate and, without an admin token,
     * AddEndpoint (docs/security.md). Off: a caller cannot make the service resolve or connect to arbitrary names.
     */
    allowHostnameEndpoints: z.boolean().default(false).meta({ env: 'KV_INDEXER_ALLOW_HOSTNAME_ENDPOINTS' }),
    /** Speculative entries (Reserve, Score.speculate) one caller (peer address) may hold unexpired; 0 = no bound. */
    maxSpeculativePerCaller: z
      .number()
      .int()
      .min(0)
      .default(100_000)
      .meta({ env: 'KV_INDEXER_MAX_SPECULATIVE_PER_CALLER' }),
    /** HTTP/2 hygiene (docs/configuration.md, "gRPC connections"): idle and maximum age of a connection, grace. */
    maxConnectionIdleMs: z
      .number()
      .int()
      .min(1)
      .default(300_000)
      .meta({ env: 'KV_INDEXER_GRPC_MAX_CONNECTION_IDLE_MS' }),
    maxConnectionAgeMs: z
      .number()
      .int()
      .min(1)
      .default(1_800_000)
      .meta({ env: 'KV_INDEXER_GRPC_MAX_CONNECTION_AGE_MS' }),
    maxConnectionAgeGraceMs: z
      .number()
      .int()
      .min(0)
      .default(30_000)
      .meta({ env: 'KV_INDEXER_GRPC_MAX_CONNECTION_AGE_GRACE_MS' }),
    /** Server PINGs after this much silence; no acknowledgement within keepaliveTimeoutMs closes the connection. */
    keepaliveTimeMs: z.number().int().min(1).default(60_000).meta({ env: 'KV_INDEXER_GRPC_KEEPALIVE_TIME_MS' }),
    keepaliveTimeoutMs: z.number().int().min(1).default(20_000).meta({ env: 'KV_INDEXER_GRPC_KEEPALIVE_TIMEOUT_MS' }),
    /** Calls in flight per connection; open connections; time for a new connection's TLS + HTTP/2 handshake. */
    maxConcurrentStreams: z.number().int().min(1).default(1024).meta({ env: 'KV_INDEXER_GRPC_MAX_CONCURRENT_STREAMS' }),
    maxConnections: z.number().int().min(1).default(4096).meta({ env: 'KV_INDEXER_GRPC_MAX_CONNECTIONS' }),
    handshakeTimeoutMs: z.number().int().min(1).default(10_000).meta({ env: 'KV_INDEXER_GRPC_HANDSHAKE_TIMEOUT_MS' }),
    /** Calls open at once over all connections (~6 KB each); beyond it RESOURCE_EXHAUSTED at once. */
    maxOpenCalls: z.number().int().min(1).default(4096).meta({ env: 'KV_INDEXER_GRPC_MAX_OPEN_CALLS' }),
    /** Score served by a lean HTTP/2 path instead of grpc-js's generic server (src/api/fast-score.ts, issue 16). */
    fastScore: z.boolean().default(true).meta({ env: 'KV_INDEXER_API_FAST_SCORE' }),
    /**
     * The gRPC address served by the lean HTTP/2 server of src/api/h2 (every unary RPC; grpc-js behind it on a
     * loopback port answers streaming and compressed calls) instead of node:http2 + grpc-js (issue 16).
     */
    leanHttp2: z.boolean().default(true).meta({ env: 'KV_INDEXER_API_LEAN_HTTP2' }),
    /**
     * Everything but HTTP/2 in a thread of its own (ZMQ, index, prompts, the API's work): the main thread only
     * terminates gRPC, so ingest batches and the index's GC no longer stall connections (service/index-thread-host.ts).
     */
    indexThread: z.boolean().default(false).meta({ env: 'KV_INDEXER_API_INDEX_THREAD' }),
    /**
     * Serving processes sharing the gRPC port (node:cluster), each with its own replica of the in-memory index fed by
     * the same events; 1 = this process serves (src/service/serving-processes.ts, issue 16).
     */
    processes: z.number().int().min(1).max(64).default(1).meta({ env: 'KV_INDEXER_API_PROCESSES' }),
  })
  .prefault({});

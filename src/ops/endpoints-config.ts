import { z } from 'zod';

/**
 * Event transport (config `endpoints`, src/events, docs/events.md): connect-mode endpoints, per-endpoint queues,
 * staleness, store bounds, tracked identities.
 */
export const EndpointsConfigSchema = z
  .object({
    /**
     * Connect-mode endpoint specs `tcp://ip:5557[;replay=tcp://ip:5558][;ranks=n][;serving=ip:8000|identities=…]` or
     * a vLLM HTTP base URL `http://ip:8000` to discover them from (docs/events.md), connected besides zmq.*.
     */
    static: z.array(z.string().min(1)).default([]).meta({ env: 'KV_INDEXER_ENDPOINTS' }),
    /** YAML/JSON file listing connect-mode endpoints, watched for changes ('' = none). */
    file: z.string().default('').meta({ env: 'KV_INDEXER_ENDPOINTS_FILE' }),
    fileCheckSeconds: z.number().min(0.1).default(2).meta({ env: 'KV_INDEXER_ENDPOINTS_FILE_CHECK_SECONDS' }),
    /** An endpoint silent for this long is reported stale. */
    staleSeconds: z.number().min(1).default(60).meta({ env: 'KV_INDEXER_STALE_SECONDS' }),
    /**
     * An endpoint silent for this long has its entries cleared (0 = never). vLLM publishes only when its cache
     * changes, so an idle pod is silent too: set this well above the longest idle time you expect.
     */
    clearStaleSeconds: z.number().min(0).default(0).meta({ env: 'KV_INDEXER_CLEAR_STALE_SECONDS' }),
    /** Decoded batches queued per endpoint; beyond it batches are dropped and the endpoint resyncs by replay. */
    queueBatches: z.number().int().min(1).default(10_000).meta({ env: 'KV_INDEXER_QUEUE_BATCHES' }),
    /**
     * Connect mode with several replicas sharing a Redis index: the static endpoints are owned through leases of
     * this TTL in Redis, so each is ingested by one replica at a time (0 = off: connect to every static endpoint).
     */
    leaseTtlMs: z.number().int().min(0).default(0).meta({ env: 'KV_INDEXER_ENDPOINT_LEASE_TTL_MS' }),
    /** Endpoint identities (endpoint × data-parallel rank) tracked at once; batches of further ones are dropped. */
    maxTracked: z.number().int().min(1).max(65_536).default(16_384).meta({ env: 'KV_INDEXER_MAX_ENDPOINTS' }),
    /**
     * Default store bound of every endpoint (a spec's max_blocks/ttl overrides it): engine blocks kept per endpoint
     * identity, oldest dropped first (0 = no limit). For publishers that never announce removals (LMCache).
     */
    storeBoundMaxBlocks: z.number().int().min(0).max(1e9).default(0).meta({ env: 'KV_INDEXER_STORE_BOUND_MAX_BLOCKS' }),
    /** Default store bound TTL: an engine block not stored again for this long is dropped (0 = never). */
    storeBoundTtlSeconds: z
      .number()
      .min(0)
      .max(30 * 86400)
      .default(0)
      .meta({ env: 'KV_INDEXER_STORE_BOUND_TTL_SECONDS' }),
  })
  .prefault({});

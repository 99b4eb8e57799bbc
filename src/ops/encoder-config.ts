import { z } from 'zod';

/**
 * Encoder residency (config `encoder`, src/index/encoder-residency.ts, docs/configuration.md "Encoder residency"):
 * which endpoints have processed which images, inferred from the identifiers in their BlockStored extra_keys.
 */
export const EncoderSchema = z
  .object({
    /**
     * Image identifiers remembered per endpoint, least recently seen dropped first. vLLM's encoder cache is an LRU of
     * encoder outputs by mm_hash sized in embeddings (vllm/v1/core/encoder_cache_manager.py); this counts items.
     */
    cacheEntries: z
      .number()
      .int()
      .min(1)
      .max(1_000_000)
      .default(4096)
      .meta({ env: 'KV_INDEXER_ENCODER_CACHE_ENTRIES' }),
    /** An identifier not seen again for this long is dropped (0 = never aged out). */
    ttlSeconds: z
      .number()
      .min(0)
      .max(30 * 86400)
      .default(600)
      .meta({ env: 'KV_INDEXER_ENCODER_TTL_SECONDS' }),
    /** Identifiers over all endpoints (memory bound); beyond it the endpoint with the most gives up its oldest. */
    maxEntries: z
      .number()
      .int()
      .min(1)
      .max(100_000_000)
      .default(1_000_000)
      .meta({ env: 'KV_INDEXER_ENCODER_MAX_ENTRIES' }),
  })
  .strict()
  .prefault({});
export type EncoderConfig = z.output<typeof EncoderSchema>;

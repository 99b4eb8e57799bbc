import { z } from 'zod';

/** Select and its in-flight ledger (src/api/select.ts, src/scoring/load/; docs/api.md "Select", docs/configuration.md). */
export const SelectConfigSchema = z
  .object({
    /** Default policy of a Select that names none: `cache`, `load` or `cache+load`. */
    defaultPolicy: z
      .enum(['cache', 'load', 'cache+load'])
      .default('cache+load')
      .meta({ env: 'KV_INDEXER_SELECT_DEFAULT_POLICY' }),
    /** TTL of a reservation whose caller neither completes nor releases it. */
    reservationTtlMs: z
      .number()
      .int()
      .min(1)
      .max(3_600_000)
      .default(120_000)
      .meta({ env: 'KV_INDEXER_SELECT_RESERVATION_TTL_MS' }),
    /**
     * Where the in-flight ledger lives: `memory` (per replica), `redis` (shared by every replica through the Redis
     * index's connection; needs index.backend redis), `auto` (redis when the index is, memory otherwise).
     */
    ledger: z.enum(['auto', 'memory', 'redis']).default('auto').meta({ env: 'KV_INDEXER_SELECT_LEDGER' }),
    /** Live reservations at once; a Select with reserve beyond it is RESOURCE_EXHAUSTED (and reserves nothing). */
    maxReservations: z
      .number()
      .int()
      .min(1)
      .max(10_000_000)
      .default(100_000)
      .meta({ env: 'KV_INDEXER_SELECT_MAX_RESERVATIONS' }),
    /** Prefill throughput of an endpoint until PrefillComplete timings teach a better one (tokens per second). */
    prefillTokensPerSecond: z
      .number()
      .positive()
      .max(1e9)
      .default(8_000)
      .meta({ env: 'KV_INDEXER_SELECT_PREFILL_TOKENS_PER_SECOND' }),
    /** Weight of each new PrefillComplete timing in the learned throughput (EWMA). */
    throughputAlpha: z.number().min(0).max(1).default(0.2).meta({ env: 'KV_INDEXER_SELECT_THROUGHPUT_ALPHA' }),
    /** Milliseconds of predicted TTFT per running request and per in-flight decode block on an endpoint. */
    decodePenaltyMs: z.number().min(0).max(60_000).default(1).meta({ env: 'KV_INDEXER_SELECT_DECODE_PENALTY_MS' }),
    /** Prompt tokens assumed per waiting request (scraped `vllm:num_requests_waiting`). */
    meanPromptTokens: z
      .number()
      .int()
      .min(0)
      .max(10_000_000)
      .default(1024)
      .meta({ env: 'KV_INDEXER_SELECT_MEAN_PROMPT_TOKENS' }),
    /** Endpoints whose scraped KV-cache usage is above this are excluded, unless every candidate is. */
    kvUsageGate: z.number().min(0).max(1).default(0.95).meta({ env: 'KV_INDEXER_SELECT_KV_USAGE_GATE' }),
    /**
     * Image placeholder tokens the vision encoder runs per second (0 = images cost nothing to encode): the price of an
     * image an endpoint has neither in its cached prefix nor in its encoder residency. An estimate to tune: a VL model's
     * vision tower is ~10 % of its parameters (Qwen2.5-VL-7B: 0.67B of 8.3B) but runs over 4× the placeholder tokens
     * (its 2×2 patch merge), so about 2.5× the prefill rate.
     */
    encodeTokensPerSecond: z
      .number()
      .min(0)
      .max(1e9)
      .default(20_000)
      .meta({ env: 'KV_INDEXER_SELECT_ENCODE_TOKENS_PER_SECOND' }),
    /** Expected output tokens of a reservation that does not say (its decode blocks: ⌈tokens / block size⌉). */
    defaultOutputTokens: z
      .number()
      .int()
      .min(0)
      .max(10_000_000)
      .default(256)
      .meta({ env: 'KV_INDEXER_SELECT_DEFAULT_OUTPUT_TOKENS' }),
  })
  .strict()
  .prefault({});
export type SelectConfig = z.output<typeof SelectConfigSchema>;

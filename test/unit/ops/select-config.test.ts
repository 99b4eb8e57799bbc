// select.* settings: defaults, environment variables, refusals.
import { describe, expect, it } from 'vitest';
import { ConfigSchema, configFromEnv, resolveConfig } from '../../../src/ops/config.js';

describe('select.* configuration', () => {
  it('defaults', () => {
    expect(ConfigSchema.parse({}).select).toEqual({
      defaultPolicy: 'cache+load',
      ledger: 'auto',
      reservationTtlMs: 120_000,
      maxReservations: 100_000,
      prefillTokensPerSecond: 8000,
      throughputAlpha: 0.2,
      decodePenaltyMs: 1,
      meanPromptTokens: 1024,
      kvUsageGate: 0.95,
      encodeTokensPerSecond: 20_000,
      defaultOutputTokens: 256,
    });
  });

  it('from KV_INDEXER_SELECT_* variables', () => {
    const config = resolveConfig(
      configFromEnv({
        KV_INDEXER_SELECT_DEFAULT_POLICY: 'load',
        KV_INDEXER_SELECT_LEDGER: 'redis',
        KV_INDEXER_SELECT_RESERVATION_TTL_MS: '5000',
        KV_INDEXER_SELECT_MAX_RESERVATIONS: '7',
        KV_INDEXER_SELECT_PREFILL_TOKENS_PER_SECOND: '12000.5',
        KV_INDEXER_SELECT_THROUGHPUT_ALPHA: '0.5',
        KV_INDEXER_SELECT_DECODE_PENALTY_MS: '2.5',
        KV_INDEXER_SELECT_MEAN_PROMPT_TOKENS: '512',
        KV_INDEXER_SELECT_KV_USAGE_GATE: '0.8',
        KV_INDEXER_SELECT_ENCODE_TOKENS_PER_SECOND: '40000',
        KV_INDEXER_SELECT_DEFAULT_OUTPUT_TOKENS: '64',
      }),
    );
    expect(config.select).toEqual({
      defaultPolicy: 'load',
      ledger: 'redis',
      reservationTtlMs: 5000,
      maxReservations: 7,
      prefillTokensPerSecond: 12000.5,
      throughputAlpha: 0.5,
      decodePenaltyMs: 2.5,
      meanPromptTokens: 512,
      kvUsageGate: 0.8,
      encodeTokensPerSecond: 40_000,
      defaultOutputTokens: 64,
    });
  });

  it('refuses an unknown policy, a gate above 1, a zero throughput, unknown keys and an unknown ledger', () => {
    expect(ConfigSchema.safeParse({ select: { defaultPolicy: 'fastest' } }).success).toBe(false);
    expect(ConfigSchema.safeParse({ select: { kvUsageGate: 1.5 } }).success).toBe(false);
    expect(ConfigSchema.safeParse({ select: { prefillTokensPerSecond: 0 } }).success).toBe(false);
    expect(ConfigSchema.safeParse({ select: { reservationTtl: 5 } }).success).toBe(false);
    expect(ConfigSchema.safeParse({ select: { ledger: 'shared' } }).success).toBe(false);
  });
});

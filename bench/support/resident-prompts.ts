import { BlockHasher } from '../../src/keys/index.js';
import type { EmbeddedService } from '../../src/service/embedded.js';
import { realisticTokens } from '../harness.js';

/** The Score benchmarks' candidates: 16 endpoints `10.1.0.<n>:8000`. */
export const BENCH_CANDIDATES = Array.from({ length: 16 }, (_, i) => `10.1.0.${i + 1}:8000`);
export const BENCH_PROMPT_TOKENS = 1024;

/**
 * The resident prompts of the Score/Select benchmarks (grpc, grpc-hygiene, select): 64 prompts of 1,024 tokens, each
 * indexed on 4 of the 16 candidates, so that every request matches its whole prompt on 4 endpoints and none on 12.
 * Draws from `random` (a suite may go on drawing from it); returns the token ids, each suite builds its requests.
 */
export function indexResidentPrompts(embedded: EmbeddedService, random: () => number): number[][] {
  const { config, service } = embedded;
  const hasher = new BlockHasher(config.keys);
  const n = BENCH_CANDIDATES.length;
  const prompts = Array.from({ length: 64 }, () => Array.from(realisticTokens(BENCH_PROMPT_TOKENS, random)));
  prompts.forEach((tokens, p) => {
    const keys = hasher.keysFor('model', tokens);
    for (let k = 0; k < 4; k++) service.index.add(BENCH_CANDIDATES[(p + k * 4) % n], 'GPU', keys);
  });
  return prompts;
}

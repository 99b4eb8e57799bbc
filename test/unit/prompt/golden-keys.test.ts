import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PromptService, TokenizerPool } from '../../../src/prompt/index.js';
import { loadGoldenKeys } from '../../support/golden.js';
import { QWEN3 } from './helpers.js';

let pool: TokenizerPool;
beforeAll(() => {
  pool = new TokenizerPool({ size: 1 });
});
afterAll(() => pool?.close());

describe('tokens + items in → keys equal ../shared/golden/block-keys.json', () => {
  for (const c of loadGoldenKeys()) {
    it(c.name, async () => {
      // The golden "lora" case roots at the adapter's name; serve it as an adapter of a base model.
      const lora = c.name.startsWith('lora') ? c.model : null;
      const models = [{ name: lora ? 'base-model' : c.model, dir: QWEN3.dir, loras: lora ? [lora] : [] }];
      const svc = await PromptService.create({
        pool,
        keys: { blockSize: c.blockSize, hashSeed: c.hashSeed },
        registry: { models },
      });
      const r = await svc.keys({
        model: lora ?? c.model,
        prompt_token_ids: c.tokens,
        mm_items: c.mmItems,
        cache_salt: c.cacheSalt,
      });
      expect(r.keyModel).toBe(c.model);
      expect(r.extras).toEqual(c.perBlockExtra);
      expect([...r.blockKeys].map(String)).toEqual(c.keys);
      expect(r.items.map(({ identifier, offset, length }) => ({ identifier, offset, length }))).toEqual(c.mmItems);
    });
  }
});

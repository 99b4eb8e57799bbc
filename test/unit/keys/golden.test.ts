import { describe, expect, it } from 'vitest';
import { BlockHasher, blockExtras } from '../../../src/keys/index.js';
import { loadGoldenKeys } from '../../support/golden.js';

describe('request keys reproduce ../shared/golden/block-keys.json', () => {
  for (const c of loadGoldenKeys()) {
    it(c.name, () => {
      const hasher = new BlockHasher({ blockSize: c.blockSize, hashSeed: c.hashSeed });
      expect(hasher.rootKey(c.model).toString()).toBe(c.rootKey);

      // The per-block extras the golden file lists must follow from its items and salt by the overlap rule.
      const extras = blockExtras(c.mmItems, c.tokens.length, c.blockSize, c.cacheSalt);
      expect(extras).toEqual(c.perBlockExtra);

      const keys = hasher.keysFor(c.model, c.tokens, extras);
      expect([...keys].map(String)).toEqual(c.keys);
      // Same result from a Uint32Array input and when chaining block by block from the previous key.
      expect([...hasher.keysFor(c.model, Uint32Array.from(c.tokens), extras)].map(String)).toEqual(c.keys);
      let parent = hasher.rootKey(c.model);
      c.keys.forEach((expected, i) => {
        const one = hasher.chain(c.tokens.slice(i * c.blockSize, (i + 1) * c.blockSize), parent, [extras?.[i] ?? null]);
        expect(one[0].toString()).toBe(expected);
        parent = one[0];
      });
    });
  }
});

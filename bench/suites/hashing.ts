import { BlockHasher } from '../../src/keys/index.js';
import { realisticTokens, rng, type Suite } from '../harness.js';

/** Request-key hashing, llm-d scheme, 16-token blocks: ns per block over an 8,192-token prompt. */
export const hashingSuite: Suite = {
  name: 'hashing',
  description: 'request-key hashing (CBOR + FNV-64a, 16-token blocks)',
  run({ quick }) {
    const hasher = new BlockHasher({ blockSize: 16, hashSeed: '' });
    const rounds = quick ? 200 : 3_000;
    const realistic = realisticTokens(8192);
    const random = rng(7);
    const wide = Uint32Array.from({ length: 8192 }, () => 65_536 + Math.floor(random() * 86_000));
    const out = new BigUint64Array(512);
    const measure = (tokens: Uint32Array) => {
      for (let i = 0; i < 100; i++) hasher.chain(tokens, 1n, null, out);
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < rounds; i++) hasher.chain(tokens, 1n, null, out);
      return Number(process.hrtime.bigint() - t0) / (rounds * 512);
    };
    return {
      parameters: { blockSize: 16, promptTokens: 8192, rounds },
      figures: {
        nsPerBlockRealistic: { value: measure(realistic), unit: 'ns/block', goal: '≤ 100' },
        nsPerBlockWideTokens: { value: measure(wide), unit: 'ns/block' },
      },
    };
  },
};

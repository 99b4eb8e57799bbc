import { BlockHasher } from '../../src/keys/index.js';
import { micro, realisticTokens, rng, type Suite } from '../harness.js';

/** Request-key hashing, llm-d scheme, 16-token blocks: ns per block over an 8,192-token prompt. */
export const hashingSuite: Suite = {
  name: 'hashing',
  description: 'request-key hashing (CBOR + FNV-64a, 16-token blocks)',
  async run({ quick }) {
    const hasher = new BlockHasher({ blockSize: 16, hashSeed: '' });
    const realistic = realisticTokens(8192);
    const random = rng(7);
    const wide = Uint32Array.from({ length: 8192 }, () => 65_536 + Math.floor(random() * 86_000));
    const out = new BigUint64Array(512);
    // One sample = one 8,192-token prompt (512 blocks) hashed.
    const realisticRun = await micro(
      'hash 512 blocks (realistic tokens)',
      () => hasher.chain(realistic, 1n, null, out),
      quick,
    );
    const wideRun = await micro('hash 512 blocks (5-byte tokens)', () => hasher.chain(wide, 1n, null, out), quick);
    return {
      parameters: {
        blockSize: 16,
        promptTokens: 8192,
        harness: 'tinybench',
        samples: { realistic: realisticRun.samples, wide: wideRun.samples },
      },
      figures: {
        nsPerBlockRealistic: { value: realisticRun.meanNs / 512, unit: 'ns/block', goal: '≤ 100' },
        nsPerBlockRealisticP99: { value: realisticRun.p99Ns / 512, unit: 'ns/block' },
        nsPerBlockWideTokens: { value: wideRun.meanNs / 512, unit: 'ns/block' },
      },
    };
  },
};

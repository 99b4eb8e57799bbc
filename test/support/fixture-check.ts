import { readFileSync } from 'node:fs';
import { blockExtras } from '../../src/keys/extras.js';
import { BlockHasher } from '../../src/keys/index.js';
import type { Index, TierRegistry } from '../../src/index/index.js';
import { Scorer } from '../../src/scoring/index.js';
import type { ExpectedState } from '../../src/sim/publisher/scenarios.js';

export const RECORDINGS = new URL('../../fixtures/recordings/', import.meta.url);

export function loadExpected(name: string): ExpectedState {
  return JSON.parse(readFileSync(new URL(`${name}.expected.json`, RECORDINGS), 'utf8')) as ExpectedState;
}

/** The index's view in the shape of an ExpectedState: entries by tier per endpoint, and each sample's scores. */
export async function observedState(index: Index & { readonly tiers: TierRegistry }, expected: ExpectedState) {
  const endpoints: Record<string, Record<string, number>> = {};
  for (const id of Object.keys(expected.endpoints)) endpoints[id] = await index.endpointEntries(id);
  const hasher = new BlockHasher({ blockSize: expected.blockSize, hashSeed: expected.hashSeed });
  const scorer = new Scorer(index, index.tiers);
  const candidates = Object.keys(expected.endpoints);
  const samples = [];
  for (const s of expected.samples) {
    const extras = blockExtras(s.items, s.tokens.length, expected.blockSize);
    const result = await scorer.score(hasher.keysFor(s.model, s.tokens, extras), { candidates });
    samples.push(
      Object.fromEntries(
        result.scores.map((c) => [c.endpoint, { matchedBlocks: c.matchedBlocks, blocksByTier: c.blocksByTier }]),
      ),
    );
  }
  return { endpoints, samples };
}

export function expectedView(expected: ExpectedState) {
  return { endpoints: expected.endpoints, samples: expected.samples.map((s) => s.scores) };
}

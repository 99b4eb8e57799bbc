import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readRecording } from '../../src/events/recording/format.js';
import { playIntoPipeline } from '../../src/events/recording/player.js';
import { loadExpected, RECORDINGS } from '../support/fixture-check.js';
import { startTestService, type TestService } from '../support/service.js';

const NAME = 'fleet-mixed';

/**
 * The shipped recording (five endpoint ranks, array and map events, int and bytes hashes, offload, LoRA, images, a
 * restart, an AllBlocksCleared) replayed into the service, then every read RPC checked against the state the
 * simulator recorded beside it.
 */
describe(`gRPC after replaying fixtures/recordings/${NAME}`, () => {
  const expected = loadExpected(NAME);
  const candidates = Object.keys(expected.endpoints);
  let t: TestService;

  beforeAll(async () => {
    t = await startTestService();
    await playIntoPipeline(
      t.service.pipeline,
      readRecording(new URL(`${NAME}.kvrec.gz`, RECORDINGS).pathname).messages,
    );
    await t.service.index.flush();
  }, 30_000);

  afterAll(async () => {
    await t?.stop();
  });

  it('ListEndpoints and GetStats give the recorded per-endpoint state', async () => {
    const listed = (await t.kv.call('ListEndpoints', {})).endpoints as {
      endpoint: string;
      blocksByTier: Record<string, string>;
    }[];
    const byEndpoint = Object.fromEntries(
      listed.map((e) => [
        e.endpoint,
        Object.fromEntries(Object.entries(e.blocksByTier).map(([tier, n]) => [tier, Number(n)])),
      ]),
    );
    expect(byEndpoint).toEqual(expected.endpoints);
    const total = Object.values(expected.endpoints).reduce(
      (sum, tiers) => sum + Object.values(tiers).reduce((a, b) => a + b, 0),
      0,
    );
    expect(Number((await t.kv.call('GetStats', {})).indexEntries)).toBe(total);
  });

  it('Score, ComputeBlockKeys and Lookup give every recorded sample its recorded matches', async () => {
    expect(expected.samples.length).toBeGreaterThan(0);
    for (const sample of expected.samples) {
      const tokens = {
        tokenIds: sample.tokens,
        items: sample.items.map((i) => ({ identifier: i.identifier, offset: i.offset, length: i.length })),
      };
      const score = await t.kv.call('Score', { model: sample.model, tokens, candidates });
      const got = Object.fromEntries(
        score.scores.map((s: { endpoint: string; matchedBlocks: number; blocksByTier: Record<string, number> }) => [
          s.endpoint,
          { matchedBlocks: s.matchedBlocks, blocksByTier: s.blocksByTier },
        ]),
      );
      expect(got).toEqual(sample.scores);
      const keys = await t.kv.call('ComputeBlockKeys', { model: sample.model, tokens });
      const lookup = await t.kv.call('Lookup', { blockKeys: keys.blockKeys, candidates });
      // Lookup has block keys only, no items: its images_seen is 0 where Score's counts the sample's images (encoder residency).
      expect(lookup.scores).toEqual(score.scores.map((s: object) => ({ ...s, imagesSeen: 0 })));
    }
  });
});

import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Publisher } from 'zeromq';
import { startTestService, type TestService } from '../support/service.js';
import { connectedPublisher, kvMessage, tokenRange, waitFor } from '../support/zmq.js';

/**
 * Encoder residency end to end (issue 14 §3): a real ZMQ publisher sends vLLM BlockStored events whose extra_keys carry
 * image identifiers for two endpoints; the real service ingests them, and a real gRPC client asks LookupImages, Score
 * (images_seen per candidate) and GetStats, clears an endpoint, and sends bad requests.
 */
const MODEL = 'Qwen/Qwen2-VL-2B-Instruct';
const A = '10.0.0.1:8000';
const B = '10.0.0.2:8000';
const C = '10.0.0.3:8000';

let t: TestService;
let pub: Publisher;

/** vLLM ≥ 0.23 tagged-map BlockStored of `hashes.length` 16-token blocks. */
function storedMap(hashes: number[], tokens: number[], extraKeys: unknown[], more: Record<string, unknown> = {}) {
  return {
    type: 'BlockStored',
    block_hashes: hashes.map(BigInt),
    parent_block_hash: null,
    token_ids: tokens,
    block_size: 16,
    extra_keys: extraKeys,
    ...more,
  };
}

async function lookupImages(identifiers: string[], candidates: string[] = []) {
  const res = await t.kv.call('LookupImages', { identifiers, candidates });
  return res.images as { identifier: string; endpoints: string[] }[];
}

/** Score of 32 tokens carrying img-1 (tokens 4..23) and img-2 (26..29), as A stored them. */
async function imageScore(candidates: string[]) {
  const res = await t.kv.call('Score', {
    model: MODEL,
    tokens: {
      tokenIds: tokenRange(32),
      items: [
        { identifier: 'img-1', offset: 4, length: 20 },
        { identifier: 'img-2', offset: 26, length: 4 },
      ],
    },
    candidates,
  });
  return (res.scores as { endpoint: string; matchedBlocks: number; imagesSeen: number }[]).map((s) => [
    s.endpoint,
    s.matchedBlocks,
    s.imagesSeen,
  ]);
}

async function stats() {
  const s = await t.kv.call('GetStats', {});
  return [s.encoderResidencyEntries, s.encoderResidencyEndpoints, s.encoderResidencyEvictions];
}

async function metricLines(): Promise<string[]> {
  const text = await (await fetch(`http://127.0.0.1:${t.api.metricsPort}/metrics`)).text();
  return text.split('\n').filter((l) => l.startsWith('kv_indexer_encoder_residency_'));
}

async function expectInvalid(call: Promise<unknown>, details: string) {
  await expect(call).rejects.toMatchObject({ code: status.INVALID_ARGUMENT, details });
}

beforeAll(async () => {
  t = await startTestService();
  pub = await connectedPublisher(
    t.service.subscriber.lastEndpoint!,
    kvMessage('kv@10.9.9.9:1@probe', 0, [0, [], null]),
    () => t.service.pipeline.endpoints().has('10.9.9.9:1'),
  );
  // A: two blocks; img-1 starts at token 4 and runs into block 1, where img-2 starts at token 26 (vLLM ≥ 0.19 items).
  await pub.send(
    kvMessage(`kv@${A}@${MODEL}`, 0, [
      1,
      [
        storedMap([1001, 1002], tokenRange(32), [
          [['img-1', 4]],
          [
            ['img-1', -12],
            ['img-2', 10],
          ],
        ]),
      ],
      null,
    ]),
  );
  await waitFor(() => t.service.residency.entries === 2, 'A stored img-1 and img-2');
  // B, later: one LoRA block with img-2; the LoRA name and the cache salt in extra_keys are not images.
  await pub.send(
    kvMessage(`kv@${B}@${MODEL}`, 0, [
      1,
      [storedMap([2001], tokenRange(16, 500), [['sql', ['img-2', 3], 'tenant-salt']], { lora_name: 'sql' })],
      null,
    ]),
  );
  await waitFor(() => t.service.residency.entries === 3, 'B stored img-2');
}, 30_000);

afterAll(async () => {
  pub?.close();
  await t?.stop();
});

describe('encoder residency over ZMQ and gRPC', () => {
  it('LookupImages answers the endpoints that stored each image, most recent first, in request order', async () => {
    expect(await lookupImages(['img-2', 'img-1', 'img-3', 'tenant-salt', 'sql'])).toEqual([
      { identifier: 'img-2', endpoints: [B, A] },
      { identifier: 'img-1', endpoints: [A] },
      { identifier: 'img-3', endpoints: [] },
      { identifier: 'tenant-salt', endpoints: [] },
      { identifier: 'sql', endpoints: [] },
    ]);
    // Only among the candidates given.
    expect(await lookupImages(['img-2', 'img-1'], [A, C])).toEqual([
      { identifier: 'img-2', endpoints: [A] },
      { identifier: 'img-1', endpoints: [A] },
    ]);
    expect(await lookupImages(['img-1'], [B, C])).toEqual([{ identifier: 'img-1', endpoints: [] }]);
  });

  it('Score reports images_seen per candidate: how many of the request items each has processed', async () => {
    expect(await imageScore([A, B, C])).toEqual([
      [A, 2, 2],
      [B, 0, 1],
      [C, 0, 0],
    ]);
    // A request without items: images_seen 0 everywhere (field left out).
    const text = await t.kv.call('Score', { model: MODEL, tokens: { tokenIds: tokenRange(32) }, candidates: [A, B] });
    expect(text.scores.map((s: { imagesSeen: number }) => s.imagesSeen)).toEqual([0, 0]);
  });

  it('Select prices the images each candidate would encode: past its cached prefix and not seen there', async () => {
    const select = async (policy: string) => {
      const res = await t.kv.call('Select', {
        model: MODEL,
        tokens: {
          tokenIds: tokenRange(32),
          items: [
            { identifier: 'img-1', offset: 4, length: 20 },
            { identifier: 'img-2', offset: 26, length: 4 },
          ],
        },
        candidates: [A, B, C],
        policy,
      });
      return {
        chosen: res.endpoint,
        rows: res.candidates.map((c: Record<string, number>) => [
          c.endpoint,
          c.cachedBlocks,
          c.encodeTokens,
          c.encodeMs,
          c.predictedTtftMs,
        ]),
      };
    };
    // Defaults: prefill 8000 tokens/s, encoder 20000 tokens/s. A holds both blocks (both images inside its prefix);
    // B holds nothing and has seen img-2 only (img-1's 20 tokens to encode); C has seen neither (20 + 4).
    const ms = (tokens: number, perSecond: number) => (tokens / perSecond) * 1000;
    expect(await select('cache+load')).toEqual({
      chosen: A,
      rows: [
        [A, 2, 0, 0, 0],
        [B, 0, 20, ms(20, 20_000), ms(32, 8000) + ms(20, 20_000)],
        [C, 0, 24, ms(24, 20_000), ms(32, 8000) + ms(24, 20_000)],
      ],
    });
    // Policy load ignores the cache: every candidate prefills all 32 tokens, A has seen both images.
    expect((await select('load')).rows.map((r: number[]) => r.slice(2))).toEqual([
      [0, 0, ms(32, 8000)],
      [20, ms(20, 20_000), ms(32, 8000) + ms(20, 20_000)],
      [24, ms(24, 20_000), ms(32, 8000) + ms(24, 20_000)],
    ]);
  });

  it('GetStats and the metrics report the residency', async () => {
    expect(await stats()).toEqual(['3', '2', '0']);
    expect(await metricLines()).toEqual([
      'kv_indexer_encoder_residency_entries 3',
      'kv_indexer_encoder_residency_evictions_total{reason="lru"} 0',
      'kv_indexer_encoder_residency_evictions_total{reason="ttl"} 0',
      'kv_indexer_encoder_residency_evictions_total{reason="endpoint_cleared"} 0',
    ]);
  });

  it('refuses bad LookupImages requests with INVALID_ARGUMENT naming the field, changing nothing', async () => {
    await expectInvalid(
      t.kv.call('LookupImages', { identifiers: [] }),
      'identifiers: at least one identifier is required',
    );
    const tooMany = Array.from({ length: 65 }, (_, i) => `img-${i}`);
    await expectInvalid(
      t.kv.call('LookupImages', { identifiers: tooMany }),
      'identifiers: 65 identifiers, at most 64 (api.maxItems)',
    );
    await expectInvalid(
      t.kv.call('LookupImages', { identifiers: ['img-1', 'x'.repeat(257)] }),
      'identifiers[1]: is longer than 256 characters',
    );
    await expectInvalid(t.kv.call('LookupImages', { identifiers: ['img-1', ''] }), 'identifiers[1]: is empty');
    await expectInvalid(
      t.kv.call('LookupImages', { identifiers: ['img-1'], candidates: [A, 'nope'] }),
      'candidates[1]: "nope" is not <host>:<port>',
    );
    // 64 identifiers of 256 characters are fine.
    const longest = Array.from({ length: 64 }, (_, i) => `${i}`.padEnd(256, 'x'));
    expect((await lookupImages(longest)).map((i) => i.endpoints)).toEqual(longest.map(() => []));
    expect(await stats()).toEqual(['3', '2', '0']);
  });

  it('ClearEndpoint and RemoveEndpoint drop what the endpoint had seen', async () => {
    await t.kv.call('ClearEndpoint', { endpoint: A });
    expect(await lookupImages(['img-2', 'img-1'])).toEqual([
      { identifier: 'img-2', endpoints: [B] },
      { identifier: 'img-1', endpoints: [] },
    ]);
    expect(await imageScore([A, B])).toEqual([
      [A, 0, 0],
      [B, 0, 1],
    ]);
    expect(await stats()).toEqual(['1', '1', '2']);

    await t.kv.call('RemoveEndpoint', { endpoint: B });
    expect(await lookupImages(['img-2'])).toEqual([{ identifier: 'img-2', endpoints: [] }]);
    expect(await stats()).toEqual(['0', '0', '3']);
    expect(await metricLines()).toEqual([
      'kv_indexer_encoder_residency_entries 0',
      'kv_indexer_encoder_residency_evictions_total{reason="lru"} 0',
      'kv_indexer_encoder_residency_evictions_total{reason="ttl"} 0',
      'kv_indexer_encoder_residency_evictions_total{reason="endpoint_cleared"} 3',
    ]);
  });
});

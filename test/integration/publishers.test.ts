import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Publisher } from 'zeromq';
import { readRecording } from '../../src/events/recording/format.js';
import { publishRecording } from '../../src/events/recording/player.js';
import {
  PUBLISHER_MODEL as MODEL,
  SGLANG_ENDPOINT,
  TRT_ENDPOINT,
  VLLM_ENDPOINT,
} from '../../scripts/make-publisher-recordings.js';
import { startTestService, type TestService } from '../support/service.js';
import { connectedPublisher, kvMessage, waitFor } from '../support/zmq.js';

/**
 * Issue 13 item 8 (and the wire side of items 2 and 4): recorded-shape fixtures of publishers other than a plain vLLM
 * GPU cache (built by scripts/make-publisher-recordings.ts from the engines' structs, cited there) are published over
 * a real ZMQ socket into the whole service (bind-mode SUB, decoder, ingest, memory index, gRPC). Every event either
 * lands in the index exactly as the engine means it or is a counted, named reason in the decode counters and in
 * ListEndpoints `skipped_events`. Before this change the SGLang metadata map and the token pairs were refused
 * (`bad_field_type`, `bad_token_ids`), and the REMOTE blocks were credited on their medium's tier.
 */
const recording = (name: string) =>
  readRecording(new URL(`../../fixtures/recordings/${name}.kvrec`, import.meta.url).pathname).messages;
const range = (n: number, from: number) => Array.from({ length: n }, (_, i) => from + i);

let svc: TestService;
let pub: Publisher;

beforeAll(async () => {
  svc = await startTestService();
  const address = svc.service.subscriber.lastEndpoint!;
  pub = await connectedPublisher(address, kvMessage('kv@10.9.9.9:1@probe', 0, [0, [], null]), () =>
    svc.service.pipeline.endpoints().has('10.9.9.9:1'),
  );
  const before = svc.service.pipeline.counters.messages;
  let sent = 0;
  for (const name of ['trtllm-streaming', 'sglang-vllm-wire', 'vllm-storage-locality'])
    sent += await publishRecording(pub, recording(name), { pace: 'fast' });
  await waitFor(() => svc.service.pipeline.counters.messages - before >= sent, 'every recorded message received');
  await svc.service.pipeline.idle();
});

afterAll(async () => {
  pub?.close();
  await svc?.stop();
});

async function score(endpoint: string, tokens: number[], extra: Record<string, unknown> = {}) {
  const res = await svc.kv.call('Score', {
    model: MODEL,
    tokens: { tokenIds: tokens },
    candidates: [endpoint],
    ...extra,
  });
  return res.scores[0] as { matchedBlocks: number; weighted: number; blocksByTier: Record<string, number> };
}

async function listed(endpoint: string) {
  const list = await svc.kv.call('ListEndpoints', {});
  return list.endpoints.find((e: { endpoint: string }) => e.endpoint === endpoint);
}

describe('publishers on the vLLM wire, end to end over ZMQ', () => {
  it('every refused event is a named reason in the decode counters', () => {
    expect(svc.service.pipeline.counters.decodeErrors).toEqual({
      unsupported_mm_keys: 1,
      bad_token_ids: 1,
      bad_token_pairs: 1,
      unknown_locality: 1,
    });
  });

  it('TensorRT-LLM streaming events: map-form stores and removals index; mm_keys and string tokens are refused', async () => {
    // Stored: blocks 1-16, 17-32 (one coalesced event), 33-48; then 33-48 removed. The mm_keys block (49-64) and the
    // string-token block never entered the index.
    expect(await svc.service.index.endpointEntries(TRT_ENDPOINT)).toEqual({ GPU: 2 });
    expect((await score(TRT_ENDPOINT, range(64, 1))).matchedBlocks).toBe(2);
    expect((await score(TRT_ENDPOINT, range(16, 100))).matchedBlocks).toBe(0);
    const info = await listed(TRT_ENDPOINT);
    expect(info).toMatchObject({ lastSeq: '3', blocksByTier: { GPU: '2' }, state: 'live' });
    expect(info.storedBlocksByLocality).toEqual({ unspecified: '3' });
    expect(info.storedBlocksByOwnership).toEqual({});
    expect(info.skippedEvents).toEqual({ unsupported_mm_keys: '1', bad_token_ids: '1' });
  });

  it('SGLang ≥ 0.5.18: the metadata map at position 7 salts its chain; token pairs index their positions', async () => {
    // Unsalted chain 1-16, 17-32 (17-32 removed later); salted chain 1-32 (2 blocks); pairs: one block 201-216.
    expect(await svc.service.index.endpointEntries(SGLANG_ENDPOINT)).toEqual({ GPU: 4 });
    expect((await score(SGLANG_ENDPOINT, range(32, 1))).matchedBlocks).toBe(1);
    expect((await score(SGLANG_ENDPOINT, range(32, 1), { cacheSalt: 'tenant-a' })).matchedBlocks).toBe(2);
    expect((await score(SGLANG_ENDPOINT, range(17, 201))).matchedBlocks).toBe(1);
    const info = await listed(SGLANG_ENDPOINT);
    expect(info.storedBlocksByLocality).toEqual({ unspecified: '5' });
    expect(info.skippedEvents).toEqual({ bad_token_pairs: '1' });
  });

  it('vLLM STORAGE with locality: REMOTE is its own tier at its own weight, LOCAL keeps STORAGE, unknown is refused', async () => {
    // GPU copies of both blocks removed; block 0 on local storage and on remote storage, block 1 on remote only.
    expect(await svc.service.index.endpointEntries(VLLM_ENDPOINT)).toEqual({ STORAGE_REMOTE: 2, STORAGE: 1 });
    const s = await score(VLLM_ENDPOINT, range(32, 1));
    expect(s.matchedBlocks).toBe(2);
    expect(s.blocksByTier).toEqual({ STORAGE: 1, STORAGE_REMOTE: 1 });
    expect(s.weighted).toBeCloseTo(0.25 + 0.1, 9);
    const info = await listed(VLLM_ENDPOINT);
    expect(info.blocksByTier).toEqual({ STORAGE_REMOTE: '2', STORAGE: '1' });
    expect(info.storedBlocksByLocality).toEqual({ unspecified: '2', REMOTE: '2', LOCAL: '1' });
    expect(info.storedBlocksByOwnership).toEqual({ 'fs-shared': '2', 'fs-local': '1' });
    expect(info.skippedEvents).toEqual({ unknown_locality: '1' });
  });
});

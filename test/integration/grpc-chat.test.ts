import { readFileSync } from 'node:fs';
import { status } from '@grpc/grpc-js';
import type { RunningApi } from '../../src/service/start-api.js';
import type { RunningService } from '../../src/service/start-service.js';
import { startTestService, type TestService } from '../support/service.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Publisher } from 'zeromq';
import { grpcClient } from '../support/grpc-client.js';
import { connectedPublisher, kvMessage, waitFor } from '../support/zmq.js';

const MODEL = 'Qwen/Qwen2-VL-2B-Instruct';
const A = '10.0.0.1:8000';
const B = '10.0.0.2:8000';
const png = readFileSync(new URL('../../fixtures/images/grey-640x480.png', import.meta.url)).toString('base64');
const messages = [
  {
    role: 'user',
    content: [
      { type: 'image_url', image_url: { url: `data:image/png;base64,${png}` }, uuid: 'img-640x480' },
      { type: 'text', text: 'What is in this image?' },
    ],
  },
];

/**
 * The whole read path over gRPC with a real model: chat messages with an image are rendered with the model's
 * template, tokenized, expanded (640×480 → 391 placeholder tokens), hashed with the image identifier, and matched
 * against what a vLLM publisher stored for the same prompt (same tokens, extra_keys [identifier, offset]).
 */
describe('gRPC Score from chat messages with an image (demo model)', () => {
  let t: TestService;
  let service: RunningService;
  let api: RunningApi;
  let pub: Publisher;
  let kv: ReturnType<typeof grpcClient>;

  beforeAll(async () => {
    t = await startTestService({ demoModel: true });
    ({ service, api } = t);
    pub = await connectedPublisher(
      service.subscriber.lastEndpoint!,
      kvMessage('kv@10.9.9.9:1@probe', 0, [0, [], null]),
      () => service.pipeline.endpoints().has('10.9.9.9:1'),
    );
    kv = t.kv;
  }, 60_000);

  afterAll(async () => {
    pub?.close();
    await t?.stop();
  });

  it('Render gives the spec worked check: 418 tokens, placeholder at 15 of length 391', async () => {
    const res = await kv.call('Render', { model: MODEL, chat: { messagesJson: JSON.stringify(messages) } });
    expect(res.tokenIds.length).toBe(418);
    expect(res.items).toEqual([
      {
        offset: 15,
        length: 391,
        identifier: 'img-640x480',
        estimated: false,
        identifierSource: 'uuid',
        fetchOutcome: '',
      },
    ]);
    expect(res.text).toContain('<|vision_start|><|image_pad|><|vision_end|>What is in this image?');
  });

  it('matches the blocks a vLLM publisher stored for the same chat, image identifier included', async () => {
    const rendered = await kv.call('ComputeBlockKeys', {
      model: MODEL,
      chat: { messagesJson: JSON.stringify(messages) },
    });
    const tokenIds: number[] = rendered.tokenIds;
    const blocks = Math.floor(tokenIds.length / 16); // 26 full blocks of 16
    // vLLM ≥ 0.19 extra_keys: every block the image overlaps carries [identifier, item_offset - block_start].
    const extraKeys = Array.from({ length: blocks }, (_, b) =>
      b * 16 < 15 + 391 && (b + 1) * 16 > 15 ? [['img-640x480', 15 - b * 16]] : null,
    );
    const hashes = Array.from({ length: blocks }, (_, b) => BigInt(1000 + b));
    await pub.send(
      kvMessage(`kv@${A}@${MODEL}`, 0, [
        1,
        [
          {
            type: 'BlockStored',
            block_hashes: hashes,
            parent_block_hash: null,
            token_ids: tokenIds.slice(0, blocks * 16),
            block_size: 16,
            extra_keys: extraKeys,
          },
        ],
        null,
      ]),
    );
    // B stored the same tokens without the identifier (a different image of the same size): no match at all.
    await pub.send(
      kvMessage(`kv@${B}@${MODEL}`, 0, [
        1,
        [
          {
            type: 'BlockStored',
            block_hashes: hashes,
            parent_block_hash: null,
            token_ids: tokenIds.slice(0, blocks * 16),
            block_size: 16,
          },
        ],
        null,
      ]),
    );
    await waitFor(() => service.index.entriesOf(A) === blocks && service.index.entriesOf(B) === blocks, 'both stores');

    const res = await kv.call('Score', {
      model: MODEL,
      chat: { messagesJson: JSON.stringify(messages) },
      candidates: [A, B],
    });
    expect(res.totalBlocks).toBe(26);
    expect(res.tokenCount).toBe(418);
    expect(res.scores.map((s: { endpoint: string; matchedBlocks: number }) => [s.endpoint, s.matchedBlocks])).toEqual([
      [A, 26],
      [B, 0],
    ]);
    // Encoder residency: A's blocks carried the image's identifier, B's did not (images_seen, EndpointScore field 7).
    expect(res.scores.map((s: { imagesSeen: number }) => s.imagesSeen)).toEqual([1, 0]);
    // A longer conversation sharing the prefix still matches the stored blocks.
    const followUp = [
      ...messages,
      { role: 'assistant', content: 'A grey rectangle.' },
      { role: 'user', content: 'Are you sure?' },
    ];
    const res2 = await kv.call('Score', {
      model: MODEL,
      chat: { messagesJson: JSON.stringify(followUp) },
      candidates: [A],
    });
    expect(res2.scores[0].matchedBlocks).toBe(26);
  });

  it('answers GetPodScores (llm-d indexer.v1) with raw weighted block counts', async () => {
    const llmd = grpcClient(`127.0.0.1:${api.grpcPort}`, 'indexer/v1/indexer.proto', 'indexer.v1.IndexerService');
    try {
      const text = 'The quick brown fox jumps over the lazy dog. '.repeat(8);
      const keys = await kv.call('ComputeBlockKeys', { model: MODEL, prompt: text });
      const hashes = keys.blockKeys.map((_: string, i: number) => BigInt(5000 + i));
      await pub.send(
        kvMessage(`kv@${B}@${MODEL}`, 1, [
          1,
          [
            {
              type: 'BlockStored',
              block_hashes: hashes,
              parent_block_hash: null,
              token_ids: keys.tokenIds.slice(0, hashes.length * 16),
              block_size: 16,
            },
          ],
          null,
        ]),
      );
      await waitFor(() => service.index.entriesOf(B) === 26 + hashes.length, 'the prompt blocks');
      const res = await llmd.call('GetPodScores', { prompt: text, modelName: MODEL, podIdentifiers: [A, B] });
      expect(res.scores).toEqual([
        { pod: A, score: 0 },
        { pod: B, score: hashes.length },
      ]);
    } finally {
      llmd.close();
    }
  });

  it('reports prompt errors with their status and field, and lists the models', async () => {
    const unknown = await kv
      .call('Score', { model: 'nope', chat: { messagesJson: JSON.stringify(messages) } })
      .catch((e) => e);
    expect(unknown.code).toBe(status.NOT_FOUND);
    expect(unknown.details).toContain('Qwen/Qwen2-VL-2B-Instruct');
    const badImage = [
      { role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }] },
    ];
    const bad = await kv
      .call('Score', { model: MODEL, chat: { messagesJson: JSON.stringify(badImage) } })
      .catch((e) => e);
    expect(bad.code).toBe(status.INVALID_ARGUMENT);
    expect(bad.details).toMatch(/^messages\[0\]\.content\[0\]\.image_url/);
    const notJson = await kv.call('Score', { model: MODEL, chat: { messagesJson: '[' } }).catch((e) => e);
    expect([notJson.code, notJson.details]).toEqual([
      status.INVALID_ARGUMENT,
      expect.stringMatching(/^chat.messages_json: is not valid JSON/),
    ]);
    expect((await kv.call('GetInfo', {})).models).toEqual([MODEL]);
  });
});

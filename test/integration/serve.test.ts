import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Publisher } from 'zeromq';
import { startService, type RunningService } from '../../src/service/start-service.js';
import { BlockHasher } from '../../src/keys/index.js';
import { ConfigSchema } from '../../src/ops/index.js';
import { Scorer } from '../../src/scoring/index.js';
import { createLogger } from '../../src/ops/index.js';
import { connectedPublisher, kvMessage, seqFrame, tokenRange, waitFor } from '../support/zmq.js';

const MODEL = 'Qwen/Qwen3-8B';
const A = '10.0.0.1:8000';
const B = '10.0.0.2:8000';
const tokens = tokenRange;
const msg = kvMessage;

describe('serve: real ZMQ publisher → decoder → ingest → index', () => {
  let service: RunningService;
  let pub: Publisher;

  beforeAll(async () => {
    const config = ConfigSchema.parse({
      zmq: { mode: 'bind', addresses: ['tcp://127.0.0.1:*'] },
      log: { level: 'silent', statsIntervalSeconds: 0 },
    });
    service = await startService(config, createLogger('silent'));
    const address = service.subscriber.lastEndpoint!;
    const probe = msg('kv@10.9.9.9:1@probe', 0, [0, [], null]);
    pub = await connectedPublisher(address, probe, () => service.pipeline.endpoints().has('10.9.9.9:1'));
  });

  afterAll(async () => {
    pub?.close();
    await service?.stop();
  });

  it('indexes array-era and map-era publishers and counts what it drops', async () => {
    const before = service.pipeline.counters.messages;
    // Endpoint A, vLLM ≤ 0.22 array events over two batches (a chain across batches).
    await pub.send(
      msg(`kv@${A}@${MODEL}`, 0, [1.0, [['BlockStored', [11n, 12n], null, tokens(32), 16, null, 'GPU']], null]),
    );
    await pub.send(
      msg(`kv@${A}@${MODEL}`, 1, [1.1, [['BlockStored', [13n], 12n, tokens(16, 33), 16, null, null]], null]),
    );
    // A duplicate sequence number (replay overlap) is dropped.
    await pub.send(msg(`kv@${A}@${MODEL}`, 1, [1.1, [['BlockRemoved', [13n], null]], null]));
    // Endpoint B, vLLM ≥ 0.23 map events with an unknown tag in the middle (skipped, the rest applies).
    await pub.send(
      msg(`kv@${B}@${MODEL}`, 0, [
        2.0,
        [
          {
            type: 'BlockStored',
            block_hashes: [2n ** 64n - 1n, 2n ** 63n],
            parent_block_hash: null,
            token_ids: tokens(32),
            block_size: 16,
          },
          { type: 'BlockInactive', block_hashes: [1n] },
          {
            type: 'BlockStored',
            block_hashes: [7n],
            parent_block_hash: 2n ** 63n,
            token_ids: tokens(16, 33),
            block_size: 16,
            medium: 'CPU',
          },
        ],
        0,
      ]),
    );
    // Bad input of every kind: wrong topic, wrong frame count, garbage payload.
    await pub.send(msg('kv@no-port@m', 0, [0, [], null]));
    await pub.send([Buffer.from(`kv@${A}@${MODEL}`), seqFrame(9)]);
    await pub.send([Buffer.from(`kv@${A}@${MODEL}`), seqFrame(2), Buffer.from([0xc1, 0xff])]);
    await waitFor(() => service.pipeline.counters.messages >= before + 7, 'seven messages');

    const hasher = new BlockHasher({ blockSize: 16, hashSeed: '' });
    const scorer = new Scorer(service.index, service.index.tiers);
    const result = await scorer.score(hasher.keysFor(MODEL, tokens(48)), { candidates: [A, B, '10.0.0.3:8000'] });
    expect(result.scores.map((s) => [s.endpoint, s.matchedBlocks, s.weighted, s.blocksByTier])).toEqual([
      [A, 3, 3, { GPU: 3 }],
      [B, 3, 2.8, { GPU: 2, CPU: 1 }],
      ['10.0.0.3:8000', 0, 0, {}],
    ]);
    expect(service.pipeline.counters.duplicates).toBe(1);
    expect(service.pipeline.counters.dropped).toEqual({ bad_topic: 1, frame_count: 1 });
    expect(service.pipeline.counters.decodeErrors).toEqual({ unknown_tag: 1, bad_msgpack: 1 });
  });
});

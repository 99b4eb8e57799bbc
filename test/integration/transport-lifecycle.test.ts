import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Publisher } from 'zeromq';
import type { RunningService } from '../../src/service/start-service.js';
import { EventPipeline, Ingestor } from '../../src/events/index.js';
import { readRecording } from '../../src/events/recording/format.js';
import { publishRecording, RecordedReplayServer } from '../../src/events/recording/player.js';
import { Recorder } from '../../src/events/recording/recorder.js';
import { SimPublisher } from '../../src/sim/publisher/publisher.js';
import { MemoryIndex, TierRegistry } from '../../src/index/index.js';
import { BlockHasher } from '../../src/keys/index.js';
import { expectedView, loadExpected, observedState, RECORDINGS } from '../support/fixture-check.js';
import {
  boundPublisher,
  chatTraffic,
  endpointsOf,
  isProbe,
  MODEL,
  publishAll,
  testService,
  untilApplied,
  untilSubscribed,
} from '../support/transport.js';
import { waitFor } from '../support/zmq.js';
import { runCli } from '../support/cli.js';

const A = '10.0.0.1:8000';
const TOPIC = `kv@${A}@${MODEL}`;
const quiet = { warn: () => undefined, info: () => undefined };

const open: { services: RunningService[]; pubs: SimPublisher[] } = { services: [], pubs: [] };
afterEach(async () => {
  for (const p of open.pubs.splice(0)) await p.close();
  for (const s of open.services.splice(0)) await s.stop();
});
async function bound(topic: string, options?: Parameters<typeof boundPublisher>[1]) {
  const r = await boundPublisher(topic, options);
  open.pubs.push(r.pub);
  return r;
}
async function service(settings?: Parameters<typeof testService>[0]) {
  const s = await testService(settings);
  open.services.push(s);
  return s;
}

describe('slow consumer: bounded queue, drop + resync', () => {
  function pipelineWith(queueCapacity: number) {
    const tiers = new TierRegistry();
    const index = new MemoryIndex({ tiers });
    const ingestor = new Ingestor({ hasher: new BlockHasher({ blockSize: 16, hashSeed: '' }), writer: index, tiers });
    const pipeline = new EventPipeline(ingestor, quiet, { stream: { queueCapacity, replayCooldownMs: 0 } });
    return { index, pipeline };
  }

  it('drops what does not fit, counts it, and resyncs by replay to the loss-free state', async () => {
    const { batches, expected } = chatTraffic(
      [{ endpoint: A, model: MODEL, gpuBlocks: 40, style: { encoding: 'array', hashes: 'int' } }],
      20,
      4,
    );
    const { pub } = await bound(TOPIC);
    await publishAll(batches, new Map([[A, pub]])); // no subscriber: only the replay buffer keeps them
    const { index, pipeline } = pipelineWith(4);
    // One burst in a single tick: the first batch applies at once, four wait, the rest overflow.
    for (const b of batches)
      pipeline.handle([Buffer.from(b.topic), Buffer.from(seq8(b.seq)), b.payload], {
        source: 'test',
        replay: pub.replayAddress,
      });
    expect(pipeline.counters.overflowDrops).toBe(batches.length - 5);
    await pipeline.idle();
    expect(await observedState(index, expected)).toEqual(expectedView(expected));
    const c = pipeline.counters;
    expect([c.overflowResyncs, c.replaysCompleted, c.unrecoverable, c.degraded]).toEqual([1, 1, {}, {}]);
    expect(pipeline.stream(A)!.stats).toMatchObject({ applied: batches.length, overflowDrops: batches.length - 5 });
  });

  it('without replay the endpoint is marked degraded (overflow)', async () => {
    const { batches } = chatTraffic(
      [{ endpoint: A, model: MODEL, gpuBlocks: 40, style: { encoding: 'map', hashes: 'int' } }],
      12,
      4,
    );
    const { pipeline } = pipelineWith(2);
    for (const b of batches) pipeline.handle([Buffer.from(b.topic), Buffer.from(seq8(b.seq)), b.payload]);
    await pipeline.idle();
    expect(pipeline.counters.overflowDrops).toBe(batches.length - 3);
    expect(pipeline.listEndpoints()[0]).toMatchObject({ state: 'degraded', degradedReason: 'overflow', lastSeq: 2n });
  });
});

describe('endpoint lifecycle', () => {
  it('endpoints added at runtime deliver; removing one closes its sockets and clears its entries', async () => {
    const { batches, expected } = chatTraffic(
      [{ endpoint: A, model: MODEL, ranks: 2, gpuBlocks: 40, style: { encoding: 'map', hashes: 'bytes' } }],
      16,
      6,
    );
    const rank0 = await bound(TOPIC);
    const rank1 = await bound(TOPIC);
    const svc = await service({ zmq: { mode: 'bind', addresses: [] } });
    await svc.transport.addEndpoint(rank0.spec);
    await svc.transport.addEndpoint(rank1.spec);
    await untilSubscribed(svc, rank0.pub);
    await untilSubscribed(svc, rank1.pub);
    await publishAll(
      batches,
      new Map([
        [A, rank0.pub],
        [`${A}@dp1`, rank1.pub],
      ]),
    );
    await untilApplied(svc, A, rank0.pub.seq - 1n);
    await untilApplied(svc, `${A}@dp1`, rank1.pub.seq - 1n);
    expect(await observedState(svc.index, expected)).toEqual(expectedView(expected));
    expect(endpointsOf(svc).map((e) => [e.identity, e.rank])).toEqual([
      [A, 0],
      [`${A}@dp1`, 1],
    ]);

    expect((await svc.transport.removeEndpoint(rank1.pub.pubAddress!)).filter((id) => !isProbe(id))).toEqual([
      `${A}@dp1`,
    ]);
    expect(svc.index.entriesOf(`${A}@dp1`)).toBe(0);
    expect(svc.index.entriesOf(A)).toBe(expected.endpoints[A].GPU);
    expect(svc.transport.connectedEndpoints().map((e) => e.spec.address)).toEqual([rank0.pub.pubAddress]);
    expect(endpointsOf(svc).map((e) => e.identity)).toEqual([A]);
    expect(svc.pipeline.counters.clears.removed).toBeGreaterThanOrEqual(1); // the rank, and the probe that came through it
  });

  it('follows the watched endpoints file', async () => {
    const { pub, spec } = await bound(TOPIC);
    const file = join(mkdtempSync(join(tmpdir(), 'kv-endpoints-')), 'endpoints.yaml');
    writeFileSync(file, `- "${spec}"\n`);
    const svc = await service({ zmq: { mode: 'bind', addresses: [] }, endpoints: { file, fileCheckSeconds: 0.1 } });
    expect(svc.transport.connectedEndpoints()).toEqual([
      { spec: { address: pub.pubAddress, replay: pub.replayAddress, ranks: 1, endpoint: null }, origin: 'file' },
    ]);
    await untilSubscribed(svc, pub);
    await pub.publish(
      chatTraffic([{ endpoint: A, model: MODEL, gpuBlocks: 40, style: { encoding: 'map', hashes: 'int' } }], 1)
        .batches[0].payload,
    );
    await untilApplied(svc, A, 0n);
    expect(svc.index.entriesOf(A)).toBeGreaterThan(0);
    writeFileSync(file, '[]\n');
    await waitFor(() => svc.transport.connectedEndpoints().length === 0, 'endpoint removed from the file');
    expect(svc.index.entriesOf(A)).toBe(0);
  });

  it('reports stale endpoints', async () => {
    let now = 1_000_000;
    const tiers = new TierRegistry();
    const index = new MemoryIndex({ tiers });
    const ingestor = new Ingestor({ hasher: new BlockHasher({ blockSize: 16, hashSeed: '' }), writer: index, tiers });
    const pipeline = new EventPipeline(ingestor, quiet, { staleMs: 30_000, clock: () => now });
    const { batches } = chatTraffic(
      [{ endpoint: A, model: MODEL, gpuBlocks: 40, style: { encoding: 'map', hashes: 'int' } }],
      1,
    );
    pipeline.handle([Buffer.from(batches[0].topic), Buffer.from(seq8(0n)), batches[0].payload]);
    await pipeline.idle();
    now += 30_000;
    expect(pipeline.listEndpoints()[0]).toMatchObject({ state: 'live', lastEventAgeMs: 30_000 });
    now += 1;
    expect(pipeline.listEndpoints()[0]).toMatchObject({ state: 'stale', lastSeq: 0n });
  });
});

describe('operations the API calls', () => {
  it('an identity mismatch is counted and listed; removal by identity closes the declared connection', async () => {
    const { pub, spec } = await bound(TOPIC);
    const svc = await service({ zmq: { mode: 'bind', addresses: [] } });
    await svc.transport.addEndpoint(`${spec};endpoint=10.0.0.9:8000`);
    await untilSubscribed(svc, pub);
    await pub.publish(
      chatTraffic([{ endpoint: A, model: MODEL, gpuBlocks: 40, style: { encoding: 'map', hashes: 'int' } }], 1)
        .batches[0].payload,
    );
    await untilApplied(svc, A, 0n);
    expect(svc.pipeline.counters.identityMismatches).toBeGreaterThanOrEqual(2);
    expect(endpointsOf(svc).find((e) => e.identity === A)).toMatchObject({
      expectedEndpoint: '10.0.0.9:8000',
      source: pub.pubAddress,
    });
    expect(await svc.transport.removeIdentity('10.0.0.9:8000')).toContain(A);
    expect(svc.transport.connectedEndpoints()).toEqual([]);
    expect(svc.index.entriesOf(A)).toBe(0);
  });

  it('clearing an endpoint drops its entries and resynchronises it from the replay buffer', async () => {
    const { batches, expected } = chatTraffic(
      [{ endpoint: A, model: MODEL, gpuBlocks: 48, style: { encoding: 'array', hashes: 'int' } }],
      12,
      9,
    );
    const { pub, spec } = await bound(TOPIC);
    const svc = await service({ endpoints: { static: [spec] } });
    await untilSubscribed(svc, pub);
    await publishAll(batches.slice(0, -1), new Map([[A, pub]]));
    await untilApplied(svc, A, BigInt(batches.length - 2));
    expect(svc.pipeline.clearEndpoint(A)).toBe(true);
    expect(svc.index.entriesOf(A)).toBe(0);
    await pub.publish(batches[batches.length - 1].payload);
    await untilApplied(svc, A, BigInt(batches.length - 1));
    expect(await observedState(svc.index, expected)).toEqual(expectedView(expected));
    expect([
      svc.pipeline.counters.clears.api,
      svc.pipeline.counters.joinedMidStream,
      svc.pipeline.counters.replaysCompleted,
    ]).toEqual([1, 1, 1]);
  });

  it('bind mode repairs gaps through replay.bindPort (tcp://<topic ip>:<bindPort + rank>)', async () => {
    const probe = new Publisher();
    await probe.bind('tcp://127.0.0.1:*');
    const port = Number(probe.lastEndpoint!.split(':').pop());
    probe.close();
    const endpoint = '127.0.0.1:8000';
    const { batches, expected } = chatTraffic(
      [{ endpoint, model: MODEL, gpuBlocks: 48, style: { encoding: 'map', hashes: 'bytes' } }],
      15,
      10,
    );
    const svc = await service({ replay: { bindPort: port } });
    const pub = new SimPublisher({
      topic: `kv@${endpoint}@${MODEL}`,
      endpoint: svc.subscriber.lastEndpoint!,
      replayEndpoint: `tcp://127.0.0.1:${port}`,
    });
    open.pubs.push(pub);
    await pub.start();
    await untilSubscribed(svc, pub);
    pub.loseLive.add(3n);
    await publishAll(batches, new Map([[endpoint, pub]]));
    await untilApplied(svc, endpoint, BigInt(batches.length - 1));
    expect(await observedState(svc.index, expected)).toEqual(expectedView(expected));
    expect(svc.pipeline.stream(endpoint)!.replayAddress).toBe(`tcp://127.0.0.1:${port}`);
    expect([
      svc.pipeline.counters.sequenceGaps,
      svc.pipeline.counters.replaysCompleted,
      svc.pipeline.counters.degraded,
    ]).toEqual([1, 1, {}]);
  });

  it('a failing index write marks the endpoint degraded until AllBlocksCleared', async () => {
    const tiers = new TierRegistry();
    const index = new MemoryIndex({ tiers });
    let failFlush = false;
    const writer = {
      add: index.add.bind(index),
      remove: index.remove.bind(index),
      clearEndpoint: index.clearEndpoint.bind(index),
      flush: () => (failFlush ? Promise.reject(new Error('index unavailable')) : Promise.resolve()),
    };
    const ingestor = new Ingestor({ hasher: new BlockHasher({ blockSize: 16, hashSeed: '' }), writer, tiers });
    const pipeline = new EventPipeline(ingestor, quiet);
    const { batches } = chatTraffic(
      [{ endpoint: A, model: MODEL, gpuBlocks: 40, style: { encoding: 'map', hashes: 'int' } }],
      3,
    );
    const feed = async (i: number, payload = batches[i].payload) => {
      pipeline.handle([Buffer.from(TOPIC), Buffer.from(seq8(BigInt(i))), payload]);
      await pipeline.idle();
    };
    await feed(0);
    failFlush = true;
    await feed(1);
    failFlush = false;
    expect(pipeline.counters.applyErrors).toBe(1);
    expect(pipeline.listEndpoints()[0]).toMatchObject({
      state: 'degraded',
      degradedReason: 'index_write_failed',
      lastSeq: 1n,
    });
    const { encode } = await import('@msgpack/msgpack');
    await feed(2, encode([9e9, [['AllBlocksCleared']], null]));
    expect(pipeline.listEndpoints()[0]).toMatchObject({ state: 'live', degradedReason: null, lastSeq: 2n });
  });
});

describe('recordings', () => {
  it.each(['fleet-mixed', 'offload-pressure'])(
    'fixture %s published over real ZMQ gives the recorded state',
    async (name) => {
      const expected = loadExpected(name);
      const { messages } = readRecording(new URL(`${name}.kvrec.gz`, RECORDINGS).pathname);
      const svc = await service();
      const pub = new SimPublisher({ topic: 'kv@127.0.0.9:1@probe', endpoint: svc.subscriber.lastEndpoint! });
      open.pubs.push(pub);
      await pub.start();
      await untilSubscribed(svc, pub);
      await publishRecording(pub.pub, messages, { pace: 'fast' });
      await waitFor(() => svc.pipeline.counters.applied >= expected.messages + 1, 'all batches applied').catch(
        (err) => {
          throw new Error(
            `${err}: ${JSON.stringify(svc.pipeline.counters)} ${JSON.stringify(svc.pipeline.listEndpoints(), (_k, v) => (typeof v === 'bigint' ? String(v) : v))}`,
          );
        },
      );
      await svc.pipeline.idle();
      expect(await observedState(svc.index, expected)).toEqual(expectedView(expected));
      expect(svc.pipeline.counters.restarts).toBe(expected.counters.restarts);
    },
  );

  it.each(['old', 'new'] as const)(
    'a recorded buffer served on a replay ROUTER (%s layout) rebuilds an endpoint that joins late',
    async (layout) => {
      const expected = loadExpected('offload-pressure');
      const { messages } = readRecording(new URL('offload-pressure.kvrec.gz', RECORDINGS).pathname);
      const topic = Buffer.from(messages[0].frames[0]).toString();
      const server = new RecordedReplayServer(messages, topic, layout);
      const replay = await server.bind('tcp://127.0.0.1:*');
      const pub = new SimPublisher({ topic, endpoint: 'tcp://127.0.0.1:*' });
      open.pubs.push(pub);
      await pub.start();
      try {
        const svc = await service({
          zmq: { mode: 'bind', addresses: [] },
          endpoints: { static: [`${pub.pubAddress};replay=${replay}`] },
        });
        await untilSubscribed(svc, pub);
        await pub.sendRaw(messages[messages.length - 1].frames); // only the last batch live: joined mid-stream
        const identity = Object.keys(expected.endpoints)[0];
        await untilApplied(svc, identity, BigInt(messages.length - 1));
        expect(await observedState(svc.index, expected)).toEqual(expectedView(expected));
        expect([svc.pipeline.counters.joinedMidStream, svc.pipeline.counters.replayedBatches]).toEqual([
          1,
          messages.length,
        ]);
      } finally {
        await server.close();
      }
    },
  );

  it('record captures raw frames as sent; replay --in-process reports the state', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kv-rec-'));
    const path = join(dir, 'live.kvrec.gz');
    const recorder = new Recorder(path, { source: 'test', format: 'vllm' }, { bind: ['tcp://127.0.0.1:*'] });
    await recorder.start();
    const pub = new Publisher({ linger: 0 });
    pub.connect(recorder.lastEndpoint!);
    const { batches } = chatTraffic(
      [{ endpoint: A, model: MODEL, gpuBlocks: 40, style: { encoding: 'array', hashes: 'bytes' } }],
      8,
    );
    // Wait for the subscription with probes, then send the batches and one malformed message.
    while (recorder.count === 0) {
      await pub.send(['kv@probe', 'x']);
      await new Promise((r) => setTimeout(r, 20));
    }
    const probes = recorder.count;
    for (const b of batches) await pub.send([b.topic, Buffer.from(seq8(b.seq)), b.payload]);
    await pub.send([TOPIC, 'short']);
    await waitFor(() => recorder.count >= probes + batches.length + 1, 'recorded');
    pub.close();
    expect(await recorder.stop()).toBeGreaterThanOrEqual(probes + batches.length + 1);
    const { header, messages } = readRecording(path);
    expect(header).toMatchObject({ source: 'test', format: 'vllm' });
    const tail = messages.slice(-batches.length - 1);
    expect(tail.slice(0, -1).map((m) => m.frames.map((f) => Buffer.from(f).toString('hex')))).toEqual(
      batches.map((b) => [
        Buffer.from(b.topic).toString('hex'),
        Buffer.from(seq8(b.seq)).toString('hex'),
        Buffer.from(b.payload).toString('hex'),
      ]),
    );
    expect(tail[tail.length - 1].frames.map((f) => Buffer.from(f).toString())).toEqual([TOPIC, 'short']);

    // Three CLI processes at once: each pays tsx's start-up.
    const [inProcess, noTarget, noFile] = await Promise.all([
      runCli(['replay', path, '--in-process']),
      runCli(['replay', path]),
      runCli(['record', '--bind', 'tcp://127.0.0.1:*']),
    ]);
    expect(inProcess.code).toBe(0);
    const state = JSON.parse(inProcess.stdout);
    expect(state.endpoints.map((e: { identity: string }) => e.identity)).toEqual([A]);
    expect(state.transport).toMatchObject({ applied: batches.length, dropped: { frame_count: probes + 1 } });
    expect(noTarget.code).toBe(2);
    expect(noTarget.stderr.split('\n')[0]).toBe('exactly one of --bind and --connect');
    expect(noFile.code).toBe(2);
    expect(noFile.stderr).toContain('usage: kv-indexer record');
  }, 60_000);
});

function seq8(seq: bigint): Uint8Array {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(seq);
  return b;
}

import { afterEach, describe, expect, it } from 'vitest';
import { Publisher } from 'zeromq';
import { startTestService, type TestService } from '../support/service.js';
import { kvMessage, tokenRange } from '../support/zmq.js';

/**
 * Data-parallel identity (issue 13 item 6). llm-d scores a data-parallel rank r under that rank's own serving
 * endpoint `<ip>:<servingPort + r>`, and its per-rank subscriber dials `socketPort + r` (llm-d-router #1106,
 * pkg/epp/framework/plugins/scheduling/scorer/preciseprefixcache/precise_prefix_cache.go); every rank publishes the
 * same topic `kv@<ip>:<servingPort>@<model>`, so the identity is the subscriber's, not the topic's (llm-d-router #2233,
 * "attribute KV events to the subscriber serving endpoint"). Our default stays `<ip>:<port>@dp<r>`.
 */

const MODEL = 'Qwen/Qwen3-8B';
const POD = '10.0.0.5';
const TOPIC = `kv@${POD}:8000@${MODEL}`;
/** Rank r holds 3 blocks of its own prompt (tokens r*1000+1 …). */
const promptOf = (rank: number) => tokenRange(48, rank * 1000 + 1);
const storeOf = (rank: number) => [
  1 + rank,
  [
    [
      'BlockStored',
      [100n + BigInt(rank) * 10n, 101n + BigInt(rank) * 10n, 102n + BigInt(rank) * 10n],
      null,
      promptOf(rank),
      16,
      null,
      null,
    ],
  ],
  rank,
];

const open: { services: TestService[]; pubs: Publisher[] } = { services: [], pubs: [] };
afterEach(async () => {
  for (const p of open.pubs.splice(0)) p.close();
  for (const s of open.services.splice(0)) await s.stop();
});

/** Two PUB sockets on consecutive ports (rank r on port + r), as one vLLM pod with two data-parallel ranks binds them. */
async function rankPublishers(ranks: number): Promise<{ pubs: Publisher[]; port: number }> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const first = new Publisher({ linger: 0 });
    await first.bind('tcp://127.0.0.1:*');
    const port = Number(/:(\d+)$/.exec(first.lastEndpoint!)![1]);
    const pubs = [first];
    try {
      for (let r = 1; r < ranks; r++) {
        const next = new Publisher({ linger: 0 });
        pubs.push(next);
        await next.bind(`tcp://127.0.0.1:${port + r}`);
      }
      open.pubs.push(...pubs);
      return { pubs, port };
    } catch {
      for (const p of pubs) p.close();
    }
  }
  throw new Error('no free consecutive ports');
}

/** Publishes each rank's seq-0 store until the service has indexed it (a PUB drops what precedes the subscription). */
async function publishUntilIndexed(svc: TestService, pubs: Publisher[], identities: string[], expected = 3) {
  const deadline = Date.now() + 5_000;
  for (let r = 0; r < pubs.length; r++) {
    while (svc.service.index.entriesOf(identities[r]) !== expected) {
      if (Date.now() > deadline) throw new Error(`rank ${r} never indexed as ${identities[r]}`);
      await pubs[r].send(kvMessage(TOPIC, 0, storeOf(r)));
      await new Promise((res) => setTimeout(res, 20));
    }
  }
}

async function matched(svc: TestService, rank: number, candidates: string[]): Promise<Record<string, number>> {
  const res = await svc.kv.call('Score', { model: MODEL, tokens: { tokenIds: promptOf(rank) }, candidates });
  return Object.fromEntries(
    res.scores.map((s: { endpoint: string; matchedBlocks: number }) => [s.endpoint, s.matchedBlocks]),
  );
}

const LLMD = [`${POD}:8000`, `${POD}:8001`];

describe('data-parallel identity', () => {
  it('default: rank r is <ip>:<port>@dp<r> from the topic, so llm-d-style candidates miss rank 1', async () => {
    const svc = await startTestService();
    open.services.push(svc);
    const { pubs, port } = await rankPublishers(2);
    await svc.service.transport.addEndpoint(`tcp://127.0.0.1:${port};ranks=2`);
    await publishUntilIndexed(svc, pubs, [`${POD}:8000`, `${POD}:8000@dp1`]);
    expect(await matched(svc, 1, [...LLMD, `${POD}:8000@dp1`])).toEqual({
      [`${POD}:8000`]: 0,
      [`${POD}:8001`]: 0,
      [`${POD}:8000@dp1`]: 3,
    });
  });

  it('serving=<ip>:<port> (llm-d): rank r is scored as <ip>:<port + r>, each rank its own blocks', async () => {
    const svc = await startTestService();
    open.services.push(svc);
    const { pubs, port } = await rankPublishers(2);
    await svc.service.transport.addEndpoint(`tcp://127.0.0.1:${port};ranks=2;serving=${POD}:8000`);
    await publishUntilIndexed(svc, pubs, LLMD);
    expect(await matched(svc, 0, LLMD)).toEqual({ [`${POD}:8000`]: 3, [`${POD}:8001`]: 0 });
    expect(await matched(svc, 1, LLMD)).toEqual({ [`${POD}:8000`]: 0, [`${POD}:8001`]: 3 });
    // ListEndpoints names each rank with its socket.
    const listed = (await svc.kv.call('ListEndpoints', {})).endpoints
      .filter((e: { endpoint: string }) => LLMD.includes(e.endpoint))
      .map((e: { endpoint: string; dataParallelRank: number; zmqAddress: string; models: string[] }) => [
        e.endpoint,
        e.dataParallelRank,
        e.zmqAddress,
        e.models,
      ]);
    expect(listed).toEqual([
      [`${POD}:8000`, 0, `tcp://127.0.0.1:${port}`, [MODEL]],
      [`${POD}:8001`, 1, `tcp://127.0.0.1:${port + 1}`, [MODEL]],
    ]);
    // Removing one rank's identity closes the whole connection (both ranks) and clears it.
    expect(await svc.kv.call('RemoveEndpoint', { endpoint: `${POD}:8001` })).toEqual({ clearedEntries: '3' });
    expect([svc.service.index.entriesOf(`${POD}:8000`), svc.service.index.entriesOf(`${POD}:8001`)]).toEqual([0, 0]);
    expect(svc.service.transport.connectedEndpoints()).toEqual([]);
  });

  it('AddEndpoint: serving_port_ranks and explicit rank_endpoints', async () => {
    const svc = await startTestService();
    open.services.push(svc);
    const a = await rankPublishers(2);
    const added = await svc.kv.call('AddEndpoint', {
      endpoint: `${POD}:8000`,
      zmqAddress: `tcp://127.0.0.1:${a.port}`,
      ranks: 2,
      servingPortRanks: true,
    });
    expect(added.endpoint).toMatchObject({ endpoint: `${POD}:8000`, state: 'live' });
    await publishUntilIndexed(svc, a.pubs, LLMD);
    expect(await matched(svc, 1, LLMD)).toEqual({ [`${POD}:8000`]: 0, [`${POD}:8001`]: 3 });

    const b = await rankPublishers(2);
    const explicit = ['10.0.0.6:9100', '10.0.0.7:9100'];
    await svc.kv.call('AddEndpoint', {
      endpoint: `${POD}:8000`,
      zmqAddress: `tcp://127.0.0.1:${b.port}`,
      ranks: 2,
      rankEndpoints: explicit,
    });
    await publishUntilIndexed(svc, b.pubs, explicit);
    expect(await matched(svc, 0, explicit)).toEqual({ '10.0.0.6:9100': 3, '10.0.0.7:9100': 0 });
    expect(await matched(svc, 1, explicit)).toEqual({ '10.0.0.6:9100': 0, '10.0.0.7:9100': 3 });
    expect(svc.service.transport.connectedEndpoints().map((c) => c.spec.identities)).toEqual([
      { kind: 'serving', endpoint: `${POD}:8000` },
      { kind: 'explicit', endpoints: explicit },
    ]);
  });

  it("AddEndpoint max_blocks with rank_endpoints: the bound applies to each rank's own scoring identity", async () => {
    const svc = await startTestService();
    open.services.push(svc);
    const a = await rankPublishers(2);
    const explicit = ['10.0.0.6:9100', '10.0.0.7:9100'];
    await svc.kv.call('AddEndpoint', {
      endpoint: `${POD}:8000`,
      zmqAddress: `tcp://127.0.0.1:${a.port}`,
      ranks: 2,
      rankEndpoints: explicit,
      maxBlocks: '2',
    });
    // Each rank stores 3 blocks and keeps the 2 youngest under its own identity (not under endpoint or <endpoint>@dp1).
    await publishUntilIndexed(svc, a.pubs, explicit, 2);
    expect(await matched(svc, 1, explicit)).toEqual({ '10.0.0.6:9100': 0, '10.0.0.7:9100': 0 }); // block 1 of each prompt dropped
    expect(svc.service.ingestor.counters.boundDrops).toBe(2);
    // Removed, the bound goes: the same identities through an unbounded connection keep all 3 blocks.
    await svc.kv.call('RemoveEndpoint', { endpoint: explicit[0] });
    const b = await rankPublishers(2);
    await svc.kv.call('AddEndpoint', {
      endpoint: `${POD}:8000`,
      zmqAddress: `tcp://127.0.0.1:${b.port}`,
      ranks: 2,
      rankEndpoints: explicit,
    });
    await publishUntilIndexed(svc, b.pubs, explicit);
    expect(await matched(svc, 1, explicit)).toEqual({ '10.0.0.6:9100': 0, '10.0.0.7:9100': 3 });
  });

  it('AddEndpoint refuses inconsistent identities, naming the field, and connects nothing', async () => {
    const svc = await startTestService();
    open.services.push(svc);
    const base = { endpoint: `${POD}:8000`, zmqAddress: 'tcp://127.0.0.1:5999' };
    const cases: [object, string][] = [
      [{ ranks: 2, rankEndpoints: ['10.0.0.6:1'] }, 'rank_endpoints: 1 identities for 2 rank(s)'],
      [{ ranks: 2, rankEndpoints: ['10.0.0.6:1', 'nope'] }, 'rank_endpoints[1]: "nope" is not <host>:<port>'],
      [
        { ranks: 2, rankEndpoints: ['10.0.0.6:1', '10.0.0.6:2'], servingPortRanks: true },
        'rank_endpoints: give rank_endpoints or serving_port_ranks, not both',
      ],
      [{ ranks: 65 }, 'ranks: must be 1..64, got 65'],
      [{ discoveryUrl: 'http://127.0.0.1:8000' }, 'zmq_address: give zmq_address or discovery_url, not both'],
      [
        { zmqAddress: '', discoveryUrl: 'ftp://127.0.0.1:8000' },
        'discovery_url: "ftp://127.0.0.1:8000" is not http(s)://<host>:<port>',
      ],
    ];
    for (const [extra, details] of cases) {
      const err = await svc.kv.call('AddEndpoint', { ...base, ...extra }).catch((e: { details: string }) => e);
      expect(err.details).toBe(details);
    }
    expect(svc.service.transport.connectedEndpoints()).toEqual([]);
  });
});

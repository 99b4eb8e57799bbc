import { encode } from '@msgpack/msgpack';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { SimPublisher } from '../../src/sim/publisher/publisher.js';
import { startTestService, type TestService } from '../support/service.js';
import { tokenRange, waitFor } from '../support/zmq.js';

/**
 * Discovery (issue 13 item 7). vLLM binds its KV-event publishers on port 0 and lists what each data-parallel rank
 * bound at `GET /kv_event_sources` on its HTTP port (vLLM #55844; the route is
 * vllm/entrypoints/serve/kv_events/api_router.py, a bare JSON array of `{data_parallel_rank, endpoint,
 * replay_endpoint, topic}`). Here: a real HTTP server on 127.0.0.1 serving that shape, real ZMQ publishers (and replay
 * ROUTERs) bound on port 0, the whole service with its gRPC API.
 */

const MODEL = 'Qwen/Qwen3-8B';
const POD = '10.0.0.5:8000';
const TOPIC = `kv@${POD}@${MODEL}`;
const DP1 = `${POD}@dp1`;

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** A vLLM HTTP port stand-in: answers GET /kv_event_sources with whatever `handler` does at the time. */
class SourcesServer {
  handler: Handler = (_req, res) => res.end('[]');
  requests = 0;
  private readonly server: Server;
  constructor() {
    this.server = createServer((req, res) => {
      this.requests++;
      if (req.url !== '/kv_event_sources') {
        res.statusCode = 404;
        res.end();
        return;
      }
      this.handler(req, res);
    });
  }
  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }
  /** Serves this list as vLLM does (application/json, bare array). */
  serve(sources: unknown[]): void {
    this.handler = (_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(sources));
    };
  }
  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

const open: { services: TestService[]; pubs: SimPublisher[]; servers: SourcesServer[] } = {
  services: [],
  pubs: [],
  servers: [],
};
afterEach(async () => {
  for (const s of open.services.splice(0)) await s.stop();
  for (const p of open.pubs.splice(0)) await p.close();
  for (const s of open.servers.splice(0)) await s.close();
});

async function publisher(): Promise<SimPublisher> {
  const pub = new SimPublisher({ topic: TOPIC, endpoint: 'tcp://127.0.0.1:*', replayEndpoint: 'tcp://127.0.0.1:*' });
  await pub.start();
  open.pubs.push(pub);
  return pub;
}
const portOf = (address: string) => Number(/:(\d+)$/.exec(address)![1]);
/** The source vLLM lists for a rank; `wildcard` reports the host as an explicit `tcp://*:<port>` bind does. */
const sourceOf = (pub: SimPublisher, rank: number, wildcard = false) => ({
  data_parallel_rank: rank,
  endpoint: wildcard ? `tcp://0.0.0.0:${portOf(pub.pubAddress!)}` : pub.pubAddress,
  replay_endpoint: pub.replayAddress,
  topic: TOPIC,
});

/** Three blocks of `tokens` stored on `rank`, as one vLLM batch. */
const store = (rank: number, first: number) =>
  encode(
    [
      Date.now() / 1000,
      [
        [
          'BlockStored',
          [BigInt(first), BigInt(first + 1), BigInt(first + 2)],
          null,
          tokenRange(48, first),
          16,
          null,
          null,
        ],
      ],
      rank,
    ],
    {
      useBigInt64: true,
    },
  );
const empty = (rank: number) => encode([Date.now() / 1000, [], rank]);

/**
 * Publishes empty batches until the service follows `identity` from this publisher (the first one received may
 * join mid-stream: the replay ROUTER listed for the rank fills the start), then one store; waits until indexed.
 */
async function storeThrough(
  svc: TestService,
  pub: SimPublisher,
  rank: number,
  identity: string,
  first: number,
  expected = 3,
): Promise<void> {
  const stream = () => svc.service.pipeline.stream(identity);
  const deadline = Date.now() + 5_000;
  while (!(stream() && stream()!.last === pub.seq - 1n && pub.seq > 0n)) {
    if (Date.now() > deadline) throw new Error(`${identity} never followed ${pub.pubAddress}`);
    await pub.publish(empty(rank));
    await new Promise((r) => setTimeout(r, 20));
  }
  await pub.publish(store(rank, first));
  await waitFor(
    () => stream()!.last === pub.seq - 1n && svc.service.index.entriesOf(identity) === expected,
    `${identity} indexed from ${pub.pubAddress}`,
  );
}

async function matched(svc: TestService, first: number, candidates: string[]): Promise<number[]> {
  const res = await svc.kv.call('Score', { model: MODEL, tokens: { tokenIds: tokenRange(48, first) }, candidates });
  return res.scores.map((s: { matchedBlocks: number }) => s.matchedBlocks);
}

const fast = { intervalMs: 40, timeoutMs: 300, maxBackoffMs: 160 };

describe('discovery from a vLLM HTTP base URL', () => {
  it('connects to the listed per-rank sockets, follows a restart onto new ports (identity kept), drops unlisted ranks', async () => {
    const http = new SourcesServer();
    open.servers.push(http);
    const url = await http.start();
    const [a0, a1] = [await publisher(), await publisher()];
    http.serve([sourceOf(a0, 0, true), sourceOf(a1, 1)]);
    const svc = await startTestService({
      overrides: { zmq: { mode: 'bind', addresses: [] }, endpoints: { static: [url] }, discovery: fast },
    });
    open.services.push(svc);
    const transport = svc.service.transport;

    await storeThrough(svc, a0, 0, POD, 100);
    await storeThrough(svc, a1, 1, DP1, 200);
    expect(await matched(svc, 100, [POD, DP1])).toEqual([3, 0]);
    expect(await matched(svc, 200, [POD, DP1])).toEqual([0, 3]);
    // The wildcard host was replaced by the URL's; the listed replay ROUTERs are the streams' replay addresses.
    expect([transport.rankSocketAddress(url, 0), transport.rankSocketAddress(url, 1)]).toEqual([
      a0.pubAddress,
      a1.pubAddress,
    ]);
    expect([svc.service.pipeline.stream(POD)!.replayAddress, svc.service.pipeline.stream(DP1)!.replayAddress]).toEqual([
      a0.replayAddress,
      a1.replayAddress,
    ]);
    expect(transport.discoveryCounters.changes).toEqual({ added: 2, moved: 0, removed: 0 });
    const listed = (await svc.kv.call('ListEndpoints', {})).endpoints.map((e: Record<string, unknown>) => [
      e.endpoint,
      e.dataParallelRank,
      e.zmqAddress,
      e.discoveryUrl,
      e.discoveryError,
      e.discoveryFailures,
    ]);
    expect(listed).toEqual([
      [POD, 0, a0.pubAddress, url, '', '0'],
      [DP1, 1, a1.pubAddress, url, '', '0'],
    ]);

    // The pod restarts: new engine processes bind new ephemeral ports. Old sockets closed, new ones connected, the
    // identities stay and start empty (the new engines' caches are empty).
    const [b0, b1] = [await publisher(), await publisher()];
    http.serve([sourceOf(b0, 0), sourceOf(b1, 1)]);
    await waitFor(
      () =>
        transport.rankSocketAddress(url, 0) === b0.pubAddress && transport.rankSocketAddress(url, 1) === b1.pubAddress,
      'moved to the new sockets',
    );
    expect(transport.discoveryCounters.changes).toEqual({ added: 2, moved: 2, removed: 0 });
    expect([svc.service.index.entriesOf(POD), svc.service.index.entriesOf(DP1)]).toEqual([0, 0]);
    expect(svc.service.pipeline.counters.clears.moved).toBe(2);
    await storeThrough(svc, b0, 0, POD, 300);
    await storeThrough(svc, b1, 1, DP1, 400);
    expect(await matched(svc, 300, [POD, DP1])).toEqual([3, 0]);
    expect(await matched(svc, 400, [POD, DP1])).toEqual([0, 3]);
    expect(await matched(svc, 100, [POD, DP1])).toEqual([0, 0]);
    // The old publishers are no longer heard.
    const applied = svc.service.pipeline.counters.applied;
    await a0.publish(store(0, 500));
    await new Promise((r) => setTimeout(r, 100));
    expect(svc.service.pipeline.counters.applied).toBe(applied);

    // Rank 1 is no longer listed: its socket is closed, its identity cleared and forgotten.
    http.serve([sourceOf(b0, 0)]);
    await waitFor(() => transport.discoveryCounters.changes.removed === 1, 'rank 1 removed');
    expect(svc.service.index.entriesOf(DP1)).toBe(0);
    expect(svc.service.pipeline.listEndpoints().map((e) => e.identity)).toEqual([POD]);
    expect(svc.service.index.entriesOf(POD)).toBe(3);
  });

  it('refuses bad answers with a counted, named reason and changes nothing; backs off; recovers', async () => {
    const http = new SourcesServer();
    open.servers.push(http);
    const url = await http.start();
    const a0 = await publisher();
    http.serve([sourceOf(a0, 0)]);
    const svc = await startTestService({
      overrides: { zmq: { mode: 'bind', addresses: [] }, discovery: { ...fast, maxBodyBytes: 1024 * 1024 } },
    });
    open.services.push(svc);
    const transport = svc.service.transport;
    await svc.kv.call('AddEndpoint', { endpoint: POD, discoveryUrl: url });
    await waitFor(() => transport.discoveryPoller(url) !== null, 'poller');
    const poller = transport.discoveryPoller(url)!;
    await storeThrough(svc, a0, 0, POD, 100);
    const polls = transport.discoveryCounters.polls;
    const before = () => ({
      entries: svc.service.index.entriesOf(POD),
      socket: transport.rankSocketAddress(url, 0),
      ids: svc.service.pipeline.listEndpoints().map((e) => e.identity),
    });
    const steady = before();
    expect(steady).toEqual({ entries: 3, socket: a0.pubAddress, ids: [POD] });

    const other = await publisher(); // a bad answer must never connect to what it names
    const bad: [string, Handler][] = [
      ['bad_json', (_q, res) => res.end('<html>502 Bad Gateway</html>')],
      ['timeout', (_q, res) => res.write('[{"data_parallel_rank": 0, ')], // headers and half a body, then silence
      [
        'too_many_sources',
        (_q, res) =>
          res.end(
            JSON.stringify(
              Array.from({ length: 10_000 }, (_, r) => ({ data_parallel_rank: r, endpoint: other.pubAddress })),
            ),
          ),
      ],
      ['too_large', (_q, res) => res.end(`[${' '.repeat(2 * 1024 * 1024)}]`)],
      ['bad_field', (_q, res) => res.end(JSON.stringify([{ ...sourceOf(other, 0), data_parallel_rank: '0' }]))],
      ['bad_shape', (_q, res) => res.end(JSON.stringify({ endpoints: [sourceOf(other, 0)] }))],
      ['duplicate_rank', (_q, res) => res.end(JSON.stringify([sourceOf(other, 0), sourceOf(other, 0)]))],
      ['http_status', (_q, res) => ((res.statusCode = 503), res.end())],
    ];
    for (const [reason, handler] of bad) {
      http.handler = handler;
      await waitFor(() => (polls[reason] ?? 0) >= 2, `two ${reason} refusals`, 8_000);
      expect(poller.status()).toMatchObject({ state: 'failing', sources: [{ rank: 0, endpoint: a0.pubAddress }] });
      expect(poller.status().lastError).toMatch(new RegExp(`^${reason}: `));
      expect(before()).toEqual(steady);
    }
    expect(polls.ok).toBeGreaterThanOrEqual(1);
    expect(Object.keys(polls).sort()).toEqual([
      'bad_field',
      'bad_json',
      'bad_shape',
      'duplicate_rank',
      'http_status',
      'ok',
      'timeout',
      'too_large',
      'too_many_sources',
    ]);
    expect(poller.status().lastError).toBe('http_status: GET /kv_event_sources answered HTTP 503');
    // Failures in a row back off: 40 ms × 2^n, capped at 160 ms.
    expect(poller.status().failures).toBeGreaterThanOrEqual(2);
    expect(poller.nextDelay()).toBe(160);
    const row = (await svc.kv.call('ListEndpoints', {})).endpoints.find(
      (e: { endpoint: string }) => e.endpoint === POD,
    );
    expect(row).toMatchObject({
      discoveryUrl: url,
      discoveryError: 'http_status: GET /kv_event_sources answered HTTP 503',
      zmqAddress: a0.pubAddress,
      state: 'live',
    });
    expect(Number(row.discoveryFailures)).toBeGreaterThanOrEqual(2);
    const metrics = await (await fetch(`http://127.0.0.1:${svc.api.metricsPort}/metrics`)).text();
    expect(metrics).toMatch(/kv_indexer_discovery_polls_total\{outcome="too_many_sources"\} [1-9]/);
    expect(metrics).toMatch(/kv_indexer_discovery_failing 1/);
    expect(transport.discoveryCounters.changes).toEqual({ added: 1, moved: 0, removed: 0 });

    // A good answer again: the state is ok and the counter of failures in a row is back to 0.
    http.serve([sourceOf(a0, 0)]);
    await waitFor(() => poller.status().state === 'ok', 'recovered', 8_000);
    expect(poller.status()).toMatchObject({ lastError: null, failures: 0 });
    expect(poller.nextDelay()).toBe(40);
    expect(before()).toEqual(steady);
  });

  it('a URL that never answers well is listed with its error, before any rank publishes', async () => {
    const http = new SourcesServer();
    open.servers.push(http);
    const url = await http.start();
    http.handler = (_q, res) => res.end('not json');
    const svc = await startTestService({ overrides: { zmq: { mode: 'bind', addresses: [] }, discovery: fast } });
    open.services.push(svc);
    const added = await svc.kv.call('AddEndpoint', { endpoint: POD, discoveryUrl: url, servingPortRanks: true });
    expect(added.endpoint).toMatchObject({ endpoint: POD, discoveryUrl: url });
    await waitFor(() => (svc.service.transport.discoveryCounters.polls.bad_json ?? 0) >= 1, 'a refusal');
    const rows = (await svc.kv.call('ListEndpoints', {})).endpoints;
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ endpoint: POD, state: 'degraded', discoveryUrl: url, zmqAddress: '' });
    expect(rows[0].discoveryError).toMatch(/^bad_json: /);
    expect(svc.service.transport.connectedEndpoints()).toEqual([
      {
        spec: {
          address: url,
          replay: null,
          ranks: 1,
          endpoint: POD,
          identities: { kind: 'serving', endpoint: POD },
          discovery: true,
        },
        origin: 'api',
      },
    ]);
    // RemoveEndpoint by the identity stops the polling.
    expect(await svc.kv.call('RemoveEndpoint', { endpoint: POD })).toEqual({ clearedEntries: '0' });
    const requests = http.requests;
    await new Promise((r) => setTimeout(r, 150));
    expect(http.requests).toBe(requests);
    expect(svc.service.transport.connectedEndpoints()).toEqual([]);
  });

  it('serving identities with discovery: rank r of the list is <ip>:<port + r> (llm-d)', async () => {
    const http = new SourcesServer();
    open.servers.push(http);
    const url = await http.start();
    const [a0, a1] = [await publisher(), await publisher()];
    http.serve([sourceOf(a0, 0), sourceOf(a1, 1)]);
    const svc = await startTestService({
      overrides: {
        zmq: { mode: 'bind', addresses: [] },
        endpoints: { static: [`${url};serving=${POD}`] },
        discovery: fast,
      },
    });
    open.services.push(svc);
    await storeThrough(svc, a0, 0, POD, 100);
    await storeThrough(svc, a1, 1, '10.0.0.5:8001', 200);
    expect(await matched(svc, 200, [POD, '10.0.0.5:8001'])).toEqual([0, 3]);
    // A rank beyond an explicit identity list is refused as unknown_rank (nothing connected for it).
    await svc.service.transport.removeEndpoint(url);
    await svc.service.transport.addEndpoint(`${url};identities=${POD}`);
    await waitFor(() => (svc.service.transport.discoveryCounters.polls.unknown_rank ?? 0) >= 1, 'unknown_rank');
    expect(svc.service.transport.rankSocketAddress(url, 0)).toBeNull();
    expect(svc.service.transport.discoveryPoller(url)!.status().lastError).toBe(
      'unknown_rank: data_parallel_rank 1 has no configured identity',
    );
  });

  it('a store bound (max_blocks) with serving identities reaches every listed rank, not only rank 0', async () => {
    const http = new SourcesServer();
    open.servers.push(http);
    const url = await http.start();
    const [a0, a1] = [await publisher(), await publisher()];
    http.serve([sourceOf(a0, 0), sourceOf(a1, 1)]);
    const svc = await startTestService({ overrides: { zmq: { mode: 'bind', addresses: [] }, discovery: fast } });
    open.services.push(svc);
    const R1 = '10.0.0.5:8001';
    // Through the API: discovery_url + serving_port_ranks + max_blocks (rank r is <ip>:<port + r>).
    await svc.kv.call('AddEndpoint', { endpoint: POD, discoveryUrl: url, servingPortRanks: true, maxBlocks: '2' });
    // Each rank stores 3 blocks; the bound keeps the 2 youngest under each rank's own identity.
    await storeThrough(svc, a0, 0, POD, 100, 2);
    await storeThrough(svc, a1, 1, R1, 200, 2);
    expect([svc.service.index.entriesOf(POD), svc.service.index.entriesOf(R1)]).toEqual([2, 2]);
    expect(await matched(svc, 200, [POD, R1])).toEqual([0, 0]); // the first block of rank 1's prompt was dropped
    // Rank 1 no longer listed: its bound goes with it (back to the default, none here); listed again, it is bounded again.
    http.serve([sourceOf(a0, 0)]);
    await waitFor(() => svc.service.transport.discoveryCounters.changes.removed === 1, 'rank 1 removed');
    http.serve([sourceOf(a0, 0), sourceOf(a1, 1)]);
    await waitFor(() => svc.service.transport.rankSocketAddress(url, 1) === a1.pubAddress, 'rank 1 back');
    await storeThrough(svc, a1, 1, R1, 300, 2);
    // Removing the endpoint takes the bound off every rank: a new unbounded connection for rank 1 keeps all 3 blocks.
    await svc.kv.call('RemoveEndpoint', { endpoint: POD });
    await svc.service.transport.addEndpoint(`${a1.pubAddress};serving=${R1}`);
    await storeThrough(svc, a1, 0, R1, 400);
  });
});

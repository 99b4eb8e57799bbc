import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { Publisher } from 'zeromq';
import { embeddedConfig } from '../../src/service/embedded.js';
import { EventPipeline, Ingestor } from '../../src/events/index.js';
import { MemoryIndex, TierRegistry } from '../../src/index/index.js';
import { BlockHasher } from '../../src/keys/index.js';
import { startService, type RunningService } from '../../src/service/start-service.js';
import { startApi, type RunningApi } from '../../src/service/start-api.js';
import { kvMessage, tokenRange, waitFor } from '../support/zmq.js';

const MODEL = 'churn/model';
const endpoint = (i: number) => `10.0.0.${i}:8000`;

/**
 * Issue 17, bug 3: after endpoints.maxTracked identities had ever published (pod churn in bind mode), every new pod
 * was dropped for the rest of the process's life with one warning, and gone pods kept their metric series. Now a
 * stale identity gives its slot (and its series) to the new one, and a drop while every slot is live is counted and
 * warned about again (rate-limited), with the count.
 */
describe('endpoint churn at endpoints.maxTracked (real ZMQ publishers, bind mode)', () => {
  const logs: Record<string, unknown>[] = [];
  const log = pino(
    { level: 'info' },
    { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) },
  );
  let service: RunningService;
  let api: RunningApi;
  const pubs: Publisher[] = [];
  const seqs = new Map<number, number>();

  afterAll(async () => {
    for (const p of pubs) p.close();
    await api?.stop();
    await service?.stop();
  });

  /** One batch of pod i: a stored block of 16 tokens (distinct per pod), sequence numbers counting up. */
  function batch(i: number): Buffer[] {
    const seq = seqs.get(i) ?? 0;
    seqs.set(i, seq + 1);
    return kvMessage(`kv@${endpoint(i)}@${MODEL}`, seq, [
      Date.now() / 1000,
      [['BlockStored', [BigInt(1000 + i)], null, tokenRange(16, i * 100), 16, null, null]],
      null,
    ]);
  }

  async function publisher(i: number, arrived: () => boolean): Promise<Publisher> {
    const pub = new Publisher();
    pubs.push(pub);
    pub.connect(service.subscriber.lastEndpoint!);
    await waitFor(
      () => {
        void pub.send(batch(i));
        return arrived();
      },
      `pod ${i}'s first batch`,
      10_000,
    );
    return pub;
  }

  const identities = () => service.transport.listEndpoints().map((e) => e.identity);
  const scrape = async () => (await fetch(`http://127.0.0.1:${api.metricsPort}/metrics`)).text();
  const drops = () => service.pipeline.counters.dropped.too_many_endpoints ?? 0;

  it("drops a 4th pod while 3 are live (counted, one warning per interval), then gives it a stale pod's slot", async () => {
    const config = embeddedConfig({ endpoints: { maxTracked: 3, staleSeconds: 1.5 } });
    service = await startService(config, log);
    api = await startApi(service, config, log);
    const live = new Map<number, Publisher>();
    for (const i of [1, 2, 3]) live.set(i, await publisher(i, () => identities().includes(endpoint(i))));
    await waitFor(
      () => [1, 2, 3].every((i) => (service.index as MemoryIndex).entriesOf(endpoint(i)) === 1),
      'three pods indexed',
    );

    // All three slots live: pod 4 is dropped, every batch counted, one warning (rate-limited, with the count).
    const pub4 = await publisher(4, () => drops() >= 1);
    for (let k = 0; k < 5; k++) await pub4.send(batch(4));
    await waitFor(() => drops() >= 6, 'six dropped batches');
    const warnings = logs.filter((l) => String(l.msg).startsWith('too many endpoints'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({
      level: 40,
      identity: endpoint(4),
      maxEndpoints: 3,
      droppedSinceLastWarning: 1,
      droppedTotal: 1,
    });
    expect(identities()).toEqual([endpoint(1), endpoint(2), endpoint(3)]);
    expect(await scrape()).toContain(`kv_indexer_messages_dropped_total{reason="too_many_endpoints"} ${drops()}`);

    // Pod 1 goes away (silent); pods 2 and 3 keep publishing. Once pod 1 is stale, pod 4 takes its slot.
    live.get(1)!.close();
    const heartbeat = setInterval(() => {
      for (const i of [2, 3]) void live.get(i)!.send(batch(i));
    }, 200);
    try {
      await waitFor(
        () => {
          void pub4.send(batch(4));
          return identities().includes(endpoint(4));
        },
        "pod 4 admitted in pod 1's slot",
        10_000,
      );
      await waitFor(() => (service.index as MemoryIndex).entriesOf(endpoint(4)) >= 1, 'pod 4 indexed');
      expect(identities()).toEqual([endpoint(2), endpoint(3), endpoint(4)]);
      expect((service.index as MemoryIndex).entriesOf(endpoint(1))).toBe(0); // nobody vouches for pod 1's cache any more
      expect(service.pipeline.counters.clears).toEqual({ reclaimed: 1 });
      expect(logs.find((l) => String(l.msg).startsWith('endpoints.maxTracked reached'))).toMatchObject({
        endpoint: endpoint(1),
      });
      // Pod 1's per-endpoint series are gone from the scrape; pod 4's are there.
      const text = await scrape();
      expect(text).not.toContain(`endpoint="${endpoint(1)}"`);
      expect(text).toMatch(
        new RegExp(
          `kv_indexer_endpoint_batches_applied_total\\{endpoint="${endpoint(4).replace(/\./g, '\\.')}"\\} \\d+`,
        ),
      );
    } finally {
      clearInterval(heartbeat);
    }
  }, 40_000);

  it('the warning repeats once per minute while drops go on, with the number dropped meanwhile', () => {
    let now = 5_000_000;
    const tiers = new TierRegistry();
    const index = new MemoryIndex({ tiers });
    const warned: [Record<string, unknown>, string][] = [];
    const pipeline = new EventPipeline(
      new Ingestor({ hasher: new BlockHasher({ blockSize: 16, hashSeed: '' }), writer: index, tiers }),
      { warn: (o, m) => warned.push([o as Record<string, unknown>, m]), info: () => undefined },
      { limits: { maxEndpoints: 1 }, clock: () => now },
    );
    pipeline.handle(batch(1));
    for (let k = 0; k < 3; k++) pipeline.handle(batch(5));
    now += 59_999;
    pipeline.handle(batch(6));
    now += 1;
    pipeline.handle(batch(7));
    expect(warned.map(([o]) => [o.identity, o.droppedSinceLastWarning, o.droppedTotal])).toEqual([
      [endpoint(5), 1, 1],
      [endpoint(7), 4, 5],
    ]);
    expect(pipeline.counters.dropped).toEqual({ too_many_endpoints: 5 });
  });

  it('a retired identity (stale sweep or reclaimed slot) forgets its wire tallies with it: back, it counts from 0', async () => {
    let now = 1_000_000;
    const tiers = new TierRegistry();
    const index = new MemoryIndex({ tiers });
    const pipeline = new EventPipeline(
      new Ingestor({ hasher: new BlockHasher({ blockSize: 16, hashSeed: '' }), writer: index, tiers }),
      { warn: () => undefined, info: () => undefined },
      { limits: { maxEndpoints: 1 }, clock: () => now, staleMs: 1_000, clearStaleMs: 5_000 },
    );
    const wireOf = (i: number) => pipeline.listEndpoints().find((e) => e.identity === endpoint(i))?.wire;
    const stored = (n: number) => ({
      storedBlocksByLocality: { unspecified: n },
      storedBlocksByOwnership: {},
      skippedEvents: {},
    });
    for (let k = 0; k < 2; k++) pipeline.handle(batch(11));
    await pipeline.idle();
    expect(wireOf(11)).toEqual(stored(2));
    // Reclaimed: pod 12 takes pod 11's slot once pod 11 is stale; pod 11 back (after pod 12 is stale) starts from 0.
    now += 1_001;
    pipeline.handle(batch(12));
    await pipeline.idle();
    expect(pipeline.listEndpoints().map((e) => e.identity)).toEqual([endpoint(12)]);
    now += 1_001;
    pipeline.handle(batch(11));
    await pipeline.idle();
    expect(pipeline.counters.clears).toEqual({ reclaimed: 2 });
    expect(wireOf(11)).toEqual(stored(1));
    // Swept as stale (endpoints.clearStaleSeconds): the same.
    now += 5_001;
    expect(pipeline.sweepStale()).toEqual([endpoint(11)]);
    pipeline.handle(batch(11));
    await pipeline.idle();
    expect(wireOf(11)).toEqual(stored(1));
  });
});

import type { EndpointSpec, EventTransport } from '../events/index.js';
import type { EndpointLeases, IndexWriter } from '../index/index.js';
import { ConfigError, type Logger } from '../ops/index.js';

/**
 * Replicas sharing one Redis index, in connect mode: each static endpoint is ingested by the one replica holding its
 * lease (docs/redis.md). Every tick (a third of the lease TTL) this replica acquires free leases and renews its own in
 * one round trip, connects to endpoints it now owns and disconnects from endpoints another replica took over
 * (leaving their entries, which the new owner maintains). Taking over an endpoint someone else held (epoch > 1)
 * clears its entries first: this replica cannot know what the previous owner wrote; the stream then rebuilds it
 * (joined mid-stream → replay from 0 when the publisher keeps a buffer, else from live events).
 */
export class EndpointOwnership {
  private readonly owned = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(
    private readonly specs: readonly EndpointSpec[],
    private readonly leases: EndpointLeases,
    private readonly transport: EventTransport,
    private readonly writer: IndexWriter,
    private readonly log: Logger,
  ) {
    for (const s of specs) {
      if (!s.endpoint)
        throw new ConfigError(
          `endpoint leases need the identity of every endpoint: add ;endpoint=<ip>:<port> to ${s.address}`,
        );
    }
  }

  /** Endpoint addresses this replica ingests. */
  ownedAddresses(): string[] {
    return [...this.owned];
  }

  async start(): Promise<void> {
    await this.tick();
    this.timer = setInterval(
      () => {
        this.ticking = this.ticking.then(() => this.tick());
      },
      Math.max(50, Math.floor(this.leases.ttlMs / 3)),
    );
    this.timer.unref();
  }

  /** Stops renewing; with `release`, hands every lease back so another replica can take over at once. */
  async stop(release: boolean): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.ticking;
    if (release) await this.leases.release().catch(() => 0);
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    let results;
    try {
      results = await this.leases.acquire(this.specs.map((s) => s.address));
    } catch (err) {
      // Redis unreachable: keep ingesting what we own until the leases could have expired elsewhere (next ticks).
      this.log.warn({ err: String(err) }, 'endpoint leases could not be renewed');
      return;
    }
    for (const r of results) {
      const spec = this.specs.find((s) => s.address === r.endpoint)!;
      if (r.status === 'held-by-other') {
        if (this.owned.delete(spec.address)) {
          await this.transport.removeEndpoint(spec.address, { keepEntries: true });
          this.log.info({ endpoint: spec.endpoint, owner: r.owner }, 'endpoint lease lost: another replica ingests it');
        }
        continue;
      }
      if (this.owned.has(spec.address) && r.status === 'renewed') continue;
      if (r.status === 'acquired' && r.epoch > 1) {
        // Clears the entries and, if this replica still has the stream (its own lease lapsed), its sequence state.
        this.transport.pipeline.clearEndpoint(spec.endpoint!, 'lease_takeover');
        await this.writer.flush();
      }
      if (!this.owned.has(spec.address)) {
        await this.transport.addEndpoint(spec, 'lease');
        this.owned.add(spec.address);
      }
      this.log.info({ endpoint: spec.endpoint, epoch: r.epoch, takeover: r.epoch > 1 }, 'endpoint lease acquired');
    }
  }
}

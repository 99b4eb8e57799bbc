import { unwatchFile, watchFile } from 'node:fs';
import { DiscoveryError, type DiscoveredSource } from './discovery-sources.js';
import {
  DEFAULT_DISCOVERY,
  DiscoveryPoller,
  newDiscoveryCounters,
  type DiscoveryOptions,
  type DiscoveryStatus,
} from './discovery.js';
import {
  parseEndpointSpec,
  rankAddress,
  rankIdentityOf,
  readEndpointFile,
  sameSpec,
  type EndpointSpec,
} from './endpoint-spec.js';
import type { Log } from '../common/index.js';
import type { EventPipeline } from './pipeline.js';
import { rankIdentity } from './wire/topic.js';
import { ZmqSubscriber, type CurveClientKeys } from './zmq-subscriber.js';

export interface TransportOptions {
  /** Addresses of the one bind-mode SUB socket (empty: no bind socket). */
  bind: readonly string[];
  /**
   * A serving process's feed of the bind-mode socket: the address of the primary's relay (serving-processes.ts),
   * which republishes every message the primary's bind socket receives. The bind subscriber connects to it instead of
   * binding `bind`, and its messages are handled as bind-mode messages (identity and replay address from the topic).
   */
  relay?: string | null;
  /** Connect-mode endpoints known at start (specs, see endpoint-spec.ts). */
  endpoints: readonly (string | EndpointSpec)[];
  /** A YAML/JSON file listing connect-mode endpoints, watched for changes; null for none. */
  endpointsFile?: string | null;
  /** How often the endpoints file is checked (ms). */
  fileCheckIntervalMs?: number;
  receiveHighWaterMark?: number;
  /**
   * CURVE client keys for every connect-mode endpoint (their publishers must be CURVE servers with that key); null =
   * plaintext. The bind socket and replay requests stay plaintext (docs/security.md).
   */
  curve?: CurveClientKeys | null;
  /** Polling of discovery endpoints (vLLM HTTP base URLs); defaults: DEFAULT_DISCOVERY. */
  discovery?: Partial<DiscoveryOptions>;
  /**
   * Called when a connect-mode spec is added (its store bound, possibly null) or removed (null), with the identities
   * it names: `endpoint` and its data-parallel ranks. The service passes it on to ingest (Ingestor.setStoreBound).
   */
  storeBound?: (identities: string[], bound: EndpointSpec['storeBound']) => void;
}

export type EndpointOrigin = 'static' | 'file' | 'api' | 'lease';

export interface ConnectedEndpoint {
  spec: EndpointSpec;
  origin: EndpointOrigin;
}

/** One rank's SUB socket of a connection. */
interface RankSocket {
  address: string;
  replay: string | null;
  sub: ZmqSubscriber;
}

interface Connection extends ConnectedEndpoint {
  /** Rank → its socket: ranks 0..n-1 of a static spec, or what the discovery URL lists. */
  sockets: Map<number, RankSocket>;
  poller: DiscoveryPoller | null;
}

/**
 * The sockets of the write path: one bind-mode SUB socket (every pod connects to it) and one SUB socket per
 * connect-mode endpoint rank, all feeding one EventPipeline. Both shapes can run at once. Connect-mode endpoints come
 * from the static list, the watched file, and addEndpoint/removeEndpoint (the API).
 */
export class EventTransport {
  readonly bindSubscriber: ZmqSubscriber;
  private readonly connections = new Map<string, Connection>();
  private watching: string | null = null;
  private reloading: Promise<void> = Promise.resolve();
  private stopped = false;
  /** Failed ZMQ handshakes of connect-mode sockets (CURVE), over the process's life. */
  handshakeFailures = 0;
  /** Discovery polls by outcome and the socket changes they made. */
  readonly discoveryCounters = newDiscoveryCounters();
  private readonly discovery: DiscoveryOptions;

  constructor(
    readonly pipeline: EventPipeline,
    private readonly options: TransportOptions,
    private readonly log: Pick<Log, 'warn' | 'info' | 'error'>,
  ) {
    this.discovery = { ...DEFAULT_DISCOVERY, ...options.discovery };
    this.bindSubscriber = new ZmqSubscriber({
      mode: options.relay ? 'connect' : 'bind',
      addresses: options.relay ? [options.relay] : options.bind,
      receiveHighWaterMark: options.receiveHighWaterMark,
    });
  }

  async start(): Promise<void> {
    if (this.options.bind.length > 0 || this.options.relay)
      await this.bindSubscriber.start((frames) => this.pipeline.handle(frames));
    for (const spec of this.options.endpoints) await this.addEndpoint(spec, 'static');
    const file = this.options.endpointsFile;
    if (file) {
      await this.reloadFile(file);
      this.watching = file;
      watchFile(file, { interval: this.options.fileCheckIntervalMs ?? 2_000, persistent: false }, () => {
        this.reloading = this.reloading.then(() => this.reloadFile(file));
      });
    }
  }

  /** Connects to an endpoint (idempotent by PUB address). Returns the parsed spec. */
  async addEndpoint(value: string | EndpointSpec, origin: EndpointOrigin = 'api'): Promise<EndpointSpec> {
    const spec = typeof value === 'string' ? parseEndpointSpec(value) : parseEndpointSpec({ ...value });
    if (this.stopped) throw new Error('transport stopped');
    const existing = this.connections.get(spec.address);
    if (existing) {
      if (sameSpec(existing.spec, spec)) return existing.spec;
      await this.removeEndpoint(spec.address);
    }
    const connection: Connection = { spec, origin, sockets: new Map(), poller: null };
    this.connections.set(spec.address, connection);
    if (spec.endpoint !== null) this.options.storeBound?.(specIdentities(spec), spec.storeBound ?? null);
    if (spec.discovery) {
      // The ranks' sockets come from the URL's answers; the first poll starts now, AddEndpoint does not wait for it.
      connection.poller = new DiscoveryPoller(
        spec.address,
        this.discovery,
        (sources) => this.applySources(connection, sources),
        this.discoveryCounters,
        this.log,
      );
      connection.poller.start();
    } else {
      for (let r = 0; r < spec.ranks; r++) {
        await this.openRank(
          connection,
          r,
          rankAddress(spec.address, r),
          spec.replay === null ? null : rankAddress(spec.replay, r),
        );
      }
    }
    this.log.info({ endpoint: spec, origin, curve: !!this.options.curve }, 'connected to endpoint');
    return spec;
  }

  /** Opens rank r's SUB socket of a connection; its messages carry the rank's configured identity, if any. */
  private async openRank(connection: Connection, rank: number, address: string, replay: string | null): Promise<void> {
    const spec = connection.spec;
    let reported = false;
    const sub = new ZmqSubscriber({
      mode: 'connect',
      addresses: [address],
      receiveHighWaterMark: this.options.receiveHighWaterMark,
      curve: this.options.curve,
      onHandshakeFailure: (error) => {
        this.handshakeFailures++;
        if (reported) return;
        reported = true; // once per socket: ZMQ retries every few hundred ms
        this.log.warn(
          { endpoint: address, error },
          'ZMQ handshake with the publisher failed (CURVE: wrong zmq.curveServerPublicKeyFile, or the publisher is no CURVE server or refuses this client); retrying, nothing is received until it succeeds',
        );
      },
    });
    connection.sockets.set(rank, { address, replay, sub });
    const messageOrigin = {
      source: spec.address,
      replay,
      expect: spec.endpoint,
      identity: rankIdentityOf(spec, rank),
      rank,
    };
    await sub.start((frames) => this.pipeline.handle(frames, messageOrigin));
  }

  /**
   * A good discovery answer: ranks no longer listed are closed and their identities cleared; a rank listed at new
   * addresses (its engine restarted on new ephemeral ports) has its socket replaced and its identity cleared and
   * resynchronised (the new engine's cache starts empty; the identity stays); new ranks are connected.
   */
  private async applySources(connection: Connection, sources: DiscoveredSource[]): Promise<void> {
    const spec = connection.spec;
    if (this.connections.get(spec.address) !== connection) return; // removed meanwhile
    if (spec.identities) {
      const missing = sources.find((s) => rankIdentityOf(spec, s.rank) === null);
      if (missing)
        throw new DiscoveryError('unknown_rank', `data_parallel_rank ${missing.rank} has no configured identity`);
    }
    const listed = new Map(sources.map((s) => [s.rank, s]));
    const changes = this.discoveryCounters.changes;
    const inRank = (r: number) => (s: { source: string; rank: number }) => s.source === spec.address && s.rank === r;
    for (const [rank, socket] of [...connection.sockets]) {
      if (listed.has(rank)) continue;
      connection.sockets.delete(rank);
      this.boundDiscoveredRank(spec, rank, null);
      await socket.sub.close();
      await this.pipeline.remove(inRank(rank));
      changes.removed++;
      this.log.info(
        { url: spec.address, rank, endpoint: socket.address },
        'discovery: rank no longer listed, disconnected',
      );
    }
    for (const source of sources) {
      const current = connection.sockets.get(source.rank);
      if (current && current.address === source.endpoint && current.replay === source.replay) continue;
      if (current) {
        connection.sockets.delete(source.rank);
        await current.sub.close();
        const cleared = this.pipeline.resetWhere(inRank(source.rank), 'moved');
        changes.moved++;
        this.log.info(
          { url: spec.address, rank: source.rank, from: current.address, to: source.endpoint, cleared },
          'discovery: rank moved to new sockets',
        );
      } else {
        changes.added++;
        this.boundDiscoveredRank(spec, source.rank, spec.storeBound ?? null);
      }
      await this.openRank(connection, source.rank, source.endpoint, source.replay);
    }
  }

  /**
   * A discovery spec's store bound reaches the ranks its URL lists: addEndpoint bounded rank 0 (specIdentities), each
   * further rank takes the bound under its own scoring identity while it is listed.
   */
  private boundDiscoveredRank(spec: EndpointSpec, rank: number, bound: EndpointSpec['storeBound']): void {
    if (!spec.discovery || spec.endpoint === null || !spec.storeBound || rank < spec.ranks) return;
    this.options.storeBound?.([rankIdentityOf(spec, rank) ?? rankIdentity(spec.endpoint, rank)], bound);
  }

  /** Discovery URLs with their last outcome and the identity configured for them (ListEndpoints, operations). */
  discoveryStatus(): (DiscoveryStatus & { identity: string | null })[] {
    return [...this.connections.values()].flatMap((c) =>
      c.poller ? [{ ...c.poller.status(), identity: c.spec.endpoint ?? rankIdentityOf(c.spec, 0) }] : [],
    );
  }

  /** The ZMQ address rank `rank` of connection `source` is connected to, or null (bind mode, unknown). */
  rankSocketAddress(source: string, rank: number): string | null {
    return this.connections.get(source)?.sockets.get(rank)?.address ?? null;
  }

  /** The poller of a discovery URL (tests wait on its poll count). */
  discoveryPoller(url: string): DiscoveryPoller | null {
    return this.connections.get(url)?.poller ?? null;
  }

  /**
   * Disconnects an endpoint: closes its sockets, then clears and forgets every endpoint identity whose messages came
   * through them (with `keepEntries`, forgets them but leaves their index entries: a lease handover). Returns those
   * identities (empty when the address was not connected).
   */
  async removeEndpoint(address: string, options: { keepEntries?: boolean } = {}): Promise<string[]> {
    const connection = this.connections.get(address);
    if (!connection) return [];
    this.connections.delete(address);
    if (connection.spec.endpoint !== null && connection.spec.storeBound)
      this.options.storeBound?.(specIdentities(connection.spec), null);
    for (const rank of connection.sockets.keys()) this.boundDiscoveredRank(connection.spec, rank, null);
    await connection.poller?.stop();
    await Promise.all([...connection.sockets.values()].map((s) => s.sub.close()));
    const removed = await this.pipeline.remove((s) => s.source === address, options);
    this.log.info({ endpoint: address, identities: removed }, 'endpoint removed');
    return removed;
  }

  /**
   * Removes by scoring identity (what the API names): the connections declared for it or whose messages carry it
   * are closed and their identities cleared; a bind-mode identity is forgotten. Returns the identities removed.
   */
  async removeIdentity(identity: string): Promise<string[]> {
    const sources = new Set(
      this.pipeline
        .listEndpoints()
        .filter((e) => e.identity === identity)
        .map((e) => e.source),
    );
    const removed = new Set<string>();
    for (const c of [...this.connections.values()]) {
      const declared =
        c.spec.endpoint === identity || [...c.sockets.keys()].some((r) => rankIdentityOf(c.spec, r) === identity);
      if (!declared && !sources.has(c.spec.address)) continue;
      for (const id of await this.removeEndpoint(c.spec.address)) removed.add(id);
      // A connection declared for this identity counts as removing it, even if it never published.
      if (declared) removed.add(identity);
    }
    if (await this.forgetIdentity(identity)) removed.add(identity);
    return [...removed];
  }

  /** Endpoint identities with their state (ListEndpoints). */
  listEndpoints() {
    return this.pipeline.listEndpoints();
  }

  /** Drops one endpoint identity (e.g. a bind-mode pod that is gone); it reappears if it publishes again. */
  async forgetIdentity(identity: string): Promise<boolean> {
    return (await this.pipeline.remove((s) => s.identity === identity)).length > 0;
  }

  connectedEndpoints(): ConnectedEndpoint[] {
    return [...this.connections.values()].map(({ spec, origin }) => ({ spec: { ...spec }, origin }));
  }

  /** Re-reads the endpoints file: connects new entries, removes entries that disappeared (file entries only). */
  async reloadFile(file: string): Promise<void> {
    if (this.stopped) return;
    let specs: EndpointSpec[];
    try {
      specs = await readEndpointFile(file);
    } catch (err) {
      // A half-written or broken file keeps the current set.
      this.log.error({ file, err: String(err) }, 'endpoints file not loaded');
      return;
    }
    const wanted = new Map(specs.map((s) => [s.address, s]));
    for (const c of [...this.connections.values()]) {
      if (c.origin === 'file' && !wanted.has(c.spec.address)) await this.removeEndpoint(c.spec.address);
    }
    for (const spec of wanted.values()) {
      const existing = this.connections.get(spec.address);
      if (existing && existing.origin !== 'file') continue;
      await this.addEndpoint(spec, 'file');
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.watching) unwatchFile(this.watching);
    await this.reloading.catch(() => undefined);
    await this.bindSubscriber.close();
    await Promise.all([...this.connections.values()].map((c) => c.poller?.stop()));
    await Promise.all([...this.connections.values()].flatMap((c) => [...c.sockets.values()].map((s) => s.sub.close())));
    this.connections.clear();
    await this.pipeline.close();
  }
}

/**
 * The scoring identities of a spec's ranks: per-rank identities when the spec gives them, else from `endpoint`
 * (topic.ts rankIdentity). A discovery spec counts one rank here (its ranks come from the URL's answers).
 */
function specIdentities(spec: EndpointSpec): string[] {
  return Array.from({ length: spec.ranks }, (_, r) => rankIdentityOf(spec, r) ?? rankIdentity(spec.endpoint!, r));
}

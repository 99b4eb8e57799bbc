import { unwatchFile, watchFile } from 'node:fs';
import { parseEndpointSpec, rankAddress, readEndpointFile, type EndpointSpec } from './endpoint-spec.js';
import type { EventPipeline, PipelineLog } from './pipeline.js';
import { ZmqSubscriber, type CurveClientKeys } from './zmq-subscriber.js';

export interface TransportOptions {
  /** Addresses of the one bind-mode SUB socket (empty: no bind socket). */
  bind: readonly string[];
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
}

export type EndpointOrigin = 'static' | 'file' | 'api' | 'lease';

export interface ConnectedEndpoint {
  spec: EndpointSpec;
  origin: EndpointOrigin;
}

interface Connection extends ConnectedEndpoint {
  subscribers: ZmqSubscriber[];
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

  constructor(
    readonly pipeline: EventPipeline,
    private readonly options: TransportOptions,
    private readonly log: PipelineLog & { error(fields: object, message: string): void },
  ) {
    this.bindSubscriber = new ZmqSubscriber({
      mode: 'bind',
      addresses: options.bind,
      receiveHighWaterMark: options.receiveHighWaterMark,
    });
  }

  async start(): Promise<void> {
    if (this.options.bind.length > 0) await this.bindSubscriber.start((frames) => this.pipeline.handle(frames));
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
    const subscribers: ZmqSubscriber[] = [];
    const connection: Connection = { spec, origin, subscribers };
    this.connections.set(spec.address, connection);
    for (let r = 0; r < spec.ranks; r++) {
      const address = rankAddress(spec.address, r);
      const replay = spec.replay === null ? null : rankAddress(spec.replay, r);
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
      subscribers.push(sub);
      await sub.start((frames) => this.pipeline.handle(frames, { source: spec.address, replay, expect: spec.endpoint }));
    }
    this.log.info({ endpoint: spec, origin, curve: !!this.options.curve }, 'connected to endpoint');
    return spec;
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
    await Promise.all(connection.subscribers.map((s) => s.close()));
    const removed = await this.pipeline.remove((s) => s.source === address, options);
    this.log.info({ endpoint: address, identities: removed }, 'endpoint removed');
    return removed;
  }

  /**
   * Removes by scoring identity (what the API names): the connections declared for it or whose messages carry it
   * are closed and their identities cleared; a bind-mode identity is forgotten. Returns the identities removed.
   */
  async removeIdentity(identity: string): Promise<string[]> {
    const sources = new Set(this.pipeline.listEndpoints().filter((e) => e.identity === identity).map((e) => e.source));
    const removed = new Set<string>();
    for (const c of [...this.connections.values()]) {
      if (c.spec.endpoint === identity || sources.has(c.spec.address)) {
        for (const id of await this.removeEndpoint(c.spec.address)) removed.add(id);
        // A connection declared for this identity counts as removing it, even if it never published.
        if (c.spec.endpoint === identity) removed.add(identity);
      }
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
    await Promise.all([...this.connections.values()].flatMap((c) => c.subscribers.map((s) => s.close())));
    this.connections.clear();
    await this.pipeline.close();
  }
}

function sameSpec(a: EndpointSpec, b: EndpointSpec): boolean {
  return a.address === b.address && a.replay === b.replay && a.ranks === b.ranks && a.endpoint === b.endpoint;
}

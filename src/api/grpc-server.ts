import {
  Server,
  ServerCredentials,
  status,
  type sendUnaryData,
  type ServerErrorResponse,
  type ServerUnaryCall,
  type ServiceDefinition,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import cluster from 'node:cluster';
import { randomBytes } from 'node:crypto';
import type { Http2Server, Http2Session } from 'node:http2';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  grpcChannelOptions,
  guardCalls,
  UNBOUNDED_LIMITS,
  guardConnections,
  type ConnectionGuardCounters,
  type ConnectionLimits,
} from './connection-limits.js';
import { interceptScore, type FastScoreDeps } from './fast-score.js';
import type { UnaryMethod } from './h2/grpc-unary.js';
import { LeanGrpcServer } from './h2/lean-server.js';
import { GrpcJsProxy } from './h2/proxy.js';
import { toStatus } from './grpc-status.js';
import type { HealthService } from './health.js';
import { ADMIN_DENIED, ADMIN_PATHS, adminAuthorizer, type Operations } from './operations.js';
import type { Cancellation } from './prompt-frontend.js';
import { loadProtos } from './proto.js';
import { UndecodableRequest } from './wire/undecodable.js';
import type { Log } from '../common/index.js';

export interface GrpcServerOptions {
  /** host:port; port 0 picks a free one (see `port` after start). */
  address: string;
  maxMessageBytes: number;
  /** PEM material; absent = plaintext. With `clientCa`, clients must present a certificate it signed. */
  tls?: { cert: Buffer; key: Buffer; clientCa?: Buffer };
  /** Bearer token the admin RPCs (AddEndpoint, RemoveEndpoint, ClearEndpoint) require; absent = no check. */
  adminToken?: string;
  /** HTTP/2 connection hygiene (idle/age/keepalive/streams/connections/handshake); absent = grpc-js defaults. */
  limits?: ConnectionLimits;
  /** Score served by the lean HTTP/2 path of fast-score.ts instead of grpc-js's generic server (api.fastScore). */
  fastScore?: boolean;
  /**
   * The listening address is served by the lean HTTP/2 server of api/h2 (every unary RPC; grpc-js, on a loopback
   * port, answers what it relays: streaming RPCs, compressed calls) instead of node:http2 + grpc-js (api.leanHttp2).
   */
  lean?: boolean;
  /**
   * `messages` (default): requests are decoded here and operations get message objects. `bytes`: the operations run
   * in the index thread (service/index-thread-host.ts), so requests and responses pass through as protobuf bytes and
   * are decoded and encoded there, with the same codecs.
   */
  wire?: 'messages' | 'bytes';
}

export type GrpcLog = Pick<Log, 'error'>;

/**
 * The start of the name of a serving process's relay socket file in the temporary directory (`<prefix><random>.sock`).
 * The process removes it on stop and on exit: the listener is the cluster primary's, which removes the file only when
 * it is alive to close it (a process killed while the primary lives leaves nothing).
 */
export function relaySocketPrefix(pid: number): string {
  return `kv-indexer-${pid}-`;
}

type AnyUnary = (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => void;

/** grpc-js's listening HTTP/2 servers and their sessions (not public API; read defensively). */
function listeners(server: Server): Map<Http2Server, { sessions?: unknown }> {
  const servers = (server as unknown as { http2Servers?: unknown }).http2Servers;
  return servers instanceof Map ? (servers as Map<Http2Server, { sessions?: unknown }>) : new Map();
}

/** The server's open HTTP/2 connections: grpc-js keeps them per listening server. */
function openSessions(server: Server): Http2Session[] {
  return [...listeners(server).values()].flatMap((entry) =>
    entry.sessions instanceof Set ? [...(entry.sessions as Set<Http2Session>)] : [],
  );
}

/**
 * Resolves when the client has acknowledged a PING (or the connection closed). A GOAWAY must not come first: a client
 * that received one stops answering PINGs (Node's HTTP/2 client does).
 */
function roundTrip(session: Http2Session): Promise<void> {
  return new Promise((resolve) => {
    if (session.closed || session.destroyed) return resolve();
    session.once('close', () => resolve());
    try {
      if (!session.ping(() => resolve())) resolve();
    } catch {
      resolve();
    }
  });
}

/**
 * A call's cancellation (client cancel or deadline), read when the operation asks. grpc-js sets `cancelled` when the
 * client resets the stream, but when its own deadline timer fires first it only sends DEADLINE_EXCEEDED and leaves
 * `cancelled` false: the deadline is therefore compared here too, or abandoned work would run on (issue 17, bug 4).
 */
class CallCancellation implements Cancellation {
  readonly deadlineMs: number;
  constructor(private readonly call: { cancelled: boolean; getDeadline(): Date | number }) {
    const d = call.getDeadline();
    this.deadlineMs = d instanceof Date ? d.getTime() : d;
  }
  get aborted(): boolean {
    return this.call.cancelled || Date.now() > this.deadlineMs;
  }
}

/** The gRPC server: kvindexer.v1, llm-d's indexer.v1, grpc.health.v1 and server reflection. */
export class GrpcServer {
  private readonly server: Server;
  private boundPort = 0;
  private readonly scoreMethod: FastScoreDeps['method'];
  /** Every unary method by path with its codec, for the lean server. */
  private readonly methods = new Map<string, UnaryMethod>();
  private lean: LeanGrpcServer | null = null;
  private proxy: GrpcJsProxy | null = null;
  /** The Unix socket file of the relay backend in a serving process (removed on stop), or null. */
  private ownSocket: string | null = null;
  /** Connections closed by the handshake timeout or refused at maxConnections (connection-limits.ts). */
  readonly guard: ConnectionGuardCounters = {
    handshakeTimeouts: 0,
    refused: 0,
    openCalls: 0,
    callsRefused: 0,
    callsEvicted: 0,
  };

  constructor(
    /** Every unary RPC by path (operations.ts): this thread's API, or the index thread's. */
    private readonly operations: Operations,
    private readonly health: HealthService,
    private readonly options: GrpcServerOptions,
    private readonly log: GrpcLog,
  ) {
    this.server = new Server({
      'grpc.max_receive_message_length': options.maxMessageBytes,
      'grpc.max_send_message_length': options.maxMessageBytes,
      // Channelz (call counters and listeners per call, per connection) has no consumer here and costs every call.
      'grpc.enable_channelz': 0,
      // Behind the lean server grpc-js has one loopback connection carrying every client's relayed calls: the
      // per-connection limits are the lean server's to apply, not this connection's.
      ...(options.limits && !options.lean ? grpcChannelOptions(options.limits) : {}),
    });
    const protos = loadProtos();
    const bytes = options.wire === 'bytes';
    const kvIndexer = bytes ? passThrough(protos.kvIndexer) : protos.kvIndexer;
    const llmdIndexer = bytes ? passThrough(protos.llmdIndexer) : protos.llmdIndexer;
    this.scoreMethod = kvIndexer.Score as FastScoreDeps['method'];
    for (const service of [kvIndexer, llmdIndexer])
      for (const method of Object.values(service)) {
        const run = operations[method.path] as UnaryMethod['run'];
        this.methods.set(method.path, {
          path: method.path,
          decode: method.requestDeserialize,
          encode: method.responseSerialize,
          run,
        });
      }
    this.server.addService(kvIndexer, this.handlers(kvIndexer));
    this.server.addService(llmdIndexer, this.handlers(llmdIndexer));
    this.server.addService(protos.health, health.implementation());
    new ReflectionService(protos.definition).addToServer(this.server);
  }

  get port(): number {
    return this.boundPort;
  }

  async start(): Promise<number> {
    if (this.options.lean) return this.startLean();
    this.boundPort = await this.bind(this.options.address, this.credentials());
    const limits = this.options.limits;
    for (const http2Server of listeners(this.server).keys()) {
      // The fast path first: guardCalls wraps it, so a Score stream is counted and bounded as any other call.
      if (this.options.fastScore) interceptScore(http2Server, this.fastScoreDeps());
      if (limits) {
        guardConnections(http2Server, limits, this.guard);
        guardCalls(http2Server, limits, this.guard);
      }
    }
    return this.boundPort;
  }

  /** grpc-js on a loopback port of its own, for what the lean server relays; the lean server on the address. */
  private async startLean(): Promise<number> {
    // In a serving process (a node:cluster worker) every listening socket is the primary's, shared by address: the
    // processes' backends on 127.0.0.1:0 would all get one port, and a relayed call could reach another process. A
    // Unix socket of this process's own keeps the relay in the process.
    const own = cluster.isWorker
      ? join(tmpdir(), `${relaySocketPrefix(process.pid)}${randomBytes(4).toString('hex')}.sock`)
      : null;
    this.ownSocket = own;
    // node:cluster ends a serving process at once when its primary dies (no stop, no drain): the file goes with it.
    if (own) process.once('exit', () => rmSync(own, { force: true }));
    const backend = await this.bind(own ? `unix:${own}` : '127.0.0.1:0', ServerCredentials.createInsecure());
    this.proxy = new GrpcJsProxy(own ?? `127.0.0.1:${backend}`);
    const { address, limits, tls, adminToken, maxMessageBytes } = this.options;
    this.lean = new LeanGrpcServer(
      this.methods,
      { maxMessageBytes, toStatus: (err, path) => toStatus(err, path, this.log) },
      this.proxy,
      { limits: limits ?? UNBOUNDED_LIMITS, tls, adminToken },
      this.guard,
    );
    const { host, port } = splitAddress(address);
    try {
      this.boundPort = await this.lean.listen(host, port);
    } catch (err) {
      this.server.forceShutdown();
      throw err;
    }
    return this.boundPort;
  }

  /** grpc-js listening on `address`; resolves with the port. */
  private bind(address: string, credentials: ServerCredentials): Promise<number> {
    return new Promise((resolve, reject) =>
      this.server.bindAsync(address, credentials, (err, port) => (err ? reject(err) : resolve(port))),
    );
  }

  private fastScoreDeps(): FastScoreDeps {
    return {
      maxMessageBytes: this.options.maxMessageBytes,
      method: this.scoreMethod,
      score: this.operations['/kvindexer.v1.KvIndexer/Score'] as FastScoreDeps['score'],
      toStatus: (err, path) => toStatus(err, path, this.log),
    };
  }

  /** Open TCP connections on the listening addresses (accepted, not yet closed). */
  async connections(): Promise<number> {
    if (this.lean) return this.lean.connectionCount;
    const counts = await Promise.all(
      [...listeners(this.server).keys()].map(
        (s) => new Promise<number>((resolve) => s.getConnections((err, n) => resolve(err ? 0 : n))),
      ),
    );
    return counts.reduce((a, b) => a + b, 0);
  }

  /**
   * Stops in two steps, so that no call a client has already sent is lost:
   * 1. every connection gets a PING; once the client acknowledges it, every call it sent before the PING reached it
   *    has arrived (frames arrive in order) and is being served. New connections are still accepted meanwhile.
   * 2. `draining()` is called, the listening sockets close (a new connection is refused: the call fails with
   *    UNAVAILABLE), each connection gets a GOAWAY naming the last call received (a call the client opens after that
   *    is refused, UNAVAILABLE), and the calls in flight run to completion.
   * Without step 1, a call that was on the wire when the GOAWAY was written would be refused although the client sent
   * it before the shutdown began. Both steps together take at most `graceMs`; calls still running then are
   * cancelled. Returns whether every call finished (`drained`) or some were cancelled (`forced`).
   */
  async stop(graceMs = 5_000, draining: () => void = () => undefined): Promise<'drained' | 'forced'> {
    this.health.endWatches();
    const deadline = Date.now() + graceMs;
    if (this.lean) return this.stopLean(deadline, draining);
    let timer: NodeJS.Timeout | undefined;
    const expired = (ms: number) =>
      new Promise<'forced'>((resolve) => (timer = setTimeout(() => resolve('forced'), Math.max(0, ms))));
    try {
      await Promise.race([Promise.all(openSessions(this.server).map(roundTrip)), expired(graceMs)]);
      clearTimeout(timer);
      draining();
      const outcome = await Promise.race([
        new Promise<'drained'>((resolve) => this.server.tryShutdown(() => resolve('drained'))),
        expired(deadline - Date.now()),
      ]);
      if (outcome === 'forced') this.server.forceShutdown();
      return outcome;
    } finally {
      clearTimeout(timer);
    }
  }

  private async stopLean(deadline: number, draining: () => void): Promise<'drained' | 'forced'> {
    const outcome = await this.lean!.stop(deadline, draining);
    this.proxy?.close();
    // Everything grpc-js served came through the lean server's connections, which are closed now.
    this.server.forceShutdown();
    if (this.ownSocket) rmSync(this.ownSocket, { force: true }); // the socket file outlives its listener
    return outcome;
  }

  private credentials(): ServerCredentials {
    const tls = this.options.tls;
    if (!tls) return ServerCredentials.createInsecure();
    return ServerCredentials.createSsl(
      tls.clientCa ?? null,
      [{ cert_chain: tls.cert, private_key: tls.key }],
      !!tls.clientCa,
    );
  }

  /** One handler per method of `service`, from the operation of its path; admin ones behind the token, if set. */
  private handlers(service: ServiceDefinition): UntypedServiceImplementation {
    const token = this.options.adminToken;
    const out: UntypedServiceImplementation = {};
    for (const [name, method] of Object.entries(service)) {
      const operation = this.operations[method.path];
      if (!operation) throw new Error(`no operation serves ${method.path}`);
      const handler = this.unary(operation as (req: unknown, c: Cancellation, caller: string) => Promise<unknown>);
      out[name] = token && ADMIN_PATHS.has(method.path) ? this.requireAdmin(handler, token) : handler;
    }
    return out;
  }

  /** Admin RPCs change what is indexed: they need `authorization: Bearer <token>`, compared in constant time. */
  private requireAdmin(handler: AnyUnary, token: string): AnyUnary {
    const authorized = adminAuthorizer(token);
    return (call, callback) => {
      if (!authorized(call.metadata.get('authorization')[0])) {
        callback({ code: status.UNAUTHENTICATED, details: ADMIN_DENIED });
        return;
      }
      handler(call, callback);
    };
  }

  /**
   * Adapts an async operation: a request that did not decode → INVALID_ARGUMENT, cancellation/deadline → a flag read
   * from the call (grpc-js sets `cancelled`; no listener per call), an IndexerError → its status with the field in details.
   */
  private unary(fn: (req: unknown, cancelled: Cancellation, caller: string) => Promise<unknown>): AnyUnary {
    return (call, callback) => {
      const request: unknown = call.request;
      if (request instanceof UndecodableRequest) {
        callback({ code: status.INVALID_ARGUMENT, details: request.message });
        return;
      }
      let result: Promise<unknown>;
      try {
        result = fn(request, new CallCancellation(call), callerOf(call.getPeer()));
      } catch (err) {
        result = Promise.reject(err);
      }
      result.then(
        (response) => callback(null, response),
        (err: unknown) => callback(this.toStatus(err, call.getPath())),
      );
    };
  }

  private toStatus(err: unknown, path: string): Partial<ServerErrorResponse> {
    return toStatus(err, path, this.log);
  }
}

/** `host:port`, `[v6]:port` or `:port` as the listener's host and port (grpc-js accepts the same forms). */
export function splitAddress(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  const host = address.slice(0, Math.max(0, i)).replace(/^\[(.*)\]$/, '$1');
  return { host: host || '0.0.0.0', port: Number(address.slice(i + 1)) };
}

/** The same methods with requests and responses left as bytes: decoded and encoded where the operations run. */
function passThrough(service: ServiceDefinition): ServiceDefinition {
  const same = (b: Buffer) => b;
  const out: Record<string, ServiceDefinition[string]> = {};
  for (const [name, method] of Object.entries(service))
    out[name] = { ...method, requestDeserialize: same, responseSerialize: same };
  return out as ServiceDefinition;
}

/** The caller's IP from grpc-js's peer string (`ipv4:10.0.0.7:51234`, `ipv6:[::1]:51234`, `unix:…`): ports change per connection. */
export function callerOf(peer: string): string {
  const m = /^(?:ipv[46]:)?\[?([^\]]*?)\]?:\d+$/.exec(peer);
  return m ? m[1] : peer;
}

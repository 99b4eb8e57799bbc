/**
 * The lean gRPC server (config `api.leanHttp2`, issue 16): it owns the gRPC listening address, terminates HTTP/2 on
 * connection.ts and serves every unary RPC of the served paths itself (grpc-unary.ts); anything else is relayed to
 * grpc-js on a loopback port (proxy.ts). The connection limits of connection-limits.ts apply with the same meaning:
 * at most maxConnections open (more are closed at once), TLS plus preface plus SETTINGS within handshakeTimeoutMs,
 * GOAWAY after maxConnectionIdleMs with no call and after maxConnectionAgeMs (then the grace to finish), a PING
 * after keepaliveTimeMs of silence that must be answered within keepaliveTimeoutMs, maxConcurrentStreams per
 * connection, and maxOpenCalls over all of them with the same fairness (the connection holding the most pays).
 */
import { status } from '@grpc/grpc-js';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { H2Connection, type ConnectionHooks } from './connection.js';
import { ENHANCE_YOUR_CALM, PROTOCOL_ERROR } from './frames.js';
import { failStream, UnaryCall, type UnaryDeps, type UnaryMethod } from './grpc-unary.js';
import type { GrpcJsProxy } from './proxy.js';
import type { H2Stream } from './stream.js';
import {
  MAX_TIMER_MS,
  openCallsRefusal,
  type ConnectionGuardCounters,
  type ConnectionLimits,
} from '../connection-limits.js';
import { plainGrpcRequest } from '../grpc-status.js';
import { ADMIN_DENIED, ADMIN_PATHS, adminAuthorizer } from '../operations.js';

export interface LeanServerOptions {
  limits: ConnectionLimits;
  tls?: { cert: Buffer; key: Buffer; clientCa?: Buffer };
  adminToken?: string;
}

/** Request header lists larger than this are refused (gRPC's default metadata bound is 8 KiB). */
const MAX_HEADER_LIST_BYTES = 64 << 10;

export class LeanGrpcServer {
  private readonly server: NetServer;
  private readonly conns = new Set<H2Connection>();
  private readonly hooks: ConnectionHooks;
  /** Whether an `authorization` value carries the admin token (null: no token configured). */
  private readonly authorized: ((authorization: unknown) => boolean) | null;
  private sweep: NodeJS.Timeout | null = null;
  private boundPort = 0;
  private settled: (() => void) | null = null;

  constructor(
    private readonly methods: Map<string, UnaryMethod>,
    private readonly deps: UnaryDeps,
    private readonly proxy: GrpcJsProxy,
    private readonly options: LeanServerOptions,
    private readonly guard: ConnectionGuardCounters,
  ) {
    this.authorized = options.adminToken ? adminAuthorizer(options.adminToken) : null;
    this.hooks = {
      stream: (conn, stream) => this.open(conn, stream),
      streamClosed: (_conn, stream) => {
        if (stream.call !== null) this.guard.openCalls--;
      },
      // Logged through toStatus, as an unexpected error in a handler is.
      error: (_conn, err) => void this.deps.toStatus(err, 'lean HTTP/2 connection'),
      closed: (conn) => {
        this.conns.delete(conn);
        if (this.conns.size === 0) this.settled?.();
      },
    };
    const { limits, tls } = options;
    const accept = (socket: Socket) => this.accept(socket);
    if (tls) {
      const server = createTlsServer(
        {
          cert: tls.cert,
          key: tls.key,
          ca: tls.clientCa,
          requestCert: !!tls.clientCa,
          rejectUnauthorized: !!tls.clientCa,
          ALPNProtocols: ['h2'],
          handshakeTimeout: limits.handshakeTimeoutMs,
        },
        accept,
      );
      server.on('tlsClientError', (err: Error & { code?: string }) => {
        if (err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT') this.guard.handshakeTimeouts++;
      });
      this.server = server;
    } else {
      this.server = createNetServer({ noDelay: true }, accept);
    }
    this.server.maxConnections = limits.maxConnections;
    this.server.on('drop', () => this.guard.refused++);
  }

  get port(): number {
    return this.boundPort;
  }

  get connectionCount(): number {
    return this.conns.size;
  }

  async listen(host: string, port: number): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.boundPort = (this.server.address() as { port: number }).port;
    const l = this.options.limits;
    const shortest = Math.min(l.maxConnectionIdleMs, l.keepaliveTimeMs, l.maxConnectionAgeMs, l.handshakeTimeoutMs);
    this.sweep = setInterval(() => this.check(), Math.max(10, Math.min(1_000, Math.floor(shortest / 4))));
    this.sweep.unref();
    return this.boundPort;
  }

  private accept(socket: Socket): void {
    socket.setNoDelay(true);
    const conn = new H2Connection(
      socket,
      { maxConcurrentStreams: this.options.limits.maxConcurrentStreams, maxHeaderListBytes: MAX_HEADER_LIST_BYTES },
      this.hooks,
    );
    this.conns.add(conn);
  }

  /** A new request: bounded, authorised, then served here or relayed to grpc-js. */
  private open(conn: H2Connection, stream: H2Stream): void {
    const head = requestHead(stream);
    if (!head) return conn.reset(stream, PROTOCOL_ERROR);
    if (!this.admit(conn)) {
      failStream(conn, stream, status.RESOURCE_EXHAUSTED, openCallsRefusal(this.options.limits.maxOpenCalls));
      return;
    }
    this.guard.openCalls++;
    const { path } = head;
    const method = head.plain ? this.methods.get(path) : undefined;
    if (!method) {
      stream.call = this.proxy;
      this.proxy.forward(conn, stream);
      return;
    }
    const call = new UnaryCall(conn, stream, method, this.deps);
    stream.call = call;
    if (this.authorized && ADMIN_PATHS.has(path) && !this.authorized(stream.header('authorization'))) {
      stream.sink = call;
      return call.fail(status.UNAUTHENTICATED, ADMIN_DENIED);
    }
    call.start();
  }

  /** At maxOpenCalls the connection holding the most calls pays, unless it is the newcomer's own. */
  private admit(conn: H2Connection): boolean {
    if (this.guard.openCalls < this.options.limits.maxOpenCalls) return true;
    let heaviest: H2Connection | null = null;
    // Calls open per connection: its streams (the newcomer's own included, hence the - 1).
    for (const c of this.conns) if (!heaviest || c.streams.size > heaviest.streams.size) heaviest = c;
    if (!heaviest || heaviest === conn || heaviest.streams.size <= conn.streams.size - 1) {
      this.guard.callsRefused++;
      return false;
    }
    for (const victim of heaviest.streams.values()) {
      if (victim.call === null) continue;
      this.guard.callsEvicted++;
      heaviest.reset(victim, ENHANCE_YOUR_CALM);
      return true;
    }
    this.guard.callsRefused++;
    return false;
  }

  /** Handshake deadline, idle and age GOAWAYs, keepalive PINGs. */
  private check(): void {
    const l = this.options.limits;
    const now = Date.now();
    for (const conn of this.conns) {
      if (!conn.handshakeDone) {
        if (now - conn.openedAt >= l.handshakeTimeoutMs) {
          this.guard.handshakeTimeouts++;
          conn.destroy();
        }
        continue;
      }
      if (l.maxConnectionAgeMs < MAX_TIMER_MS && now - conn.openedAt >= l.maxConnectionAgeMs) {
        conn.goaway();
        if (now - conn.openedAt >= l.maxConnectionAgeMs + l.maxConnectionAgeGraceMs) conn.destroy();
        continue;
      }
      if (
        l.maxConnectionIdleMs < MAX_TIMER_MS &&
        conn.streams.size === 0 &&
        now - conn.idleSince >= l.maxConnectionIdleMs
      ) {
        conn.goaway();
        continue;
      }
      if (now - conn.lastFrameAt >= l.keepaliveTimeMs && conn.keepaliveSentAt === 0) {
        conn.keepaliveSentAt = now;
        void conn.ping().then(() => (conn.keepaliveSentAt = 0));
      } else if (conn.keepaliveSentAt > 0 && now - conn.keepaliveSentAt >= l.keepaliveTimeoutMs) {
        conn.destroy();
      }
    }
  }

  /**
   * Drains as GrpcServer.stop describes: a PING round trip on every connection (every call sent before it has
   * arrived), then `draining()`, the listener closes and each connection gets a GOAWAY naming its last call; calls
   * in flight finish. Whatever is still open at `deadline` is cut off.
   */
  async stop(deadline: number, draining: () => void): Promise<'drained' | 'forced'> {
    const until = (ms: number) =>
      new Promise<'late'>((resolve) => setTimeout(() => resolve('late'), Math.max(0, ms)).unref());
    // A connection still in its handshake has sent no call: closed now, not waited for. The round trips get at most
    // half the grace, so that one silent peer cannot leave the calls no time to finish.
    for (const conn of [...this.conns]) if (!conn.handshakeDone) conn.destroy();
    const pinged = Promise.all([...this.conns].map((c) => c.ping()));
    await Promise.race([pinged, until((deadline - Date.now()) / 2)]);
    draining();
    clearInterval(this.sweep ?? undefined);
    this.server.close();
    const settled = new Promise<void>((resolve) => (this.settled = resolve));
    for (const conn of this.conns) conn.goaway();
    if (this.conns.size === 0) return 'drained';
    if ((await Promise.race([settled, until(deadline - Date.now())])) !== 'late') return 'drained';
    for (const conn of [...this.conns]) conn.destroy();
    return 'forced';
  }
}

/**
 * A request's head in one pass over its fields: its path and whether it is a plain gRPC call the lean server serves
 * (else grpc-js answers it). Null when malformed — without `:method`, `:scheme` or a non-empty `:path` (RFC 9113
 * §8.3.1; no CONNECT here), or with an uppercase field name (§8.2.1): a stream error of type PROTOCOL_ERROR.
 */
function requestHead(stream: H2Stream): { path: string; plain: boolean } | null {
  const h = stream.headers;
  let method: string | undefined;
  let scheme = false;
  let path = '';
  let contentType: string | undefined;
  let encoding: string | undefined;
  for (let i = 0; i < h.length; i += 2) {
    const name = h[i];
    for (let c = 0; c < name.length; c++) {
      const code = name.charCodeAt(c);
      if (code >= 0x41 && code <= 0x5a) return null;
    }
    if (name === ':method') method = h[i + 1];
    else if (name === ':scheme') scheme = true;
    else if (name === ':path') path = h[i + 1];
    else if (name === 'content-type') contentType ??= h[i + 1];
    else if (name === 'grpc-encoding') encoding ??= h[i + 1];
  }
  if (method === undefined || !scheme || path === '') return null;
  return { path, plain: plainGrpcRequest(method, contentType, encoding) };
}

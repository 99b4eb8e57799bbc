/**
 * HTTP/2 connection hygiene of the gRPC server (issue 17, bug 5). grpc-js reaps old connections and pings silent ones
 * (`grpcChannelOptions`); what it has no option for — a bound on open connections and a deadline for a new connection
 * to finish its handshake (TLS, then the HTTP/2 preface and SETTINGS) — is applied here to its listening HTTP/2
 * servers. The idle timeout is applied here too, not by grpc-js: grpc-js counts only the calls it serves itself, so a
 * connection carrying nothing but fast-path Score calls (fast-score.ts, which grpc-js never sees) looked idle to it and
 * was closed every maxConnectionIdleMs while busy. `guardCalls` sees every stream, so it owns the count. A header block
 * over Node's limit, for example, leaves a connection with no stream open: the idle timeout closes it (Node itself
 * never would).
 */

import { constants, type Http2Server, type Http2Session, type ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import type { CounterFamily } from '../common/index.js';

export interface ConnectionLimits {
  /** A connection with no call for this long is closed with a GOAWAY (grpc.max_connection_idle_ms). */
  maxConnectionIdleMs: number;
  /** Every connection is closed after this long (clients reconnect; spreads load after scale-up). */
  maxConnectionAgeMs: number;
  /** Calls still running when the age is reached get this long to finish. */
  maxConnectionAgeGraceMs: number;
  /** The server PINGs a connection silent for this long ... */
  keepaliveTimeMs: number;
  /** ... and closes it when the PING is not acknowledged within this long. */
  keepaliveTimeoutMs: number;
  /** Concurrent calls (HTTP/2 streams) per connection: further streams wait on the client. */
  maxConcurrentStreams: number;
  /** Open connections per listening address; beyond it new connections are closed at once. */
  maxConnections: number;
  /** A new connection must finish TLS and the HTTP/2 SETTINGS exchange within this long. */
  handshakeTimeoutMs: number;
  /**
   * Calls (HTTP/2 streams) open at once over all connections; beyond it a new call is answered RESOURCE_EXHAUSTED at
   * once. Each open call costs the server ~6 KB, and a large heap of them slows every collection for every client.
   */
  maxOpenCalls: number;
}

/** Node's timers hold at most 2^31 - 1 ms (a longer one fires after 1 ms); grpc-js reads a larger limit as "never". */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** No limit at all (as grpc-js without options): a server started without `limits`, and the benches' no-op ceilings. */
export const UNBOUNDED_LIMITS: ConnectionLimits = {
  maxConnectionIdleMs: MAX_TIMER_MS,
  maxConnectionAgeMs: MAX_TIMER_MS,
  maxConnectionAgeGraceMs: MAX_TIMER_MS,
  keepaliveTimeMs: MAX_TIMER_MS,
  keepaliveTimeoutMs: MAX_TIMER_MS,
  maxConcurrentStreams: MAX_TIMER_MS,
  maxConnections: MAX_TIMER_MS,
  handshakeTimeoutMs: MAX_TIMER_MS,
  maxOpenCalls: MAX_TIMER_MS,
};

/** The grpc-js server options for these limits (maxConnectionIdleMs is not one of them: `guardCalls` applies it). */
export function grpcChannelOptions(limits: ConnectionLimits): Record<string, number> {
  return {
    'grpc.max_connection_age_ms': limits.maxConnectionAgeMs,
    'grpc.max_connection_age_grace_ms': limits.maxConnectionAgeGraceMs,
    'grpc.keepalive_time_ms': limits.keepaliveTimeMs,
    'grpc.keepalive_timeout_ms': limits.keepaliveTimeoutMs,
    'grpc.max_concurrent_streams': limits.maxConcurrentStreams,
  };
}

/** What the guard did, for metrics and tests. */
export interface ConnectionGuardCounters {
  /** Connections closed because they did not finish the handshake in time. */
  handshakeTimeouts: number;
  /** Connections refused because maxConnections were open. */
  refused: number;
  /** Calls (streams) open now over every listening server. */
  openCalls: number;
  /** Calls answered RESOURCE_EXHAUSTED because maxOpenCalls were open and their connection held the most. */
  callsRefused: number;
  /** Open calls reset to admit a call of a connection holding fewer (the heaviest connection pays at the bound). */
  callsEvicted: number;
}

/** The guard's counts on /metrics (registered by service/start-api.ts). */
export const GUARD_COUNTER_FAMILIES: readonly CounterFamily<ConnectionGuardCounters>[] = [
  {
    name: 'grpc_connections_closed_total',
    help: 'gRPC connections closed by the server guard, by reason',
    label: 'reason',
    read: (g) => ({ handshake_timeout: g.handshakeTimeouts, max_connections: g.refused }),
  },
  {
    name: 'grpc_calls_refused_total',
    help: 'gRPC calls refused or reset at the open-call bound, by reason',
    label: 'reason',
    read: (g) => ({ max_open_calls: g.callsRefused, evicted_fair_share: g.callsEvicted }),
  },
];

/** Applies maxConnections and the handshake timeout to one listening HTTP/2 server of grpc-js. */
export function guardConnections(
  server: Http2Server,
  limits: ConnectionLimits,
  counters: ConnectionGuardCounters,
): void {
  server.maxConnections = limits.maxConnections;
  server.on('drop', () => counters.refused++);
  // A connection is known by its remote address and port on both its raw socket and its session (TLS or not).
  const pending = new Map<string, NodeJS.Timeout>();
  const keyOf = (s: { remoteAddress?: string; remotePort?: number }) => `${s.remoteAddress ?? ''}|${s.remotePort ?? 0}`;
  server.prependListener('connection', (socket: Socket) => {
    const key = keyOf(socket);
    const timer = setTimeout(() => {
      pending.delete(key);
      counters.handshakeTimeouts++;
      socket.destroy();
    }, limits.handshakeTimeoutMs);
    timer.unref();
    pending.set(key, timer);
    socket.once('close', () => {
      clearTimeout(timer);
      if (pending.get(key) === timer) pending.delete(key);
    });
  });
  server.on('session', (session: Http2Session) => {
    const key = keyOf(session.socket);
    session.once('remoteSettings', () => {
      clearTimeout(pending.get(key));
      pending.delete(key);
    });
  });
}

/**
 * Applies maxOpenCalls and maxConnectionIdleMs to one listening HTTP/2 server of grpc-js, fairly. A stream over the
 * bound never reaches grpc-js (which would allocate its call state): `emit('stream')` is intercepted. At the bound, the
 * connection holding the most open calls pays: if it holds more than the newcomer's own connection, its oldest call is
 * reset (ENHANCE_YOUR_CALM, which its client reads as RESOURCE_EXHAUSTED) and the newcomer is admitted; otherwise the
 * newcomer is answered trailers-only RESOURCE_EXHAUSTED and its stream reset with NO_ERROR (RFC 9113 §8.1: a complete
 * response before the request is complete). So a client that opens calls and never finishes them holds no more than
 * the bound, and cannot starve a client with fewer calls open. Per call: one Set insertion and one shared 'close'
 * listener, no closure.
 *
 * Idle: a connection with no call open for maxConnectionIdleMs is closed gracefully (GOAWAY, as grpc-js would). Each
 * connection has one timer, armed when it opens and moved on (`refresh`, no allocation) each time its last open call
 * ends; a timer that fires while calls are open does nothing, the next idle moment re-arms it.
 */
export function guardCalls(
  server: Http2Server,
  limits: Pick<ConnectionLimits, 'maxOpenCalls' | 'maxConnectionIdleMs'>,
  counters: ConnectionGuardCounters,
): void {
  const held = new Set<SessionCalls>(); // connections with calls open
  function onClose(this: ServerHttp2Stream) {
    const calls = (this as Tracked)[CALLS];
    if (calls) release(this as Tracked, calls);
  }
  const release = (stream: Tracked, calls: SessionCalls) => {
    stream[CALLS] = null;
    calls.streams.delete(stream);
    if (calls.streams.size === 0) {
      held.delete(calls);
      calls.idle?.refresh();
    }
    counters.openCalls--;
  };
  const heaviest = (): SessionCalls | null => {
    let max: SessionCalls | null = null;
    for (const calls of held) if (!max || calls.streams.size > max.streams.size) max = calls;
    return max;
  };
  const callsOf = (session: Http2Session & { [CALLS]?: SessionCalls }): SessionCalls =>
    (session[CALLS] ??= newSessionCalls(session, limits.maxConnectionIdleMs));
  server.on('session', callsOf);
  const emit = server.emit;
  server.emit = function (this: Http2Server, event: string | symbol, ...args: unknown[]): boolean {
    if (event !== 'stream') return emit.call(this, event, ...args);
    const stream = args[0] as Tracked;
    const session = stream.session;
    if (!session) return emit.call(this, event, ...args); // already gone: grpc-js sees a closed stream, as without us
    const calls = callsOf(session);
    if (counters.openCalls >= limits.maxOpenCalls) {
      const max = heaviest();
      if (!max || max.streams.size <= calls.streams.size) {
        counters.callsRefused++;
        refuse(stream, limits.maxOpenCalls);
        return true;
      }
      const victim = max.streams.values().next().value as Tracked;
      release(victim, max);
      counters.callsEvicted++;
      victim.close(constants.NGHTTP2_ENHANCE_YOUR_CALM);
    }
    counters.openCalls++;
    calls.streams.add(stream);
    held.add(calls);
    stream[CALLS] = calls;
    stream.once('close', onClose);
    return emit.call(this, event, ...args);
  } as Http2Server['emit'];
}

/** A connection's open calls and its idle timer (none when the timeout is beyond a timer's range: never idle). */
function newSessionCalls(session: Http2Session, idleMs: number): SessionCalls {
  const calls: SessionCalls = { streams: new Set(), idle: null };
  if (idleMs >= MAX_TIMER_MS) return calls;
  const onIdle = () => {
    // Calls open: not idle; the end of the last one refreshes the timer. Else the timer was last armed when the
    // connection became idle, idleMs ago.
    if (calls.streams.size > 0 || session.closed || session.destroyed) return;
    session.close(); // GOAWAY; grpc-js's own 'close' handling forgets the session
  };
  calls.idle = setTimeout(onIdle, idleMs);
  calls.idle.unref();
  session.once('close', () => clearTimeout(calls.idle ?? undefined));
  return calls;
}

const CALLS = Symbol('openCalls');
interface SessionCalls {
  streams: Set<Tracked>;
  idle: NodeJS.Timeout | null;
}
type Tracked = ServerHttp2Stream & { [CALLS]?: SessionCalls | null };

function refuse(stream: ServerHttp2Stream, bound: number): void {
  try {
    stream.respond(
      {
        ':status': 200,
        'content-type': 'application/grpc+proto',
        'grpc-status': String(GRPC_RESOURCE_EXHAUSTED),
        'grpc-message': openCallsRefusal(bound),
      },
      { endStream: true },
    );
    stream.close(constants.NGHTTP2_NO_ERROR);
  } catch {
    stream.destroy(); // the stream was already gone (its session closed in the meantime)
  }
}

/** What a call refused at maxOpenCalls is told (RESOURCE_EXHAUSTED), by either gRPC server. */
export function openCallsRefusal(bound: number): string {
  return `server holds ${bound} open calls (api.maxOpenCalls); retry later`;
}

/** grpc status code RESOURCE_EXHAUSTED (not imported from grpc-js: this module works on the HTTP/2 layer only). */
const GRPC_RESOURCE_EXHAUSTED = 8;

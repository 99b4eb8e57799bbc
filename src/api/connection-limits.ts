/**
 * HTTP/2 connection hygiene of the gRPC server (issue 17, bug 5). grpc-js reaps idle and old connections and pings
 * silent ones (`grpcChannelOptions`); what it has no option for — a bound on open connections and a deadline for a new
 * connection to finish its handshake (TLS, then the HTTP/2 preface and SETTINGS) — is applied here to its listening
 * HTTP/2 servers. A header block over Node's limit, for example, leaves a connection with no stream open: the idle
 * timeout closes it (Node itself never would).
 */

import type { Http2Server, Http2Session } from 'node:http2';
import type { Socket } from 'node:net';

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
}

/** The grpc-js server options for these limits. */
export function grpcChannelOptions(limits: ConnectionLimits): Record<string, number> {
  return {
    'grpc.max_connection_idle_ms': limits.maxConnectionIdleMs,
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
}

/** Applies maxConnections and the handshake timeout to one listening HTTP/2 server of grpc-js. */
export function guardConnections(server: Http2Server, limits: ConnectionLimits, counters: ConnectionGuardCounters): void {
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

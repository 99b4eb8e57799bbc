/**
 * What the lean server does not serve itself goes to grpc-js, unchanged: streaming RPCs (health Watch, reflection),
 * compressed requests, other methods and content types. grpc-js listens on a loopback port of its own; each such
 * stream is replayed there over one shared HTTP/2 client connection, and its answer (headers, DATA, trailers or a
 * reset) is written back on the client's stream. These calls are rare (a health check, an admin tool), so a hop
 * costs nothing that matters; the hot unary calls never take it. The caller's address is not carried over (grpc-js
 * sees the loopback address), which only the per-caller speculation quota of a compressed Reserve would notice.
 */
import { connect, constants, type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import { connect as netConnect } from 'node:net';
import type { H2Connection } from './connection.js';
import { CANCEL, ENHANCE_YOUR_CALM, INTERNAL_ERROR, NO_ERROR, REFUSED_STREAM } from './frames.js';
import { literalWithoutIndexing } from './hpack.js';
import type { H2Stream, StreamSink } from './stream.js';

/** Response or trailer headers as a header block (every field a literal without indexing, pseudo-headers first). */
function encodeHeaders(headers: IncomingHttpHeaders): Buffer {
  const parts: Buffer[] = [];
  const status = headers[':status'];
  if (status !== undefined) parts.push(literalWithoutIndexing(':status', String(status)));
  for (const [name, value] of Object.entries(headers)) {
    if (name.startsWith(':') || value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) parts.push(literalWithoutIndexing(name, String(v)));
  }
  return Buffer.concat(parts);
}

/** A client's request headers for the backend (HTTP/2 connection-specific fields are not forwarded). */
function requestHeaders(stream: H2Stream): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const h = stream.headers;
  for (let i = 0; i < h.length; i += 2) {
    const name = h[i];
    if (name === 'connection' || name === 'keep-alive') continue;
    const prev = out[name];
    out[name] = prev === undefined ? h[i + 1] : [...(Array.isArray(prev) ? prev : [prev]), h[i + 1]];
  }
  return out;
}

export class GrpcJsProxy {
  private session: ClientHttp2Session | null = null;

  constructor(
    /** `host:port`, or the path of a Unix socket (starting with `/`). */
    private readonly backend: string,
    /** Bytes a relayed stream may have waiting, either way (grpc-js or the client not reading); beyond, it is reset. */
    private readonly maxBufferedBytes = 8 << 20,
  ) {}

  private connection(): ClientHttp2Session {
    if (this.session && !this.session.closed && !this.session.destroyed) return this.session;
    const path = this.backend.startsWith('/') ? this.backend : null;
    const session = path
      ? connect('http://localhost', { createConnection: () => netConnect(path) })
      : connect(`http://${this.backend}`);
    session.on('error', () => undefined); // each stream sees its own failure
    session.on('close', () => {
      if (this.session === session) this.session = null;
    });
    this.session = session;
    return session;
  }

  /** Replays `stream` on grpc-js and relays its answer. */
  forward(conn: H2Connection, stream: H2Stream): void {
    let req: ReturnType<ClientHttp2Session['request']>;
    try {
      req = this.connection().request(requestHeaders(stream), { endStream: stream.remoteClosed });
    } catch {
      conn.reset(stream, INTERNAL_ERROR);
      return;
    }
    const sink: StreamSink = {
      data: (s, chunk) => {
        // The lean server credits the client's window as bytes arrive; what grpc-js has not read yet is bounded here.
        if (req.writableLength + chunk.length > this.maxBufferedBytes) return conn.reset(s, ENHANCE_YOUR_CALM);
        req.write(Buffer.from(chunk));
      },
      end: () => void req.end(),
      reset: () => req.close(constants.NGHTTP2_CANCEL),
      // Answered (trailers out, even after waiting for window) while the client still sends, as a streaming call it
      // never half-closes: the rest of its request is not needed, and the stream must not stay open on the
      // connection (RFC 9113 §8.1: RST_STREAM NO_ERROR).
      localEnd: (s) => {
        req.close(constants.NGHTTP2_NO_ERROR);
        conn.reset(s, NO_ERROR);
      },
    };
    stream.sink = sink;
    let trailed = false;
    req.on('response', (headers, flags: number) => {
      // A trailers-only answer comes as one HEADERS frame with END_STREAM: it must stay one.
      trailed = (flags & constants.NGHTTP2_FLAG_END_STREAM) !== 0;
      conn.sendHeaders(stream, encodeHeaders(headers), trailed);
    });
    req.on('data', (chunk: Buffer) => {
      // A client that does not read (its window closed) cannot make the answer pile up here without bound.
      if (stream.queuedBytes() + chunk.length > this.maxBufferedBytes) {
        conn.reset(stream, ENHANCE_YOUR_CALM);
        return;
      }
      conn.sendData(stream, chunk, false);
    });
    req.on('trailers', (trailers) => {
      trailed = true;
      conn.sendHeaders(stream, encodeHeaders(trailers), true);
    });
    req.on('error', () => undefined); // 'close' carries the outcome
    req.on('close', () => {
      if (stream.localClosed || stream.ending) return;
      const code = req.rstCode;
      // REFUSED_STREAM is passed on: a client retries it transparently (nothing was processed).
      if (code !== undefined && code !== constants.NGHTTP2_NO_ERROR)
        conn.reset(stream, code === REFUSED_STREAM ? REFUSED_STREAM : CANCEL);
      else if (!trailed) conn.sendData(stream, Buffer.alloc(0), true);
    });
  }

  close(): void {
    this.session?.destroy();
    this.session = null;
  }
}

/**
 * One HTTP/2 stream of the lean server (RFC 9113 §5.1, server side): its request headers, who consumes its DATA, its
 * flow-control windows both ways and what waits for the peer's window. The connection (connection.ts) owns the state
 * changes; whoever serves the stream (grpc-unary.ts, proxy.ts) sees the `StreamSink` calls and answers through the
 * connection's `send*` methods.
 */

/** The consumer of a stream's request: set by the connection's `stream` hook before any DATA is delivered. */
export interface StreamSink {
  /** Request bytes (padding removed). A view of the connection's read buffer: copy what must outlive the call. */
  data(stream: H2Stream, chunk: Buffer): void;
  /** The client ended its side (END_STREAM). */
  end(stream: H2Stream): void;
  /** The client reset the stream, or the connection closed under it: nothing more can be sent. */
  reset(stream: H2Stream, code: number): void;
  /** Our END_STREAM went out while the client's side is still open (its queued frames included). */
  localEnd?(stream: H2Stream): void;
}

/** A frame or header block waiting for send window; HEADERS (trailers) wait behind the DATA queued before them. */
export interface Queued {
  kind: 'data' | 'headers';
  bytes: Buffer;
  end: boolean;
}

export class H2Stream {
  sink: StreamSink | null = null;
  /** The client sent END_STREAM (or reset). */
  remoteClosed = false;
  /** This side sent END_STREAM or RST_STREAM. */
  localClosed = false;
  /** END_STREAM is queued behind DATA waiting for window: nothing more may be sent. */
  ending = false;
  /** Bytes the client may still send before a WINDOW_UPDATE from us. */
  recvWindow: number;
  /** Bytes received and not yet credited back to the client. */
  recvUnacked = 0;
  /** Bytes of DATA we may still send on this stream. */
  sendWindow: number;
  /** What waits for send window, in order (null while nothing waits). */
  queue: Queued[] | null = null;
  /** Whatever the serving side attaches (its call object). */
  call: unknown = null;

  constructor(
    readonly id: number,
    /** Request header list, flat: name, value, name, value… (pseudo-headers first, as sent). */
    readonly headers: string[],
    recvWindow: number,
    sendWindow: number,
  ) {
    this.recvWindow = recvWindow;
    this.sendWindow = sendWindow;
  }

  /**
   * Unlinks a finished stream from its call. The connection's stream Map, when it rehashes, leaves its old table
   * holding the streams open then; an old table already promoted survives until the next mark-compact and would keep
   * each such stream's call, promise and buffers alive across scavenges (docs/read-path-spike.md §10).
   */
  release(): void {
    this.sink = null;
    this.call = null;
    this.queue = null;
  }

  /** Bytes waiting for send window. */
  queuedBytes(): number {
    let n = 0;
    for (const q of this.queue ?? []) n += q.bytes.length;
    return n;
  }

  /** The first value of header `name`, or undefined. */
  header(name: string): string | undefined {
    const h = this.headers;
    for (let i = 0; i < h.length; i += 2) if (h[i] === name) return h[i + 1];
    return undefined;
  }
}

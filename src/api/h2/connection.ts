/**
 * The server side of one HTTP/2 connection (RFC 9113) for the lean gRPC server (issue 16): node:http2 builds a
 * Duplex stream object, header objects and external strings for every call, about 13 KB of garbage and 1.6 KB that
 * outlives a scavenge per Score call on the serving thread, and its mark-compacts were the p99 of the read path
 * (docs/read-path-spike.md §9, §10). Here a call costs a stream record, its header strings and the bytes: frames are
 * parsed straight from the socket's buffers, responses are written as pre-encoded header blocks plus DATA, and the
 * frames of all calls answered in one turn leave in one socket write.
 *
 * Here: the preface and SETTINGS exchange, HEADERS + CONTINUATION with HPACK (hpack.ts), DATA with flow control
 * (sending in sender.ts), RST_STREAM, PING, GOAWAY, padding and priority (read, ignored: §5.3.2); connection errors
 * end the connection with GOAWAY, stream errors reset the stream (§5.4). Server push is never used.
 */
import type { Duplex } from 'node:stream';
import * as F from './frames.js';
import { HpackDecoder, HpackError } from './hpack.js';
import { H2Sender } from './sender.js';
import { H2Stream } from './stream.js';

/** What the connection asks of the server that owns it. */
export interface ConnectionHooks {
  /** A request's header block arrived: set `stream.sink` (or answer and close it at once). */
  stream(conn: H2Connection, stream: H2Stream): void;
  /** A stream is done both ways (or reset): its call is over. */
  streamClosed(conn: H2Connection, stream: H2Stream): void;
  /** The socket closed. */
  closed(conn: H2Connection): void;
  /** An unexpected error while serving the connection (it is closed with INTERNAL_ERROR). */
  error(conn: H2Connection, err: unknown): void;
}

export interface ConnectionSettings {
  maxConcurrentStreams: number;
  /** Largest request header list (RFC 9113 §6.5.2), also the bound of a header block's bytes. */
  maxHeaderListBytes: number;
}

/** What we advertise: a window large enough that a unary request never waits for a WINDOW_UPDATE. */
const STREAM_WINDOW = 1 << 20;
const CONNECTION_WINDOW = 16 << 20;
/** Credit received bytes back once this many are unacknowledged. */
const CONNECTION_CREDIT_AT = 1 << 20;
const STREAM_CREDIT_AT = 256 << 10;

export class H2Connection extends H2Sender {
  /** Highest client stream id seen (GOAWAY names it). */
  lastStreamId = 0;
  /** Last time a frame arrived (keepalive) and last time a stream was open (idle timeout), ms since epoch. */
  lastFrameAt = Date.now();
  idleSince = Date.now();
  readonly openedAt = Date.now();
  /** The client's preface and first SETTINGS arrived. */
  handshakeDone = false;
  /** When the keepalive PING in flight was sent (0: none). */
  keepaliveSentAt = 0;
  /** A GOAWAY was sent: no new stream is accepted and the socket ends once the last one closes. */
  goingAway = false;
  private readonly decoder: HpackDecoder;
  private readonly resetBudget = new F.RateBudget(1_000, 33, 'too many stream resets');
  private buffered: Buffer | null = null;
  private prefaceSeen = false;
  /** A header block spread over HEADERS + CONTINUATION frames. */
  private continuing: { id: number; endStream: boolean; parts: Buffer[]; bytes: number } | null = null;
  private connRecvWindow = F.DEFAULT_WINDOW;
  private connRecvUnacked = 0;

  constructor(
    socket: Duplex & { remoteAddress?: string },
    private readonly settings: ConnectionSettings,
    private readonly hooks: ConnectionHooks,
  ) {
    super(socket);
    this.decoder = new HpackDecoder(4096);
    socket.on('data', (chunk: Buffer) => this.read(chunk));
    socket.on('error', () => this.destroy());
    socket.on('close', () => this.destroy());
    this.write(
      F.settingsFrame([
        [F.SETTINGS_MAX_CONCURRENT_STREAMS, settings.maxConcurrentStreams],
        [F.SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW],
        [F.SETTINGS_MAX_HEADER_LIST_SIZE, settings.maxHeaderListBytes],
        [F.SETTINGS_ENABLE_PUSH, 0],
      ]),
    );
    this.write(F.u32Frame(F.WINDOW_UPDATE, 0, CONNECTION_WINDOW - F.DEFAULT_WINDOW));
    this.connRecvWindow = CONNECTION_WINDOW;
  }

  get remoteAddress(): string {
    return this.socket.remoteAddress ?? '';
  }

  // --- ends of streams and of the connection -----------------------------------------------------------------------

  /** Ends the stream with RST_STREAM (`code`); nothing more is sent or delivered, and its sink is told. */
  reset(stream: H2Stream, code: number): void {
    if (this.dead || (stream.localClosed && stream.remoteClosed)) return;
    this.write(F.u32Frame(F.RST_STREAM, stream.id, code));
    this.drop(stream, code);
  }

  /** A stream reset by either side: nothing more either way; its sink is told, then it is forgotten. */
  private drop(stream: H2Stream, code: number): void {
    stream.remoteClosed = true;
    stream.queue = null;
    stream.sink?.reset(stream, code);
    this.closeLocal(stream);
  }

  /** GOAWAY naming the last stream received: streams open finish, no new one starts, then the socket ends. */
  goaway(code = F.NO_ERROR, debug = ''): void {
    if (this.dead || this.goingAway) return;
    this.goingAway = true;
    this.write(F.goawayFrame(this.lastStreamId, code, debug));
    if (this.streams.size === 0) this.endSoon();
  }

  /** Closes at once: open streams see a reset (CANCEL). */
  destroy(graceful = false): void {
    if (this.dead) return;
    this.dead = true;
    this.flush();
    if (graceful) {
      // After a GOAWAY: an immediate destroy could drop it (TLS, or a reset for unread input).
      this.socket.end();
      setTimeout(() => this.socket.destroy(), 1_000).unref();
    } else this.socket.destroy();
    this.endPings();
    const open = [...this.streams.values()];
    this.streams.clear();
    for (const s of open) {
      s.localClosed = s.remoteClosed = true;
      s.sink?.reset(s, F.CANCEL);
      this.hooks.streamClosed(this, s);
      s.release();
    }
    this.hooks.closed(this);
  }

  private endSoon(): void {
    this.flush();
    this.socket.end();
    setTimeout(() => this.destroy(), 1_000).unref(); // a client that never closes its side is not waited for
  }

  protected closeLocal(stream: H2Stream): void {
    stream.localClosed = true;
    if (!stream.remoteClosed) return stream.sink?.localEnd?.(stream);
    this.blocked.delete(stream);
    if (this.streams.get(stream.id) === stream) {
      this.streams.delete(stream.id);
      if (this.streams.size === 0) this.idleSince = Date.now();
      this.hooks.streamClosed(this, stream);
      stream.release();
      if (this.goingAway && this.streams.size === 0) this.endSoon();
    }
  }

  // --- receiving ----------------------------------------------------------------------------------------------------

  private read(chunk: Buffer): void {
    if (this.dead) return;
    let buf = this.buffered ? Buffer.concat([this.buffered, chunk]) : chunk;
    this.buffered = null;
    let at = 0;
    try {
      if (!this.prefaceSeen) {
        const n = Math.min(buf.length, F.PREFACE.length);
        if (buf.compare(F.PREFACE, 0, n, 0, n) !== 0) throw new F.ConnectionError(F.PROTOCOL_ERROR, 'bad preface');
        if (buf.length < F.PREFACE.length) {
          this.buffered = buf;
          return;
        }
        this.prefaceSeen = true;
        at = F.PREFACE.length;
      }
      const limit = F.DEFAULT_MAX_FRAME;
      while (buf.length - at >= 9) {
        const length = (buf[at] << 16) | (buf[at + 1] << 8) | buf[at + 2];
        if (length > limit) throw new F.ConnectionError(F.FRAME_SIZE_ERROR, `frame of ${length} bytes`);
        if (buf.length - at < 9 + length) break;
        const type = buf[at + 3];
        const flags = buf[at + 4];
        const id = buf.readUInt32BE(at + 5) & 0x7fffffff;
        this.frame(type, flags, id, buf, at + 9, at + 9 + length);
        at += 9 + length;
        if (this.dead) return;
      }
      this.lastFrameAt = Date.now();
    } catch (err) {
      if (err instanceof F.ConnectionError) return this.fail(err.code, err.message);
      if (err instanceof HpackError) return this.fail(F.COMPRESSION_ERROR, err.message);
      // A bug (or an allocation that failed) while serving this connection: it ends, not the process.
      this.hooks.error(this, err);
      return this.fail(F.INTERNAL_ERROR, 'internal error');
    }
    if (at < buf.length) {
      // Keep the partial frame; copy it if it is a small tail of a big read, so the big buffer can go.
      buf = buf.subarray(at);
      this.buffered = buf.length < 4096 ? Buffer.from(buf) : buf;
    }
  }

  /** A connection error (RFC 9113 §5.4.1): GOAWAY with the code, then close. */
  private fail(code: number, message: string): void {
    if (this.dead) return;
    this.write(F.goawayFrame(this.lastStreamId, code, message));
    this.destroy(true);
  }

  private frame(type: number, flags: number, id: number, buf: Buffer, start: number, end: number): void {
    if (this.continuing && type !== F.CONTINUATION)
      throw new F.ConnectionError(F.PROTOCOL_ERROR, 'expected CONTINUATION');
    if (!this.handshakeDone && type !== F.SETTINGS)
      throw new F.ConnectionError(F.PROTOCOL_ERROR, 'the first frame must be SETTINGS');
    switch (type) {
      case F.DATA:
        return this.onData(flags, id, buf, start, end);
      case F.HEADERS:
        return this.onHeaders(flags, id, buf, start, end);
      case F.CONTINUATION:
        return this.onContinuation(flags, id, buf, start, end);
      case F.RST_STREAM:
        return this.onReset(id, end - start, buf, start);
      case F.SETTINGS:
        return this.onSettings(flags, id, buf, start, end);
      case F.PING:
        if (id !== 0) throw new F.ConnectionError(F.PROTOCOL_ERROR, 'PING on a stream');
        if (end - start !== 8) throw new F.ConnectionError(F.FRAME_SIZE_ERROR, 'PING of the wrong size');
        if (flags & F.ACK) {
          this.pingAcked(buf.readBigUInt64BE(start));
        } else this.write(F.frame(F.PING, F.ACK, 0, buf.subarray(start, end)));
        return;
      case F.GOAWAY:
        // The client will open no more streams; those open finish. Closing is the client's (or the idle timeout's).
        return;
      case F.WINDOW_UPDATE:
        return this.onWindowUpdate(id, buf, start, end);
      case F.PRIORITY:
        if (id === 0 || end - start !== 5) throw new F.ConnectionError(F.PROTOCOL_ERROR, 'bad PRIORITY');
        return;
      case F.PUSH_PROMISE:
        throw new F.ConnectionError(F.PROTOCOL_ERROR, 'a client cannot push');
      default:
        return; // unknown frame types are ignored (RFC 9113 §4.1)
    }
  }

  private onSettings(flags: number, id: number, buf: Buffer, start: number, end: number): void {
    if (id !== 0) throw new F.ConnectionError(F.PROTOCOL_ERROR, 'SETTINGS on a stream');
    if (flags & F.ACK) {
      if (end !== start) throw new F.ConnectionError(F.FRAME_SIZE_ERROR, 'SETTINGS ACK with a payload');
      return;
    }
    if ((end - start) % 6 !== 0) throw new F.ConnectionError(F.FRAME_SIZE_ERROR, 'SETTINGS of the wrong size');
    this.applySettings(buf, start, end);
    this.write(F.frame(F.SETTINGS, F.ACK, 0));
    this.handshakeDone = true;
    if (this.blocked.size > 0) this.resume();
  }

  private onWindowUpdate(id: number, buf: Buffer, start: number, end: number): void {
    if (end - start !== 4) throw new F.ConnectionError(F.FRAME_SIZE_ERROR, 'WINDOW_UPDATE of the wrong size');
    const increment = buf.readUInt32BE(start) & 0x7fffffff;
    if (id === 0) {
      if (increment === 0) throw new F.ConnectionError(F.PROTOCOL_ERROR, 'WINDOW_UPDATE of 0');
      this.connSendWindow += increment;
      if (this.connSendWindow > F.MAX_WINDOW) throw new F.ConnectionError(F.FLOW_CONTROL_ERROR, 'window overflow');
    } else {
      const stream = this.streams.get(id);
      if (!stream && id > this.lastStreamId) throw new F.ConnectionError(F.PROTOCOL_ERROR, 'WINDOW_UPDATE on idle');
      if (!stream) return; // a stream closed meanwhile
      if (increment === 0) return this.reset(stream, F.PROTOCOL_ERROR);
      stream.sendWindow += increment;
      if (stream.sendWindow > F.MAX_WINDOW) return this.reset(stream, F.FLOW_CONTROL_ERROR);
    }
    if (this.blocked.size > 0) this.resume();
  }

  private onReset(id: number, length: number, buf: Buffer, start: number): void {
    if (length !== 4) throw new F.ConnectionError(F.FRAME_SIZE_ERROR, 'RST_STREAM of the wrong size');
    if (id === 0 || id > this.lastStreamId)
      throw new F.ConnectionError(F.PROTOCOL_ERROR, 'RST_STREAM on an idle stream');
    const stream = this.streams.get(id);
    if (!stream) return;
    this.resetBudget.take(); // many calls opened and reset at once: ENHANCE_YOUR_CALM (CVE-2023-44487)
    this.drop(stream, buf.readUInt32BE(start));
  }

  private onData(flags: number, id: number, buf: Buffer, start: number, end: number): void {
    if (id === 0) throw new F.ConnectionError(F.PROTOCOL_ERROR, 'DATA on stream 0');
    const length = end - start;
    this.connRecvWindow -= length;
    if (this.connRecvWindow < 0) throw new F.ConnectionError(F.FLOW_CONTROL_ERROR, 'connection window exceeded');
    this.credit(length);
    const stream = this.streams.get(id);
    if (!stream || stream.remoteClosed) {
      // Frames in flight after a reset are dropped; DATA on a stream never opened is a protocol error, and after the
      // client's END_STREAM (half-closed remote) a stream error STREAM_CLOSED (RFC 9113 §5.1).
      if (id > this.lastStreamId) throw new F.ConnectionError(F.PROTOCOL_ERROR, 'DATA on an idle stream');
      return stream ? this.reset(stream, F.STREAM_CLOSED) : undefined;
    }
    stream.recvWindow -= length;
    if (stream.recvWindow < 0) return this.reset(stream, F.FLOW_CONTROL_ERROR);
    const [from, to] = F.unpad(flags, buf, start, end);
    if (from < to) stream.sink?.data(stream, buf.subarray(from, to));
    if (stream.remoteClosed) return; // the sink reset the stream: no WINDOW_UPDATE on it (§5.1)
    if (flags & F.END_STREAM) this.remoteEnd(stream);
    else {
      stream.recvUnacked += length;
      if (stream.recvUnacked >= STREAM_CREDIT_AT) {
        this.write(F.u32Frame(F.WINDOW_UPDATE, id, stream.recvUnacked));
        stream.recvWindow += stream.recvUnacked;
        stream.recvUnacked = 0;
      }
    }
  }

  private credit(length: number): void {
    this.connRecvUnacked += length;
    if (this.connRecvUnacked >= CONNECTION_CREDIT_AT) {
      this.write(F.u32Frame(F.WINDOW_UPDATE, 0, this.connRecvUnacked));
      this.connRecvWindow += this.connRecvUnacked;
      this.connRecvUnacked = 0;
    }
  }

  private remoteEnd(stream: H2Stream): void {
    stream.remoteClosed = true;
    stream.sink?.end(stream);
    if (stream.localClosed) this.closeLocal(stream);
  }

  private onHeaders(flags: number, id: number, buf: Buffer, start: number, end: number): void {
    if (id === 0 || (id & 1) === 0) throw new F.ConnectionError(F.PROTOCOL_ERROR, 'HEADERS on a bad stream id');
    const [start0, to] = F.unpad(flags, buf, start, end);
    const from = flags & F.PRIORITY_FLAG ? start0 + 5 : start0;
    if (from > to) throw new F.ConnectionError(F.PROTOCOL_ERROR, 'HEADERS too short');
    const endStream = (flags & F.END_STREAM) !== 0;
    if (flags & F.END_HEADERS) return this.headerBlock(id, endStream, buf, from, to);
    this.continuing = { id, endStream, parts: [Buffer.from(buf.subarray(from, to))], bytes: to - from };
  }

  private onContinuation(flags: number, id: number, buf: Buffer, start: number, end: number): void {
    const c = this.continuing;
    if (!c || c.id !== id) throw new F.ConnectionError(F.PROTOCOL_ERROR, 'unexpected CONTINUATION');
    // Each fragment's frame header counts too, so that empty CONTINUATIONs cannot pile up below the bound.
    c.bytes += end - start + F.FRAME_HEADER_BYTES;
    if (c.bytes > this.settings.maxHeaderListBytes)
      throw new F.ConnectionError(F.PROTOCOL_ERROR, 'header block over the advertised limit');
    if (end > start) c.parts.push(Buffer.from(buf.subarray(start, end)));
    if (!(flags & F.END_HEADERS)) return;
    this.continuing = null;
    const block = Buffer.concat(c.parts);
    this.headerBlock(id, c.endStream, block, 0, block.length);
  }

  /** A complete header block: a new request, or trailers of an open one. HPACK state is kept in step either way. */
  private headerBlock(id: number, endStream: boolean, buf: Buffer, start: number, end: number): void {
    const headers: string[] = [];
    const listBytes = this.decoder.decode(buf, start, end, headers);
    const existing = this.streams.get(id);
    if (existing || id <= this.lastStreamId) {
      // Trailers (gRPC clients send none, but HTTP/2 allows them): they must end the stream.
      if (!existing || existing.remoteClosed) return;
      if (!endStream) return this.reset(existing, F.PROTOCOL_ERROR);
      return this.remoteEnd(existing);
    }
    this.lastStreamId = id;
    const stream = new H2Stream(id, headers, STREAM_WINDOW, this.peerInitialWindow);
    if (this.goingAway) {
      this.write(F.u32Frame(F.RST_STREAM, id, F.REFUSED_STREAM));
      return;
    }
    if (this.streams.size >= this.settings.maxConcurrentStreams) {
      this.write(F.u32Frame(F.RST_STREAM, id, F.REFUSED_STREAM));
      return;
    }
    this.streams.set(id, stream);
    if (listBytes > this.settings.maxHeaderListBytes) return this.reset(stream, F.PROTOCOL_ERROR);
    if (endStream) stream.remoteClosed = true;
    this.hooks.stream(this, stream);
    if (endStream && !stream.localClosed) stream.sink?.end(stream);
    else if (endStream && stream.localClosed) this.closeLocal(stream);
  }
}

/**
 * The sending half of a lean HTTP/2 connection (RFC 9113 §5.2, §6.9): response header blocks (split into CONTINUATION
 * frames past the peer's frame size), DATA within the peer's stream and connection windows (the rest waits, in order
 * with the trailers behind it, until WINDOW_UPDATE), and one socket write per event-loop turn for every frame queued in
 * it. connection.ts adds the receiving half and the stream states.
 */
import type { Duplex } from 'node:stream';
import * as F from './frames.js';
import type { H2Stream } from './stream.js';

export abstract class H2Sender {
  readonly streams = new Map<number, H2Stream>();
  protected peerMaxFrame = F.DEFAULT_MAX_FRAME;
  protected peerInitialWindow = F.DEFAULT_WINDOW;
  protected connSendWindow = F.DEFAULT_WINDOW;
  /** Streams with frames waiting for send window. */
  protected readonly blocked = new Set<H2Stream>();
  private out: Buffer[] = [];
  private outBytes = 0;
  private flushScheduled = false;
  protected dead = false;
  private readonly pings = new Map<bigint, () => void>();
  private pingSeq = 0n;
  /** The client set SETTINGS_HEADER_TABLE_SIZE: our next header block starts with a table size update to 0. */
  private tableUpdatePending = false;
  private tableUpdateSent = false;
  /** Reading is paused until the socket drains (a peer that sends and does not read). */
  private readPaused = false;

  constructor(readonly socket: Duplex & { remoteAddress?: string }) {}

  /** Resolves when the client acknowledges a PING (or the connection closes). */
  ping(): Promise<void> {
    if (this.dead) return Promise.resolve();
    const id = ++this.pingSeq;
    const payload = Buffer.allocUnsafe(8);
    payload.writeBigUInt64BE(id);
    return new Promise((resolve) => {
      this.pings.set(id, resolve);
      this.write(F.frame(F.PING, 0, 0, payload));
    });
  }

  protected pingAcked(key: bigint): void {
    this.pings.get(key)?.();
    this.pings.delete(key);
  }

  /** The connection is gone: every PING waiting is answered. */
  protected endPings(): void {
    for (const resolve of this.pings.values()) resolve();
    this.pings.clear();
  }

  /**
   * The peer's SETTINGS_INITIAL_WINDOW_SIZE: every open stream's send window moves by the change, and may go below
   * zero; one pushed past 2^31-1 is a connection error FLOW_CONTROL_ERROR (RFC 9113 §6.9.2).
   */
  protected setInitialWindow(value: number): void {
    if (value > F.MAX_WINDOW) throw new F.ConnectionError(F.FLOW_CONTROL_ERROR, 'initial window too large');
    const delta = value - this.peerInitialWindow;
    this.peerInitialWindow = value;
    for (const s of this.streams.values()) {
      s.sendWindow += delta;
      if (s.sendWindow > F.MAX_WINDOW) throw new F.ConnectionError(F.FLOW_CONTROL_ERROR, 'stream window overflow');
    }
  }

  /** The peer's SETTINGS (RFC 9113 §6.5.2) that bind what we send. */
  protected applySettings(buf: Buffer, start: number, end: number): void {
    for (let at = start; at < end; at += 6) {
      const key = buf.readUInt16BE(at);
      const value = buf.readUInt32BE(at + 2);
      if (key === F.SETTINGS_INITIAL_WINDOW_SIZE) this.setInitialWindow(value);
      else if (key === F.SETTINGS_MAX_FRAME_SIZE) {
        if (value < F.DEFAULT_MAX_FRAME || value > F.MAX_FRAME_LIMIT)
          throw new F.ConnectionError(F.PROTOCOL_ERROR, 'bad max frame size');
        this.peerMaxFrame = value;
      } else if (key === F.SETTINGS_ENABLE_PUSH && value > 1) {
        throw new F.ConnectionError(F.PROTOCOL_ERROR, 'bad enable push');
      } else if (key === F.SETTINGS_HEADER_TABLE_SIZE && !this.tableUpdateSent) {
        // Our encoder never indexes; a decoder (nghttp2's) that lowered its table still expects the change signalled
        // at the start of the next block (RFC 7541 §4.2): one update to size 0 fits every later setting.
        this.tableUpdatePending = true;
      }
    }
  }

  /** A header block as sent: with the table size update first when one is owed. */
  protected withTableUpdate(block: Buffer): Buffer {
    if (!this.tableUpdatePending) return block;
    this.tableUpdatePending = false;
    this.tableUpdateSent = true;
    return Buffer.concat([TABLE_SIZE_ZERO, block]);
  }

  /** Our side of `stream` is done (END_STREAM or RST_STREAM sent). */
  protected abstract closeLocal(stream: H2Stream): void;

  /** Response headers, or trailers once headers were sent; `end` closes our side. Waits behind queued DATA. */
  sendHeaders(stream: H2Stream, block: Buffer, end: boolean): void {
    if (stream.localClosed || stream.ending || this.dead) return;
    if (end) stream.ending = true;
    if (stream.queue) stream.queue.push({ kind: 'headers', bytes: block, end });
    else {
      this.writeHeaderBlock(stream.id, block, end);
      if (end) this.closeLocal(stream);
    }
  }

  /** DATA as the peer's windows allow; the rest waits for its WINDOW_UPDATEs. */
  sendData(stream: H2Stream, data: Buffer, end: boolean): void {
    if (stream.localClosed || stream.ending || this.dead) return;
    if (end) stream.ending = true;
    if (stream.queue) {
      stream.queue.push({ kind: 'data', bytes: data, end });
      return;
    }
    const rest = this.writeData(stream, data, end);
    if (rest) {
      stream.queue = [{ kind: 'data', bytes: rest, end }];
      this.blocked.add(stream);
    } else if (end) this.closeLocal(stream);
  }

  /**
   * A whole unary answer in one buffer — HEADERS, one DATA frame, trailers with END_STREAM — when the windows and the
   * frame size allow (the common case); otherwise through sendHeaders/sendData.
   */
  sendUnary(stream: H2Stream, given: Buffer, message: Buffer, trailers: Buffer): void {
    if (stream.localClosed || stream.ending || this.dead) return;
    const dataLength = 5 + message.length;
    const fits =
      !stream.queue &&
      dataLength <= this.peerMaxFrame &&
      dataLength <= stream.sendWindow &&
      dataLength <= this.connSendWindow &&
      given.length + 1 <= this.peerMaxFrame && // + a table size update, when one is owed
      trailers.length <= this.peerMaxFrame;
    if (!fits) {
      const body = Buffer.allocUnsafe(dataLength);
      body[0] = 0;
      body.writeUInt32BE(message.length, 1);
      message.copy(body, 5);
      this.sendHeaders(stream, given, false);
      this.sendData(stream, body, false);
      this.sendHeaders(stream, trailers, true);
      return;
    }
    const headers = this.withTableUpdate(given);
    const out = Buffer.allocUnsafe(27 + headers.length + dataLength + trailers.length);
    let at = 0;
    F.writeFrameHeader(out, at, headers.length, F.HEADERS, F.END_HEADERS, stream.id);
    at += 9 + headers.copy(out, at + 9);
    F.writeFrameHeader(out, at, dataLength, F.DATA, 0, stream.id);
    out[at + 9] = 0;
    out.writeUInt32BE(message.length, at + 10);
    at += 14 + message.copy(out, at + 14);
    F.writeFrameHeader(out, at, trailers.length, F.HEADERS, F.END_HEADERS | F.END_STREAM, stream.id);
    trailers.copy(out, at + 9);
    stream.sendWindow -= dataLength;
    this.connSendWindow -= dataLength;
    this.write(out);
    this.closeLocal(stream);
  }

  protected writeHeaderBlock(id: number, given: Buffer, end: boolean): void {
    const block = this.withTableUpdate(given);
    const max = this.peerMaxFrame;
    const endFlag = end ? F.END_STREAM : 0;
    if (block.length <= max) {
      const out = Buffer.allocUnsafe(9 + block.length);
      F.writeFrameHeader(out, 0, block.length, F.HEADERS, F.END_HEADERS | endFlag, id);
      block.copy(out, 9);
      this.write(out);
      return;
    }
    for (let at = 0; at < block.length; at += max) {
      const part = block.subarray(at, at + max);
      const last = at + max >= block.length;
      const type = at === 0 ? F.HEADERS : F.CONTINUATION;
      this.write(F.frame(type, (last ? F.END_HEADERS : 0) | (at === 0 ? endFlag : 0), id, part));
    }
  }

  /** Writes what the windows allow; returns what is left (null when all went). */
  protected writeData(stream: H2Stream, data: Buffer, end: boolean): Buffer | null {
    let at = 0;
    do {
      // At least 0: a window below zero (§6.9.2) holds DATA back, but not an empty DATA, which costs no window.
      const n = Math.max(0, Math.min(data.length - at, stream.sendWindow, this.connSendWindow, this.peerMaxFrame));
      if (n === 0 && data.length > at) return data.subarray(at);
      const last = at + n === data.length;
      const out = Buffer.allocUnsafe(9 + n);
      F.writeFrameHeader(out, 0, n, F.DATA, last && end ? F.END_STREAM : 0, stream.id);
      data.copy(out, 9, at, at + n);
      this.write(out);
      stream.sendWindow -= n;
      this.connSendWindow -= n;
      at += n;
    } while (at < data.length);
    return null;
  }

  /** Sends what waited for window on each blocked stream, in order. */
  protected resume(): void {
    for (const stream of this.blocked) {
      const queue = stream.queue!;
      while (queue.length > 0) {
        const item = queue[0];
        if (item.kind === 'headers') {
          this.writeHeaderBlock(stream.id, item.bytes, item.end);
          queue.shift();
          continue;
        }
        const rest = this.writeData(stream, item.bytes, item.end);
        if (rest) {
          item.bytes = rest;
          break;
        }
        queue.shift();
      }
      if (queue.length > 0) continue;
      stream.queue = null;
      this.blocked.delete(stream);
      if (stream.ending) this.closeLocal(stream);
    }
  }

  protected write(buf: Buffer): void {
    this.out.push(buf);
    this.outBytes += buf.length;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(flushConnection, this);
    }
  }

  /** Every frame queued this turn in one socket write. */
  flush(): void {
    this.flushScheduled = false;
    if (this.out.length === 0 || this.socket.destroyed) return;
    const chunk = this.out.length === 1 ? this.out[0] : Buffer.concat(this.out, this.outBytes);
    this.out = [];
    this.outBytes = 0;
    if (this.socket.write(chunk) || this.readPaused || this.socket.writableLength < MAX_UNSENT_BYTES) return;
    // The peer sends (PINGs, SETTINGS, calls) and does not read what we answer: stop reading it until it does, so
    // that what waits to be sent stays bounded (nghttp2 ends such a session; pausing keeps a slow one working).
    this.readPaused = true;
    this.socket.pause();
    this.socket.once('drain', () => {
      this.readPaused = false;
      this.socket.resume();
    });
  }
}

/** Bytes written to the socket but not yet taken by the kernel, beyond which reading pauses. */
const MAX_UNSENT_BYTES = 4 << 20;
/** HPACK dynamic table size update to 0 (RFC 7541 §6.3: 001xxxxx). */
const TABLE_SIZE_ZERO = Buffer.from([0x20]);

function flushConnection(conn: H2Sender): void {
  conn.flush();
}

/**
 * HTTP/2 frame vocabulary (RFC 9113 §4 and §6): frame types, flags, SETTINGS parameters and error codes, and the one
 * writer every outgoing frame goes through. The lean server (connection.ts) needs exactly this much of the protocol.
 */

/** Frame types (RFC 9113 §6). */
export const DATA = 0x0;
export const HEADERS = 0x1;
export const PRIORITY = 0x2;
export const RST_STREAM = 0x3;
export const SETTINGS = 0x4;
export const PUSH_PROMISE = 0x5;
export const PING = 0x6;
export const GOAWAY = 0x7;
export const WINDOW_UPDATE = 0x8;
export const CONTINUATION = 0x9;

/** Flags (the same bit means different things per type). */
export const END_STREAM = 0x1;
export const ACK = 0x1;
export const END_HEADERS = 0x4;
export const PADDED = 0x8;
export const PRIORITY_FLAG = 0x20;

/** SETTINGS parameters (RFC 9113 §6.5.2). */
export const SETTINGS_HEADER_TABLE_SIZE = 0x1;
export const SETTINGS_ENABLE_PUSH = 0x2;
export const SETTINGS_MAX_CONCURRENT_STREAMS = 0x3;
export const SETTINGS_INITIAL_WINDOW_SIZE = 0x4;
export const SETTINGS_MAX_FRAME_SIZE = 0x5;
export const SETTINGS_MAX_HEADER_LIST_SIZE = 0x6;

/** Error codes (RFC 9113 §7). */
export const NO_ERROR = 0x0;
export const PROTOCOL_ERROR = 0x1;
export const INTERNAL_ERROR = 0x2;
export const FLOW_CONTROL_ERROR = 0x3;
export const STREAM_CLOSED = 0x5;
export const FRAME_SIZE_ERROR = 0x6;
export const REFUSED_STREAM = 0x7;
export const CANCEL = 0x8;
export const COMPRESSION_ERROR = 0x9;
export const ENHANCE_YOUR_CALM = 0xb;

/** The client connection preface (RFC 9113 §3.4). */
export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
export const FRAME_HEADER_BYTES = 9;
/** Defaults every peer starts from (RFC 9113 §6.5.2). */
export const DEFAULT_WINDOW = 65_535;
export const DEFAULT_MAX_FRAME = 16_384;
export const MAX_WINDOW = 2 ** 31 - 1;
export const MAX_FRAME_LIMIT = 2 ** 24 - 1;

/** Writes a frame header at `at` of `out`. */
export function writeFrameHeader(out: Buffer, at: number, length: number, type: number, flags: number, stream: number) {
  out[at] = length >>> 16;
  out[at + 1] = (length >>> 8) & 0xff;
  out[at + 2] = length & 0xff;
  out[at + 3] = type;
  out[at + 4] = flags;
  out.writeUInt32BE(stream >>> 0, at + 5);
}

/** A whole frame with its payload. */
export function frame(type: number, flags: number, stream: number, payload?: Buffer): Buffer {
  const length = payload ? payload.length : 0;
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + length);
  writeFrameHeader(out, 0, length, type, flags, stream);
  if (payload) payload.copy(out, FRAME_HEADER_BYTES);
  return out;
}

/** A frame whose payload is one 32-bit number (RST_STREAM's error code, WINDOW_UPDATE's increment). */
export function u32Frame(type: number, stream: number, value: number): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 4);
  writeFrameHeader(out, 0, 4, type, 0, stream);
  out.writeUInt32BE(value >>> 0, FRAME_HEADER_BYTES);
  return out;
}

/** SETTINGS with the given [id, value] pairs. */
export function settingsFrame(pairs: [number, number][]): Buffer {
  const payload = Buffer.allocUnsafe(6 * pairs.length);
  pairs.forEach(([id, value], i) => {
    payload.writeUInt16BE(id, 6 * i);
    payload.writeUInt32BE(value >>> 0, 6 * i + 2);
  });
  return frame(SETTINGS, 0, 0, payload);
}

/** GOAWAY naming the last stream this side will process. */
export function goawayFrame(lastStream: number, code: number, debug = ''): Buffer {
  const text = Buffer.from(debug, 'utf8');
  const payload = Buffer.allocUnsafe(8 + text.length);
  payload.writeUInt32BE(lastStream >>> 0, 0);
  payload.writeUInt32BE(code >>> 0, 4);
  text.copy(payload, 8);
  return frame(GOAWAY, 0, 0, payload);
}

/** A connection error (RFC 9113 §5.4.1): the connection ends with GOAWAY and this code. */
export class ConnectionError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/** The payload range without padding (RFC 9113 §6.1); padding as long as the payload is a protocol error. */
export function unpad(flags: number, buf: Buffer, start: number, end: number): [number, number] {
  if (!(flags & PADDED)) return [start, end];
  if (start >= end) throw new ConnectionError(PROTOCOL_ERROR, 'padded frame without a pad length');
  const pad = buf[start];
  if (pad >= end - start) throw new ConnectionError(PROTOCOL_ERROR, 'padding longer than the frame');
  return [start + 1, end - pad];
}

/**
 * A token bucket for what a peer may do often but not endlessly (stream resets: the "rapid reset" attack,
 * CVE-2023-44487). nghttp2 1.57 allows a burst of 1,000 resets refilled at 33 per second; past it the connection
 * ends with ENHANCE_YOUR_CALM.
 */
export class RateBudget {
  private tokens: number;
  private at = Date.now();

  constructor(
    private readonly burst: number,
    private readonly perSecond: number,
    private readonly what: string,
  ) {
    this.tokens = burst;
  }

  take(): void {
    const now = Date.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) * this.perSecond) / 1000);
    this.at = now;
    if (this.tokens < 1) throw new ConnectionError(ENHANCE_YOUR_CALM, this.what);
    this.tokens--;
  }
}

import { closeSync, openSync, readFileSync, write } from 'node:fs';
import { promisify } from 'node:util';
import { constants, gunzipSync, gzip } from 'node:zlib';
import { InvalidInputError } from '../../common/index.js';

/**
 * The service's recording format (docs/events.md, "Recordings"): raw ZMQ messages as received, so that a recording
 * replays exactly what the indexer saw, malformed messages included.
 *
 *   file    = [gzip of] magic "KVREC\0" · u16 version (1) · u32 header length · header (UTF-8 JSON) · record*
 *   record  = u32 body length · body
 *   body    = f64 receive time (ms since the epoch) · u16 frame count · (u32 frame length · frame bytes)*
 *
 * All integers big-endian. A live vLLM message has three frames: topic, seq (8 B BE), msgpack payload.
 * Files whose name ends in `.gz` are gzip-compressed; the reader detects gzip by its magic bytes. The writer appends
 * one gzip member per flush (RFC 1952 §2.2: a gzip file is a series of members; gunzip concatenates them), each ending
 * on a record boundary, so a recording cut short (the recorder killed, a disk full) still decodes up to its last
 * complete flush. The reader keeps the whole records of a cut file and reports where it stopped.
 */

export const RECORDING_MAGIC = Buffer.from('KVREC\0', 'latin1');
export const RECORDING_VERSION = 1;

export interface RecordingHeader {
  /** ISO time the recording started. */
  createdAt: string;
  /** Where it came from (`record tcp://…`, `simulator:<scenario>`). */
  source: string;
  /** Payload format of the publishers. */
  format: 'vllm' | 'sglang';
  /** Free-form description. */
  note?: string;
}

export interface RecordedMessage {
  /** Receive time, ms since the epoch (fractional). */
  time: number;
  frames: Uint8Array[];
}

export class RecordingError extends InvalidInputError {}

export function encodeHeader(header: RecordingHeader): Buffer {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const out = Buffer.alloc(RECORDING_MAGIC.length + 6 + json.length);
  RECORDING_MAGIC.copy(out, 0);
  out.writeUInt16BE(RECORDING_VERSION, RECORDING_MAGIC.length);
  out.writeUInt32BE(json.length, RECORDING_MAGIC.length + 2);
  json.copy(out, RECORDING_MAGIC.length + 6);
  return out;
}

export function encodeRecord(message: RecordedMessage): Buffer {
  let size = 8 + 2;
  for (const f of message.frames) size += 4 + f.length;
  const out = Buffer.alloc(4 + size);
  let o = out.writeUInt32BE(size, 0);
  o = out.writeDoubleBE(message.time, o);
  o = out.writeUInt16BE(message.frames.length, o);
  for (const f of message.frames) {
    o = out.writeUInt32BE(f.length, o);
    out.set(f, o);
    o += f.length;
  }
  return out;
}

/** Where a cut recording stopped: the records before it are whole and returned. */
export interface Truncation {
  /** Offset in the (decompressed) recording of the first record that is not whole. */
  atByte: number;
  /** Whole records read before it. */
  messages: number;
  reason: string;
}

export interface ParsedRecording {
  header: RecordingHeader;
  messages: RecordedMessage[];
  /** null when the file ends on a record boundary. */
  truncated: Truncation | null;
}

/** A gzip recording inflating past this many bytes is refused (a gzip bomb: 1 MB of zeros inflates to 1 GB). */
export const DEFAULT_MAX_RECORDING_BYTES = 256 * 1024 * 1024;

export interface ParseOptions {
  /** Bound on the decompressed size (default DEFAULT_MAX_RECORDING_BYTES). */
  maxBytes?: number;
}

/** Inflates a gzip recording, bounded, keeping what decodes of a member cut short. */
function inflate(buf: Buffer, maxBytes: number): Buffer {
  try {
    // Z_SYNC_FLUSH at the end: a truncated last member yields what it holds instead of an error.
    return gunzipSync(buf, { finishFlush: constants.Z_SYNC_FLUSH, maxOutputLength: maxBytes });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ERR_BUFFER_TOO_LARGE' || e instanceof RangeError) {
      throw new RecordingError(
        `the recording inflates to more than ${maxBytes} bytes (${buf.length} bytes compressed): not read (a gzip bomb, or raise the limit: replay --max-bytes)`,
      );
    }
    throw new RecordingError(`the recording is not valid gzip: ${e.message}`);
  }
}

/**
 * Parses a whole recording (gzip or plain). A bad magic, version or header throws RecordingError; a cut or damaged
 * record ends the parse there: the whole records before it are returned with `truncated` saying where and why.
 */
export function parseRecording(data: Uint8Array, options: ParseOptions = {}): ParsedRecording {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_RECORDING_BYTES;
  let buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) buf = inflate(buf, maxBytes);
  else if (buf.length > maxBytes)
    throw new RecordingError(
      `the recording is larger than ${maxBytes} bytes: not read (raise the limit: replay --max-bytes)`,
    );
  if (buf.length < RECORDING_MAGIC.length + 6 || !buf.subarray(0, RECORDING_MAGIC.length).equals(RECORDING_MAGIC)) {
    throw new RecordingError('not a KV event recording (bad magic)');
  }
  const version = buf.readUInt16BE(RECORDING_MAGIC.length);
  if (version !== RECORDING_VERSION) throw new RecordingError(`unsupported recording version ${version}`);
  const headerLength = buf.readUInt32BE(RECORDING_MAGIC.length + 2);
  let o = RECORDING_MAGIC.length + 6;
  if (o + headerLength > buf.length) throw new RecordingError('truncated header');
  const header = JSON.parse(buf.toString('utf8', o, o + headerLength)) as RecordingHeader;
  o += headerLength;
  const messages: RecordedMessage[] = [];
  const stop = (reason: string): ParsedRecording => ({
    header,
    messages,
    truncated: { atByte: o, messages: messages.length, reason },
  });
  while (o < buf.length) {
    if (o + 4 > buf.length) return stop(`truncated record at byte ${o} (${buf.length - o} bytes of its length)`);
    const size = buf.readUInt32BE(o);
    const end = o + 4 + size;
    if (size < 10) return stop(`bad record length ${size} at byte ${o}`);
    if (end > buf.length) return stop(`truncated record at byte ${o} (${buf.length - o - 4} of ${size} bytes)`);
    let p = o + 4;
    const time = buf.readDoubleBE(p);
    const count = buf.readUInt16BE(p + 8);
    p += 10;
    const frames: Uint8Array[] = [];
    for (let i = 0; i < count; i++) {
      if (p + 4 > end) return stop(`bad frame table in record at byte ${o}`);
      const len = buf.readUInt32BE(p);
      p += 4;
      if (p + len > end) return stop(`bad frame length in record at byte ${o}`);
      frames.push(buf.subarray(p, p + len));
      p += len;
    }
    messages.push({ time, frames });
    o = end;
  }
  return { header, messages, truncated: null };
}

export function readRecording(path: string, options: ParseOptions = {}): ParsedRecording {
  return parseRecording(readFileSync(path), options);
}

const gzipAsync = promisify(gzip);
const writeAsync = promisify(write);

export interface WriterOptions {
  /** Buffered records are flushed (one gzip member, or one write) at least this often (ms). */
  flushMs?: number;
  /** … and whenever this many bytes are buffered. */
  flushBytes?: number;
}

/**
 * Appends messages to a recording file as they come (gzip when the name ends in `.gz`). Records are buffered and
 * flushed every `flushMs` or `flushBytes`, whichever comes first, as one complete gzip member (compressed off the
 * event loop) or one plain write: a SIGKILL loses at most the last flush interval. The file is opened at once, so an
 * unwritable path throws here (RecordingError), not later.
 */
export class RecordingWriter {
  private readonly fd: number;
  private readonly gzip: boolean;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private writing: Promise<void> = Promise.resolve();
  private failure: Error | null = null;
  private readonly timer: NodeJS.Timeout;
  private readonly flushBytes: number;
  count = 0;
  bytes = 0;

  constructor(path: string, header: RecordingHeader, options: WriterOptions = {}) {
    try {
      this.fd = openSync(path, 'w');
    } catch (err) {
      throw new RecordingError(`cannot write ${path}: ${(err as Error).message}`);
    }
    this.gzip = path.endsWith('.gz');
    this.flushBytes = options.flushBytes ?? 1024 * 1024;
    this.pending.push(encodeHeader(header));
    this.flush(); // the header alone is already a valid (empty) recording
    this.timer = setInterval(() => this.flush(), options.flushMs ?? 250);
    this.timer.unref();
  }

  write(message: RecordedMessage): void {
    const rec = encodeRecord(message);
    this.count++;
    this.bytes += rec.length;
    this.pending.push(rec);
    this.pendingBytes += rec.length;
    if (this.pendingBytes >= this.flushBytes) this.flush();
  }

  /** Queues the buffered records as one member/write; writes stay in order. */
  flush(): void {
    if (this.pending.length === 0) return;
    const data = Buffer.concat(this.pending);
    this.pending = [];
    this.pendingBytes = 0;
    this.writing = this.writing.then(async () => {
      if (this.failure) return;
      try {
        const out = this.gzip ? await gzipAsync(data) : data;
        for (let o = 0; o < out.length;) o += (await writeAsync(this.fd, out, o, out.length - o)).bytesWritten;
      } catch (err) {
        this.failure = err as Error;
      }
    });
  }

  /** Flushes what is buffered and closes the file; rejects with the first write error (a full disk). */
  async close(): Promise<void> {
    clearInterval(this.timer);
    this.flush();
    await this.writing;
    closeSync(this.fd);
    if (this.failure) throw new RecordingError(`recording not complete: ${this.failure.message}`);
  }
}

import { createWriteStream, readFileSync, type WriteStream } from 'node:fs';
import { createGzip, gunzipSync, type Gzip } from 'node:zlib';

/**
 * The service's recording format (docs/events.md, "Recordings"): raw ZMQ messages as received, so that a recording
 * replays exactly what the indexer saw, malformed messages included.
 *
 *   file    = [gzip of] magic "KVREC\0" · u16 version (1) · u32 header length · header (UTF-8 JSON) · record*
 *   record  = u32 body length · body
 *   body    = f64 receive time (ms since the epoch) · u16 frame count · (u32 frame length · frame bytes)*
 *
 * All integers big-endian. A live vLLM message has three frames: topic, seq (8 B BE), msgpack payload.
 * Files whose name ends in `.gz` are gzip-compressed; the reader detects gzip by its magic bytes.
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

export class RecordingError extends Error {}

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

/** Parses a whole recording (gzip or plain). */
export function parseRecording(data: Uint8Array): { header: RecordingHeader; messages: RecordedMessage[] } {
  let buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) buf = gunzipSync(buf);
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
  while (o < buf.length) {
    if (o + 4 > buf.length) throw new RecordingError(`truncated record at byte ${o}`);
    const size = buf.readUInt32BE(o);
    const end = o + 4 + size;
    if (end > buf.length || size < 10) throw new RecordingError(`truncated record at byte ${o}`);
    let p = o + 4;
    const time = buf.readDoubleBE(p);
    const count = buf.readUInt16BE(p + 8);
    p += 10;
    const frames: Uint8Array[] = [];
    for (let i = 0; i < count; i++) {
      if (p + 4 > end) throw new RecordingError(`bad frame table in record at byte ${o}`);
      const len = buf.readUInt32BE(p);
      p += 4;
      if (p + len > end) throw new RecordingError(`bad frame length in record at byte ${o}`);
      frames.push(buf.subarray(p, p + len));
      p += len;
    }
    messages.push({ time, frames });
    o = end;
  }
  return { header, messages };
}

export function readRecording(path: string): { header: RecordingHeader; messages: RecordedMessage[] } {
  return parseRecording(readFileSync(path));
}

/** Appends messages to a recording file as they come (gzip when the name ends in `.gz`). */
export class RecordingWriter {
  private readonly out: WriteStream;
  private readonly sink: WriteStream | Gzip;
  count = 0;
  bytes = 0;

  constructor(path: string, header: RecordingHeader) {
    this.out = createWriteStream(path);
    if (path.endsWith('.gz')) {
      const gz = createGzip();
      gz.pipe(this.out);
      this.sink = gz;
    } else this.sink = this.out;
    this.sink.write(encodeHeader(header));
  }

  write(message: RecordedMessage): void {
    const rec = encodeRecord(message);
    this.count++;
    this.bytes += rec.length;
    this.sink.write(rec);
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.out.once('finish', resolve);
      this.out.once('error', reject);
      this.sink.end();
    });
  }
}

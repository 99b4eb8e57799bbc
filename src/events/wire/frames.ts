/**
 * A live KV-event message is exactly three ZMQ frames: topic (UTF-8), sequence (8 bytes, big-endian, unsigned),
 * msgpack payload (spec/vllm-kv-events.md §1).
 */

export interface LiveMessage {
  topic: string;
  seq: bigint;
  payload: Uint8Array;
}

export type FrameResult = { ok: true; message: LiveMessage } | { ok: false; reason: 'frame_count' | 'bad_seq' };

export function parseLiveFrames(frames: readonly Uint8Array[]): FrameResult {
  if (frames.length !== 3) return { ok: false, reason: 'frame_count' };
  const [topic, seq, payload] = frames;
  if (seq.length !== 8) return { ok: false, reason: 'bad_seq' };
  const seqBuf = Buffer.isBuffer(seq) ? seq : Buffer.from(seq.buffer, seq.byteOffset, seq.byteLength);
  const topicBuf = Buffer.isBuffer(topic) ? topic : Buffer.from(topic.buffer, topic.byteOffset, topic.byteLength);
  return { ok: true, message: { topic: topicBuf.toString('utf8'), seq: seqBuf.readBigUInt64BE(0), payload } };
}

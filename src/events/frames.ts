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
  const view = new DataView(seq.buffer, seq.byteOffset, 8);
  return {
    ok: true,
    message: { topic: Buffer.from(topic).toString('utf8'), seq: view.getBigUint64(0, false), payload },
  };
}

// The replay protocol's frames (spec/vllm-kv-events.md §1, "Replay (ROUTER)"), as written by both ROUTERs (the
// recording player, the publisher simulator) and read by the replay client.
import { describe, expect, it } from 'vitest';
import {
  encodeSeq,
  parseReplayRequest,
  parseReplyFrames,
  replayEndFrames,
  replayReplyFrames,
  replayRequestFrames,
  REPLAY_END_SEQ,
} from '../../../src/events/wire/replay-protocol.js';

const bytes = (frames: readonly (Uint8Array | string)[]) =>
  frames.map((f) => (typeof f === 'string' ? Buffer.from(f) : Buffer.from(f)));

describe('replay protocol frames', () => {
  it('request: ["", start_seq as 8 bytes big-endian], read back by the ROUTER', () => {
    const frames = replayRequestFrames(0x0102030405060708n);
    expect(frames).toEqual([Buffer.alloc(0), Buffer.from([1, 2, 3, 4, 5, 6, 7, 8])]);
    expect(parseReplayRequest(frames)).toBe(0x0102030405060708n);
    expect(parseReplayRequest(replayRequestFrames(2n ** 64n - 2n))).toBe(2n ** 64n - 2n);
  });

  it('a ROUTER ignores what is not a request (no start frame, or not 8 bytes)', () => {
    expect(parseReplayRequest([Buffer.alloc(0)])).toBeNull();
    expect(parseReplayRequest([])).toBeNull();
    expect(parseReplayRequest([Buffer.alloc(0), Buffer.alloc(7)])).toBeNull();
    expect(parseReplayRequest([Buffer.alloc(0), Buffer.alloc(9)])).toBeNull();
  });

  it('replies in both layouts, then the end marker, parse back as the DEALER sees them', () => {
    const payload = Buffer.from([0x93, 1, 2]);
    const topic = 'kv@10.0.0.1:8000@m';
    const newReply = bytes(replayReplyFrames('new', topic, encodeSeq(7n), payload));
    expect(newReply).toEqual([Buffer.alloc(0), Buffer.from(topic), encodeSeq(7n), payload]);
    expect(parseReplyFrames(newReply)).toEqual({ kind: 'batch', reply: { seq: 7n, payload, topic } });
    const oldReply = bytes(replayReplyFrames('old', topic, encodeSeq(8n), payload));
    expect(oldReply).toEqual([Buffer.alloc(0), encodeSeq(8n), payload]);
    expect(parseReplyFrames(oldReply)).toEqual({ kind: 'batch', reply: { seq: 8n, payload, topic: null } });
    expect(bytes(replayEndFrames('new', topic))).toEqual([
      Buffer.alloc(0),
      Buffer.from(topic),
      Buffer.alloc(8, 0xff),
      Buffer.alloc(0),
    ]);
    expect(bytes(replayEndFrames('old', topic))).toEqual([Buffer.alloc(0), Buffer.alloc(8, 0xff), Buffer.alloc(0)]);
    expect(parseReplyFrames(bytes(replayEndFrames('new', topic)))).toEqual({ kind: 'end' });
    expect(parseReplyFrames(bytes(replayEndFrames('old', topic)))).toEqual({ kind: 'end' });
    expect(REPLAY_END_SEQ).toEqual(Buffer.alloc(8, 0xff));
  });
});

/**
 * The replay protocol's frames, in one place for both sides: the replay client (replay-client.ts, DEALER), the
 * recording player's replay ROUTER (recording/player.ts) and the vLLM publisher simulator's (src/sim/publisher/).
 * Layouts from spec/vllm-kv-events.md §1, "Replay (ROUTER)":
 *   request (DEALER → ROUTER): `["", start_seq as 8 bytes big-endian]`;
 *   reply, old layout (vLLM ≤ ~0.23, SGLang): `["", seq, payload]`;  new layout (vLLM ≥ 0.26): `["", topic, seq, payload]`;
 *   end marker: the same layout with seq FF…FF and an empty last frame (a reader detects the end by the empty frame).
 * A ROUTER prefixes every frame list with the peer's identity frame; the functions here leave that to the caller.
 */

/** Which reply layout a replay ROUTER writes. */
export type ReplayLayout = 'old' | 'new';

/** The end marker's sequence number: 8 bytes of 0xff. */
export const REPLAY_END_SEQ: Buffer = Buffer.alloc(8, 0xff);

/** A sequence number as its 8-byte big-endian frame. */
export function encodeSeq(seq: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(seq);
  return b;
}

/** The request a DEALER sends: replay every buffered batch from `fromSeq` on. */
export function replayRequestFrames(fromSeq: bigint): Buffer[] {
  return [Buffer.alloc(0), encodeSeq(fromSeq)];
}

/**
 * The start seq of a request as a ROUTER receives it, identity frame removed (`["", start_seq]`); null when the
 * request is not one (no second frame, or not 8 bytes), which a ROUTER ignores.
 */
export function parseReplayRequest(frames: readonly Uint8Array[]): bigint | null {
  const start = frames[1];
  if (!start || start.length !== 8) return null;
  return new DataView(start.buffer, start.byteOffset, 8).getBigUint64(0, false);
}

/** One reply a ROUTER sends (without the identity frame): a buffered batch in the given layout. */
export function replayReplyFrames(
  layout: ReplayLayout,
  topic: Uint8Array | string,
  seq: Uint8Array,
  payload: Uint8Array,
): (Uint8Array | string)[] {
  return layout === 'new' ? ['', topic, seq, payload] : ['', seq, payload];
}

/** The end marker a ROUTER sends after the last reply (without the identity frame). */
export function replayEndFrames(layout: ReplayLayout, topic: Uint8Array | string): (Uint8Array | string)[] {
  return replayReplyFrames(layout, topic, REPLAY_END_SEQ, new Uint8Array(0));
}

export interface ReplayReply {
  seq: bigint;
  payload: Uint8Array;
  /** The topic frame of the new layout; null in the old layout. */
  topic: string | null;
}

export type ParsedReply = { kind: 'batch'; reply: ReplayReply } | { kind: 'end' } | { kind: 'bad'; why: string };

/** Parses one reply message as the DEALER receives it (either layout; the empty delimiter is optional on read). */
export function parseReplyFrames(frames: readonly Uint8Array[]): ParsedReply {
  let rest = frames;
  if (rest.length > 0 && rest[0].length === 0 && rest.length >= 2) rest = rest.slice(1);
  if (rest.length === 0) return { kind: 'bad', why: 'no frames' };
  if (rest[rest.length - 1].length === 0) return { kind: 'end' };
  let topic: string | null = null;
  let seqFrame: Uint8Array;
  let payload: Uint8Array;
  if (rest.length === 2) [seqFrame, payload] = rest;
  else if (rest.length === 3) {
    topic = Buffer.from(rest[0]).toString('utf8');
    [, seqFrame, payload] = rest;
  } else return { kind: 'bad', why: `${frames.length} frames` };
  if (seqFrame.length !== 8) return { kind: 'bad', why: `sequence frame of ${seqFrame.length} bytes` };
  const seq = new DataView(seqFrame.buffer, seqFrame.byteOffset, 8).getBigUint64(0, false);
  return { kind: 'batch', reply: { seq, payload, topic } };
}

import { Dealer } from 'zeromq';

/**
 * Client of a publisher's replay ROUTER (spec/vllm-kv-events.md §1, "Replay"). One DEALER per request, closed after
 * it, so that a late reply to an abandoned request can never be mistaken for a reply to the next one.
 *
 * Request: `["", start_seq as 8 bytes big-endian]`. Replies, as the DEALER sees them:
 *   old (vLLM ≤ ~0.23, SGLang): `["", seq, payload]`;  new (vLLM ≥ 0.26): `["", topic, seq, payload]`;
 *   end marker: the last frame is empty (its seq is FF…FF). The empty delimiter is optional on read.
 */

export interface ReplayReply {
  seq: bigint;
  payload: Uint8Array;
  /** The topic frame of the new layout; null in the old layout. */
  topic: string | null;
}

export class ReplayError extends Error {
  override readonly name = 'ReplayError';
  constructor(
    readonly reason: 'timeout' | 'bad_reply',
    message: string,
  ) {
    super(message);
  }
}

export interface ReplayRequestOptions {
  /** Longest wait for the first reply, ms. */
  timeoutMs: number;
  /**
   * Longest wait between two replies once the replay has started, ms (default: timeoutMs). A publisher writes a
   * replay in one burst, so a pause this long means its ROUTER dropped the rest (send high-water mark).
   */
  idleTimeoutMs?: number;
}

export type ParsedReply = { kind: 'batch'; reply: ReplayReply } | { kind: 'end' } | { kind: 'bad'; why: string };

/** Parses one reply message (either layout). */
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

export function encodeSeq(seq: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(seq);
  return b;
}

/**
 * Requests replay from `fromSeq` and yields the replies in order until the end marker. Throws ReplayError on a
 * timeout or a malformed reply. Breaking out of the loop closes the socket.
 */
export async function* requestReplay(
  address: string,
  fromSeq: bigint,
  options: ReplayRequestOptions,
): AsyncGenerator<ReplayReply, void, undefined> {
  const dealer = new Dealer({ linger: 0, receiveTimeout: options.timeoutMs, sendTimeout: options.timeoutMs });
  try {
    dealer.connect(address);
    try {
      await dealer.send([Buffer.alloc(0), encodeSeq(fromSeq)]);
    } catch (err) {
      throw new ReplayError('timeout', `replay request to ${address} not sent: ${describe(err)}`);
    }
    let waitMs = options.timeoutMs;
    for (;;) {
      let frames: Buffer[];
      try {
        frames = await dealer.receive();
      } catch (err) {
        if (dealer.closed) return;
        throw new ReplayError('timeout', `no replay reply from ${address} within ${waitMs} ms: ${describe(err)}`);
      }
      if (options.idleTimeoutMs !== undefined && waitMs !== options.idleTimeoutMs) {
        waitMs = options.idleTimeoutMs;
        dealer.receiveTimeout = waitMs;
      }
      const parsed = parseReplyFrames(frames);
      if (parsed.kind === 'end') return;
      if (parsed.kind === 'bad') throw new ReplayError('bad_reply', `malformed replay reply from ${address}: ${parsed.why}`);
      yield parsed.reply;
    }
  } finally {
    dealer.close();
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

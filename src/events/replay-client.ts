import { Dealer } from 'zeromq';
import { trackSocket, untrackSocket } from './open-sockets.js';
import { parseReplyFrames, replayRequestFrames, type ReplayReply } from './wire/replay-protocol.js';
import { IndexerError } from '../common/index.js';

/**
 * Client of a publisher's replay ROUTER (spec/vllm-kv-events.md §1, "Replay"). One DEALER per request, closed after
 * it, so that a late reply to an abandoned request can never be mistaken for a reply to the next one.
 *
 * The request and reply frames (both layouts, the end marker) are in replay-protocol.ts.
 */

export class ReplayError extends IndexerError {
  constructor(
    readonly reason: 'timeout' | 'bad_reply',
    message: string,
  ) {
    super('unavailable', '', message);
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

/**
 * Requests replay from `fromSeq` and yields the replies in order until the end marker. Throws ReplayError on a
 * timeout or a malformed reply. Breaking out of the loop closes the socket.
 */
export async function* requestReplay(
  address: string,
  fromSeq: bigint,
  options: ReplayRequestOptions,
): AsyncGenerator<ReplayReply, void, undefined> {
  const dealer = trackSocket(
    new Dealer({ linger: 0, receiveTimeout: options.timeoutMs, sendTimeout: options.timeoutMs }),
  );
  try {
    dealer.connect(address);
    try {
      await dealer.send(replayRequestFrames(fromSeq));
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
      if (parsed.kind === 'bad')
        throw new ReplayError('bad_reply', `malformed replay reply from ${address}: ${parsed.why}`);
      yield parsed.reply;
    }
  } finally {
    dealer.close();
    untrackSocket(dealer);
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

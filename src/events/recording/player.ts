import { Publisher, Router } from 'zeromq';
import { decodeEventBatch } from '../decode/index.js';
import type { EventPipeline } from '../pipeline.js';
import { parseReplayRequest, replayEndFrames, replayReplyFrames, type ReplayLayout } from '../wire/replay-protocol.js';
import type { RecordedMessage } from './format.js';

const yieldNow = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Feeds a recording straight into a pipeline (no sockets), then waits until every endpoint's queue is applied.
 * Messages are fed in chunks that fit the per-endpoint queues.
 */
export async function playIntoPipeline(
  pipeline: EventPipeline,
  messages: readonly RecordedMessage[],
  chunk = 512,
): Promise<void> {
  for (let i = 0; i < messages.length; i++) {
    pipeline.handle(messages[i].frames, { source: 'in-process', replay: null });
    if ((i + 1) % chunk === 0) await pipeline.idle();
  }
  await pipeline.idle();
}

export interface PublishOptions {
  /** `fast`: as fast as the socket takes them; a number: original pacing divided by it (1 = original). */
  pace: 'fast' | number;
  /** Stop early (tests). */
  signal?: AbortSignal;
}

/** Publishes recorded messages on a PUB socket, in order, with the original pacing or as fast as possible. */
export async function publishRecording(
  pub: Publisher,
  messages: readonly RecordedMessage[],
  options: PublishOptions,
): Promise<number> {
  let sent = 0;
  const t0 = performance.now();
  const first = messages[0]?.time ?? 0;
  for (const m of messages) {
    if (options.signal?.aborted) break;
    if (options.pace !== 'fast') {
      const due = (m.time - first) / options.pace - (performance.now() - t0);
      if (due > 1) await new Promise((r) => setTimeout(r, due));
    }
    await pub.send(m.frames);
    if (++sent % 1024 === 0) await yieldNow();
  }
  return sent;
}

/**
 * A replay ROUTER serving a recording's buffer for one topic and data-parallel rank: replies to
 * `["", start_seq]` with the recorded batches of the last publisher run (after the last sequence reset) whose
 * seq ≥ start_seq, in the chosen layout, then the end marker.
 */
export class RecordedReplayServer {
  private readonly router = new Router({ linger: 0 });
  private readonly buffer: { seq: bigint; frames: Uint8Array[] }[] = [];
  private serving: Promise<void> | null = null;

  constructor(
    messages: readonly RecordedMessage[],
    private readonly topic: string,
    private readonly layout: ReplayLayout = 'new',
    rank = 0,
    bufferSteps = 10_000,
  ) {
    for (const m of messages) {
      if (m.frames.length !== 3 || m.frames[1].length !== 8 || Buffer.from(m.frames[0]).toString() !== topic) continue;
      if (payloadRank(m.frames[2]) !== rank) continue;
      const seq = Buffer.from(m.frames[1]).readBigUInt64BE(0);
      const last = this.buffer[this.buffer.length - 1];
      if (last && seq <= last.seq) this.buffer.length = 0;
      this.buffer.push({ seq, frames: m.frames });
    }
    if (this.buffer.length > bufferSteps) this.buffer.splice(0, this.buffer.length - bufferSteps);
  }

  async bind(address: string): Promise<string> {
    await this.router.bind(address);
    this.serving = this.serve();
    return this.router.lastEndpoint!;
  }

  async close(): Promise<void> {
    this.router.close();
    await this.serving?.catch(() => undefined);
  }

  private async serve(): Promise<void> {
    try {
      for await (const [identity, ...request] of this.router) {
        const from = parseReplayRequest(request);
        if (from === null) continue;
        for (const b of this.buffer) {
          if (b.seq < from) continue;
          const [topic, seq, payload] = b.frames;
          await this.router.send([identity, ...replayReplyFrames(this.layout, topic, seq, payload)]);
        }
        await this.router.send([identity, ...replayEndFrames(this.layout, this.topic)]);
      }
    } catch (err) {
      if (!this.router.closed) throw err;
    }
  }
}

function payloadRank(payload: Uint8Array): number | null {
  try {
    return decodeEventBatch(payload).dataParallelRank ?? 0;
  } catch {
    return null;
  }
}

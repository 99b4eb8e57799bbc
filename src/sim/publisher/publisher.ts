import { Publisher, Router } from 'zeromq';
import {
  parseReplayRequest,
  replayEndFrames,
  replayReplyFrames,
  type ReplayLayout,
} from '../../events/wire/replay-protocol.js';

export interface SimPublisherOptions {
  /** `kv@<ip>:<port>@<model>` (frame 0 of every message). */
  topic: string;
  /** PUB address; bound when it contains `*` or `::` or starts with ipc:// or inproc:// (as vLLM does), else connected. */
  endpoint: string;
  /** Replay ROUTER address to bind (none: no replay). */
  replayEndpoint?: string | null;
  /** Replay ring buffer, in batches (vLLM buffer_steps, default 10000). */
  bufferSteps?: number;
  /** Reply layout: `old` `[seq, payload]` (vLLM ≤ ~0.23, SGLang) or `new` `[topic, seq, payload]` (vLLM ≥ 0.26). */
  replayLayout?: ReplayLayout;
  /** PUB send high-water mark (vLLM hwm, default 100000). */
  hwm?: number;
  /**
   * Make the PUB a CURVE server with this secret key (Z85), as a ZMQ proxy in front of vLLM could be; vLLM itself has
   * no CURVE option. Subscribers then need the matching public key. The replay ROUTER stays plaintext.
   */
  curveSecretKey?: string | null;
}

/**
 * vLLM's ZmqEventPublisher: a PUB socket sending `[topic, seq (8 B BE), payload]` with seq from 0 per process, and a
 * ROUTER that answers `["", start_seq]` with every buffered batch whose seq ≥ start_seq, then an end marker. For
 * tests, `loseLive` makes chosen sequence numbers skip the PUB (they stay in the replay buffer), as a dropped
 * message on a slow subscriber would.
 */
export class SimPublisher {
  readonly pub: Publisher;
  private router: Router | null = null;
  private readonly buffer: { seq: bigint; payload: Uint8Array }[] = [];
  private nextSeq = 0n;
  private serving: Promise<void> | null = null;
  /** Sequence numbers to leave out of the live stream (still buffered for replay). */
  readonly loseLive = new Set<bigint>();
  /** Replay requests served. */
  replayRequests = 0;
  readonly options: Required<SimPublisherOptions>;

  constructor(options: SimPublisherOptions) {
    this.options = {
      replayEndpoint: null,
      bufferSteps: 10_000,
      replayLayout: 'new',
      hwm: 100_000,
      curveSecretKey: null,
      ...options,
    };
    const curve = this.options.curveSecretKey;
    this.pub = new Publisher({
      sendHighWaterMark: this.options.hwm,
      linger: 0,
      ...(curve ? { curveServer: true, curveSecretKey: curve } : {}),
    });
  }

  get topic(): string {
    return this.options.topic;
  }

  /** Sequence number of the next batch. */
  get seq(): bigint {
    return this.nextSeq;
  }

  async start(): Promise<void> {
    const ep = this.options.endpoint;
    if (ep.includes('*') || ep.includes('::') || ep.startsWith('ipc://') || ep.startsWith('inproc://'))
      await this.pub.bind(ep);
    else this.pub.connect(ep);
    if (this.options.replayEndpoint) {
      this.router = new Router({ linger: 0 });
      await this.router.bind(this.options.replayEndpoint);
      this.serving = this.serveReplays(this.router);
    }
  }

  /** Resolved addresses (with port 0 / `*`). */
  get pubAddress(): string | null {
    return this.pub.lastEndpoint;
  }

  get replayAddress(): string | null {
    return this.router?.lastEndpoint ?? null;
  }

  /** Publishes one batch payload with the next sequence number; returns that number. */
  async publish(payload: Uint8Array): Promise<bigint> {
    const seq = this.nextSeq++;
    this.buffer.push({ seq, payload });
    if (this.buffer.length > this.options.bufferSteps) this.buffer.shift();
    if (!this.loseLive.has(seq)) await this.pub.send([this.options.topic, seqBytes(seq), payload]);
    return seq;
  }

  /** Sends raw frames on the PUB socket (malformed-input tests); no sequence number is consumed. */
  async sendRaw(frames: (Uint8Array | string)[]): Promise<void> {
    await this.pub.send(frames);
  }

  /** A new publisher process: sequence back to 0, empty replay buffer. */
  restart(): void {
    this.nextSeq = 0n;
    this.buffer.length = 0;
  }

  async close(): Promise<void> {
    this.pub.close();
    if (this.router) {
      this.router.close();
      await this.serving?.catch(() => undefined);
    }
  }

  private async serveReplays(router: Router): Promise<void> {
    try {
      for await (const [identity, ...request] of router) {
        const start = parseReplayRequest(request);
        if (start === null) continue;
        this.replayRequests++;
        const topic = Buffer.from(this.options.topic);
        const layout = this.options.replayLayout;
        for (const b of [...this.buffer]) {
          if (b.seq < start) continue;
          await router.send([identity, ...replayReplyFrames(layout, topic, seqBytes(b.seq), b.payload)]);
        }
        await router.send([identity, ...replayEndFrames(layout, topic)]);
      }
    } catch (err) {
      if (!router.closed) throw err;
    }
  }
}

export function seqBytes(seq: bigint | number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(seq));
  return b;
}

import { Subscriber } from 'zeromq';
import { TOPIC_PREFIX } from './topic.js';

export interface SubscriberOptions {
  /** `bind`: one socket every vLLM pod connects to; `connect`: this socket connects to each pod's PUB. */
  mode: 'bind' | 'connect';
  /** Addresses to bind (bind mode) or connect to (connect mode), e.g. `tcp://*:5557` / `tcp://10.0.0.5:5557`. */
  addresses: readonly string[];
  /** Receive high-water mark (messages); beyond it ZMQ drops and the pipeline sees sequence gaps. */
  receiveHighWaterMark?: number;
}

/**
 * A ZMQ SUB socket filtered on the `kv@` topic prefix, delivering each multipart message to a handler in order.
 * The handler is awaited, so one slow batch applies back-pressure (ZMQ queues up to the high-water mark).
 */
export class ZmqSubscriber {
  private readonly socket: Subscriber;
  private running: Promise<void> | null = null;

  constructor(private readonly options: SubscriberOptions) {
    this.socket = new Subscriber({ receiveHighWaterMark: options.receiveHighWaterMark ?? 100_000 });
  }

  /** Binds or connects, subscribes, and starts delivering messages. Resolves once the socket is ready. */
  async start(handler: (frames: Buffer[]) => Promise<void>): Promise<void> {
    if (this.running) throw new Error('subscriber already started');
    for (const address of this.options.addresses) {
      if (this.options.mode === 'bind') await this.socket.bind(address);
      else this.socket.connect(address);
    }
    this.socket.subscribe(TOPIC_PREFIX);
    this.running = (async () => {
      try {
        for await (const frames of this.socket) await handler(frames);
      } catch (err) {
        if (!this.socket.closed) throw err;
      }
    })();
  }

  /** The first bound endpoint as resolved by ZMQ (useful with port 0 / `tcp://127.0.0.1:*`). */
  get lastEndpoint(): string | null {
    return this.socket.lastEndpoint;
  }

  async close(): Promise<void> {
    this.socket.close();
    await this.running?.catch(() => undefined);
  }
}

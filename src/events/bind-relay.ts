import { Publisher } from 'zeromq';
import { trackSocket, untrackSocket } from './open-sockets.js';
import { ZmqSubscriber } from './zmq-subscriber.js';

/**
 * The bind-mode socket of api.processes: the primary binds the configured addresses once (publishers connect to one
 * address, whatever the number of serving processes) and republishes every message, frames untouched, on a PUB socket
 * on a loopback port that each serving process's transport connects to (TransportOptions.relay). Nothing is decoded
 * here. A serving process that falls behind loses messages at the relay's high-water mark as it would at its own
 * socket's, and sees the same sequence gaps (replayed from the publisher where it has a replay socket).
 */
export class BindRelay {
  private readonly publisher: Publisher;
  private readonly subscriber: ZmqSubscriber;
  /** Messages republished. */
  relayed = 0;
  private address: string | null = null;

  constructor(bind: readonly string[], highWaterMark: number) {
    this.publisher = trackSocket(new Publisher({ sendHighWaterMark: highWaterMark, linger: 0 }));
    this.subscriber = new ZmqSubscriber({ mode: 'bind', addresses: bind, receiveHighWaterMark: highWaterMark });
  }

  /** Opens the loopback PUB; resolves with its address (for the serving processes). Messages flow after `listen`. */
  async open(): Promise<string> {
    await this.publisher.bind('tcp://127.0.0.1:*');
    this.address = this.publisher.lastEndpoint!;
    return this.address;
  }

  /** Binds the configured addresses and starts republishing (once the serving processes are connected). */
  async listen(): Promise<void> {
    await this.subscriber.start((frames) => {
      this.relayed++;
      return this.publisher.send(frames);
    });
  }

  async close(): Promise<void> {
    await this.subscriber.close();
    if (!this.publisher.closed) this.publisher.close();
    untrackSocket(this.publisher);
  }
}

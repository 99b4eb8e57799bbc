import { Subscriber } from 'zeromq';
import { trackSocket, untrackSocket } from './open-sockets.js';
import { TOPIC_PREFIX } from './wire/topic.js';

export interface SubscriberOptions {
  /** `bind`: one socket every vLLM pod connects to; `connect`: this socket connects to each pod's PUB. */
  mode: 'bind' | 'connect';
  /** Addresses to bind (bind mode) or connect to (connect mode), e.g. `tcp://*:5557` / `tcp://10.0.0.5:5557`. */
  addresses: readonly string[];
  /** Receive high-water mark (messages); beyond it ZMQ drops and the pipeline sees sequence gaps. */
  receiveHighWaterMark?: number;
  /** Connect mode: authenticate and encrypt as a CURVE client of publishers that are CURVE servers. */
  curve?: CurveClientKeys | null;
  /**
   * Called on each failed ZMQ handshake (CURVE: a wrong server key, a publisher that is no CURVE server or refuses this
   * client). ZMQ retries the connection by itself; no message arrives until a handshake succeeds.
   */
  onHandshakeFailure?: (error: string) => void;
}

/** A CURVE client's keys, Z85 text (40 characters): the server's public key and this client's key pair. */
export interface CurveClientKeys {
  serverPublicKey: string;
  publicKey: string;
  secretKey: string;
}

/**
 * The receive loop yields to the event loop (timers, other sockets: gRPC calls) after this many messages handled back
 * to back, or after running this long (ms), whichever comes first. A queued backlog resolves every receive at once, and
 * decoding is the costly part of handling: 256 messages of a burst (16 stores each) held the loop ~25 ms.
 */
const RECEIVE_BURST = 256;
const RECEIVE_SLICE_MS = 2;

/**
 * A ZMQ SUB socket filtered on the `kv@` topic prefix, delivering each multipart message to a handler in order.
 * A handler that returns a promise is awaited (back-pressure up to the high-water mark); the pipeline's handler is
 * synchronous (it queues per endpoint). The loop yields every RECEIVE_BURST messages so a flood cannot starve the
 * per-endpoint workers and timers.
 */
export class ZmqSubscriber {
  private readonly socket: Subscriber;
  private running: Promise<void> | null = null;

  private watching: Promise<void> | null = null;
  /** Failed handshakes so far (only counted on CURVE sockets). */
  handshakeFailures = 0;

  constructor(private readonly options: SubscriberOptions) {
    const curve = options.mode === 'connect' ? options.curve : null;
    this.socket = trackSocket(
      new Subscriber({
        receiveHighWaterMark: options.receiveHighWaterMark ?? 100_000,
        linger: 0,
        ...(curve
          ? { curveServerKey: curve.serverPublicKey, curvePublicKey: curve.publicKey, curveSecretKey: curve.secretKey }
          : {}),
      }),
    );
    if (curve) this.watching = this.watchHandshakes();
  }

  /** ZMQ reports a failed handshake only as a socket event (the SUB socket just stays silent): count and report it. */
  private async watchHandshakes(): Promise<void> {
    try {
      for await (const event of this.socket.events) {
        if (!event.type.startsWith('handshake:error')) continue;
        this.handshakeFailures++;
        const error = 'error' in event && event.error instanceof Error ? event.error.message : event.type;
        this.options.onHandshakeFailure?.(`${event.type}: ${error}`);
      }
    } catch {
      // the socket closed
    }
  }

  /** Binds or connects, subscribes, and starts delivering messages. Resolves once the socket is ready. */
  async start(handler: (frames: Buffer[]) => Promise<void> | void): Promise<void> {
    if (this.running) throw new Error('subscriber already started');
    for (const address of this.options.addresses) {
      if (this.options.mode === 'bind') {
        // The address goes with the error, so that a failed start names the one that is taken.
        await this.socket.bind(address).catch((err: unknown) => {
          throw Object.assign(err as Error, { address });
        });
      } else this.socket.connect(address);
    }
    this.socket.subscribe(TOPIC_PREFIX);
    this.running = (async () => {
      let burst = 0;
      let since = 0; // when the current burst began
      try {
        // receive() itself rather than the socket's async iterator: one promise per message instead of three.
        for (;;) {
          const frames = await this.socket.receive();
          if (burst === 0) since = performance.now();
          const pending = handler(frames);
          if (pending) await pending;
          if (++burst >= RECEIVE_BURST || performance.now() - since > RECEIVE_SLICE_MS) {
            burst = 0;
            await new Promise<void>((resolve) => setImmediate(resolve));
          }
        }
      } catch (err) {
        if (!this.socket.closed) throw err;
      }
    })();
  }

  /** The last bound endpoint as resolved by ZMQ (useful with port 0 / `tcp://127.0.0.1:*`). */
  get lastEndpoint(): string | null {
    return this.socket.lastEndpoint;
  }

  get closed(): boolean {
    return this.socket.closed;
  }

  async close(): Promise<void> {
    if (!this.socket.closed) this.socket.close();
    untrackSocket(this.socket);
    await this.running?.catch(() => undefined);
    await this.watching;
  }
}

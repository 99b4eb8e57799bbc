import { Subscriber } from 'zeromq';
import { TOPIC_PREFIX } from '../wire/topic.js';
import { RecordingWriter, type RecordingHeader } from './format.js';

export interface RecorderOptions {
  /** Addresses to bind (pods connect to us) … */
  bind?: readonly string[];
  /** … and/or PUB addresses to connect to. */
  connect?: readonly string[];
  /** Topic prefix to subscribe to (default `kv@`; '' records everything). */
  prefix?: string;
  clock?: () => number;
}

/** `record`: captures raw messages from live publishers into a recording file, as received (frames untouched). */
export class Recorder {
  private readonly socket = new Subscriber({ receiveHighWaterMark: 1_000_000, linger: 0 });
  private running: Promise<void> | null = null;
  private readonly writer: RecordingWriter;

  constructor(
    path: string,
    header: Omit<RecordingHeader, 'createdAt'>,
    private readonly options: RecorderOptions,
  ) {
    this.writer = new RecordingWriter(path, { createdAt: new Date().toISOString(), ...header });
  }

  get count(): number {
    return this.writer.count;
  }

  get lastEndpoint(): string | null {
    return this.socket.lastEndpoint;
  }

  async start(): Promise<void> {
    for (const a of this.options.bind ?? []) await this.socket.bind(a);
    for (const a of this.options.connect ?? []) this.socket.connect(a);
    this.socket.subscribe(this.options.prefix ?? TOPIC_PREFIX);
    const clock = this.options.clock ?? Date.now;
    this.running = (async () => {
      try {
        for await (const frames of this.socket) this.writer.write({ time: clock(), frames });
      } catch (err) {
        if (!this.socket.closed) throw err;
      }
    })();
  }

  /** Stops receiving and finishes the file. Returns the number of messages recorded. */
  async stop(): Promise<number> {
    this.socket.close();
    await this.running?.catch(() => undefined);
    await this.writer.close();
    return this.writer.count;
  }
}

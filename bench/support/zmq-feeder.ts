import type { ChildProcess } from 'node:child_process';
import { forkChild, requestChild } from './child.js';

export interface FeederSetup {
  /** The service's bound ZMQ address, e.g. tcp://127.0.0.1:41234. */
  address: string;
  endpoints: string[];
  /** Resident prompts (token ids); each is published on 4 of the endpoints. */
  prompts: number[][];
  /** Token ids of the background stores (256 each: 16 blocks), used in turn. */
  tokenPool: number[][];
  /** Background blocks held at steady state (a multiple of 16 × endpoints). */
  residentBlocks: number;
  blocksPerSecond: number;
  seed: number;
}

/** What the feeder published so far (background blocks), its CPU, and when (its clock, ms). */
export interface FeederCount {
  stored: number;
  removed: number;
  messages: number;
  cpuSeconds: number;
  at: number;
}

export interface FeederStopped {
  stored: number;
  removed: number;
  messages: number;
  ticks: number;
  timerLateMaxMs: number;
}

/** The ZMQ feeder child process (zmq-feeder.mjs), driven over its IPC channel like the load client. */
export class ZmqFeeder {
  private constructor(private readonly child: ChildProcess) {}

  static async start(): Promise<ZmqFeeder> {
    return new ZmqFeeder(await forkChild(new URL('./zmq-feeder.mjs', import.meta.url)));
  }

  setup(setup: FeederSetup): Promise<void> {
    return this.request({ type: 'setup', ...setup }, 'ready').then(() => undefined);
  }

  /** Starts sending probes (a topic of their own, no events) every 20 ms. */
  probe(): Promise<void> {
    return this.request({ type: 'probe' }, 'probing').then(() => undefined);
  }

  probeStop(): Promise<number> {
    return this.request({ type: 'probeStop' }, 'probed').then((m) => (m as { probes: number }).probes);
  }

  /** Publishes the resident prompts; resolves with the blocks published. */
  resident(): Promise<number> {
    return this.request({ type: 'resident' }, 'published').then((m) => (m as { blocks: number }).blocks);
  }

  /** Publishes the background ring; resolves with the background blocks stored so far. */
  fill(): Promise<number> {
    return this.request({ type: 'fill' }, 'filled').then((m) => (m as { blocks: number }).blocks);
  }

  startIngest(): Promise<void> {
    return this.request({ type: 'start' }, 'started').then(() => undefined);
  }

  count(): Promise<FeederCount> {
    return this.request({ type: 'count' }, 'counted') as Promise<FeederCount>;
  }

  /**
   * Publishes `blocks` background blocks (stores with their evictions) as fast as it can; resolves with the
   * background blocks stored so far and how long publishing took (stop the paced ingest first).
   */
  burst(blocks: number): Promise<{ stored: number; seconds: number }> {
    return this.request({ type: 'burst', blocks }, 'bursted') as Promise<{ stored: number; seconds: number }>;
  }

  stopIngest(): Promise<FeederStopped> {
    return this.request({ type: 'stop' }, 'stopped') as Promise<FeederStopped>;
  }

  /** Asks the feeder to close its socket and go; kills it if it is still there a second later. */
  async exit(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    if (this.child.connected) this.child.send({ type: 'exit' });
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 1_000);
    await exited;
    clearTimeout(timer);
  }

  private request(message: object, expected: string): Promise<unknown> {
    return requestChild<{ result?: unknown }>(this.child, 'zmq feeder', message, expected);
  }
}

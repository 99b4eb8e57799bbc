import { BoundedQueue } from '../bounded-queue.js';
import type { QueuedBatch } from './types.js';

/** Back-pressure marks (batches queued on one stream): see Backlog.pressure(). */
const BACKLOG_HIGH = 256;
const BACKLOG_LOW = 64;

/**
 * One stream's decoded batches waiting for its worker: a bounded queue (a full queue drops the batch and remembers
 * the highest dropped seq, so that the worker resyncs through it once the queue is empty), and the socket loops
 * paused on back-pressure until the backlog drains.
 */
export class Backlog {
  private readonly queue: BoundedQueue<QueuedBatch>;
  /** Socket loops waiting for the backlog to drain (see pressure()). */
  private waiting: (() => void)[] = [];
  /** Highest seq dropped on overflow and not yet recovered. */
  private resyncTo: bigint | null = null;

  constructor(capacity: number) {
    this.queue = new BoundedQueue(capacity);
  }

  get length(): number {
    return this.queue.length;
  }

  /** Queues a batch; false when the queue is full (the batch is dropped and a resync through its seq is due). */
  push(item: QueuedBatch): boolean {
    if (this.queue.push(item)) return true;
    if (this.resyncTo === null || item.seq > this.resyncTo) this.resyncTo = item.seq;
    return false;
  }

  shift(): QueuedBatch | undefined {
    return this.queue.shift();
  }

  clear(): void {
    this.queue.clear();
  }

  /** Whether batches were dropped on overflow and not yet resynced. */
  get resyncDue(): boolean {
    return this.resyncTo !== null;
  }

  /** The highest seq dropped on overflow (null: none); the resync it asks for is then the caller's. */
  takeResync(): bigint | null {
    const to = this.resyncTo;
    this.resyncTo = null;
    return to;
  }

  /**
   * Back-pressure for the socket that feeds the stream: when the backlog is CPU-bound (the worker is applying, not
   * waiting on a replay) and above BACKLOG_HIGH, a promise that resolves once it is down to BACKLOG_LOW. The socket
   * loop awaits it, so further messages wait in ZMQ's own buffer as raw frames instead of as decoded batches that
   * outlive young-generation GC. During a replay live batches still queue (up to the capacity), so one endpoint
   * waiting on its publisher never stalls a shared socket.
   */
  pressure(replaying: boolean, closed: boolean): Promise<void> | undefined {
    if (this.queue.length <= BACKLOG_HIGH || replaying || closed) return undefined;
    return new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  /** Whether socket loops wait on pressure() (checked per batch, so kept cheap). */
  get pressed(): boolean {
    return this.waiting.length > 0;
  }

  /** Resumes the waiting socket loops once the backlog is low, a replay runs or the stream is closed. */
  release(replaying: boolean, closed: boolean): void {
    if (this.waiting.length === 0 || (this.queue.length > BACKLOG_LOW && !replaying && !closed)) return;
    const waiting = this.waiting;
    this.waiting = [];
    for (const resolve of waiting) resolve();
  }
}

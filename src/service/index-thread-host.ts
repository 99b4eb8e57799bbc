import { status } from '@grpc/grpc-js';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { CallStatus, forwardOperations, type Cancellation, type Operations } from '../api/index.js';
import type { Config, Logger } from '../ops/index.js';
import { rebuildStartFailure } from './startup-error.js';
import { RecordRing } from './record-ring.js';
import {
  asBuffer,
  ownCopy,
  readReply,
  RING_BYTES,
  writeCall,
  type FromIndexThread,
  type ReplyRecord,
  type ThreadRings,
  type ToIndexThread,
} from './thread-protocol.js';

/** What the host tells the front end: whether calls can be served, and the index backend's availability. */
export interface IndexThreadEvents {
  serving(up: boolean): void;
  index(up: boolean): void;
  /** False once replacements keep failing to start (LIVENESS_AFTER_FAILED_STARTS): the process should be restarted. */
  alive(up: boolean): void;
}

/** Backoff between attempts to start a replacement thread (doubling, capped). */
const RESTART_FIRST_MS = 100;
const RESTART_MAX_MS = 5_000;
/**
 * Replacement threads that failed to start in a row before liveness is given up: something outside the thread (a
 * port taken, a model file gone) keeps it from starting, and a restart of the process by the orchestrator is the
 * better remedy. Retries go on meanwhile; liveness returns when one succeeds.
 */
const LIVENESS_AFTER_FAILED_STARTS = 5;
/** How often calls that were cancelled or ran out of time here are told to the thread. */
const CANCEL_SWEEP_MS = 50;
/** How long `stop` waits for the thread to close its sockets before terminating it. */
const STOP_GRACE_MS = 10_000;

interface Pending {
  resolve(bytes: Buffer): void;
  reject(err: CallStatus): void;
  cancellation: Cancellation;
  cancelSent: boolean;
}

function ignore(): void {}

/**
 * Unlinks a settled call's record from its promise and its call. A Map that rehashes leaves its old table holding the
 * entries it had then; an old table already promoted stays until the next mark-compact and, through those entries,
 * kept every call in flight at each rehash — and all they reference — alive across scavenges: about 1 KB per call
 * promoted to old space at 5,000 calls/s (docs/read-path-spike.md §10).
 */
function forget(p: Pending): void {
  p.resolve = ignore;
  p.reject = ignore;
  p.cancellation = SETTLED;
}
const SETTLED: Cancellation = { aborted: true };

/**
 * The main thread's side of api.indexThread: starts the index thread (index-thread.ts), forwards every call to it as
 * bytes and resolves each with the response bytes or rejects it with the status it failed with (CallStatus). A
 * thread that exits unasked (an uncaught error in it, which closes its ZMQ sockets first) fails its calls in flight
 * UNAVAILABLE, takes readiness away and is replaced with backoff; the new thread starts with an empty index, which the publishers'
 * events (and replay, where they offer it) fill again.
 */
export class IndexThreadHost {
  private worker: Worker | null = null;
  /** The serving thread's rings (new ones for each thread). */
  private requests: RecordRing | null = null;
  private replies: RecordRing | null = null;
  private readonly pending = new Map<number, Pending>();
  private readonly metricsWaiting = new Map<number, (text: string) => void>();
  private nextId = 1;
  private stopping = false;
  private restartDelayMs = RESTART_FIRST_MS;
  private restartTimer: NodeJS.Timeout | undefined;
  private readonly sweep: NodeJS.Timeout;
  /** Attempts to start a thread replacing one that exited unasked (failed starts included). */
  restarts = 0;
  /** Replacement starts that failed since the last thread that served. */
  private failedStarts = 0;

  private constructor(
    private readonly config: Config,
    private readonly log: Logger,
    private readonly events: IndexThreadEvents,
  ) {
    this.sweep = setInterval(() => this.sendCancels(), CANCEL_SWEEP_MS);
    this.sweep.unref();
  }

  /** Starts the thread; rejects with its start-up failure (a StartupError naming the setting) and leaves nothing. */
  static async start(config: Config, log: Logger, events: IndexThreadEvents): Promise<IndexThreadHost> {
    const host = new IndexThreadHost(config, log, events);
    try {
      await host.spawn();
    } catch (err) {
      clearInterval(host.sweep);
      host.stopping = true;
      throw err;
    }
    return host;
  }

  /** Every unary RPC, served by the thread (bytes in, bytes out: GrpcServer's `wire: 'bytes'`). */
  operations(): Operations {
    return forwardOperations((path, bytes, cancellation, caller) => this.call(path, bytes, cancellation, caller));
  }

  /**
   * The thread, while one runs. Ending it from outside (`terminate()`) with its ZMQ sockets open aborts the process
   * (zeromq.js #411): recovery is for errors inside the thread, which close the sockets first.
   */
  get thread(): Worker | null {
    return this.worker;
  }

  /** Calls handed over and not answered yet. */
  get inFlight(): number {
    return this.pending.size;
  }

  call(path: string, bytes: Buffer, cancellation: Cancellation, caller: string): Promise<Buffer> {
    const worker = this.worker;
    const ring = this.requests;
    if (!worker || !ring) {
      return Promise.reject(new CallStatus(status.UNAVAILABLE, 'the index thread is restarting: retry shortly'));
    }
    return new Promise<Buffer>((resolve, reject) => {
      const id = this.nextId;
      this.nextId = (this.nextId + 1) >>> 0 || 1; // a u32 in the call record
      this.pending.set(id, { resolve, reject, cancellation, cancelSent: false });
      const deadlineMs = cancellation.deadlineMs ?? Infinity;
      if (!writeCall(ring, id, path, deadlineMs, caller, bytes)) {
        const own = ownCopy(bytes);
        this.post(worker, { t: 'call', id, path, deadlineMs, caller, bytes: own }, [own.buffer as ArrayBuffer]);
      }
    });
  }

  /** A reply, from its record or its message: the call it answers settles (unless it was failed meanwhile). */
  private settle(reply: ReplyRecord): void {
    const p = this.pending.get(reply.id);
    if (!p) return;
    this.pending.delete(reply.id);
    const { resolve, reject } = p;
    forget(p);
    if ('code' in reply) reject(new CallStatus(reply.code, reply.details));
    else resolve(reply.body);
  }

  /** Makes the thread throw an uncaught error, as a bug would (tests of recovery). */
  crash(): void {
    if (this.worker) this.post(this.worker, { t: 'crash' });
  }

  /** The thread's /metrics text; empty while no thread runs. */
  metricsText(): Promise<string> {
    const worker = this.worker;
    if (!worker) return Promise.resolve('');
    return new Promise((resolve) => {
      const id = this.nextId++;
      this.metricsWaiting.set(id, resolve);
      this.post(worker, { t: 'metrics', id });
    });
  }

  /** Asks the thread to close its sockets and index (after the front end has drained), then waits for it to exit. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.sweep);
    clearTimeout(this.restartTimer);
    const worker = this.worker;
    if (!worker) return;
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    this.post(worker, { t: 'stop' });
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), STOP_GRACE_MS)));
    if ((await Promise.race([exited, late])) === 'late') {
      // Its last-resort handler closes the sockets and ends it; terminate() with sockets open would abort the process.
      this.log.warn({ graceMs: STOP_GRACE_MS }, 'index thread did not stop in time: ending it');
      this.post(worker, { t: 'crash' });
      clearTimeout(timer);
      const last = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), 1_000)));
      if ((await Promise.race([exited, last])) === 'late') await worker.terminate();
    }
    clearTimeout(timer);
  }

  private post(worker: Worker, message: ToIndexThread, transfer?: ArrayBuffer[]): void {
    worker.postMessage(message, transfer);
  }

  /** Starts a thread and resolves once it serves; rejects with its start-up failure. */
  private spawn(): Promise<void> {
    const requests = RecordRing.create(RING_BYTES);
    const replies = RecordRing.create(RING_BYTES);
    const worker = startWorker(this.config, { requests: requests.shared, replies: replies.shared });
    return new Promise<void>((resolve, reject) => {
      let ready = false;
      worker.on('message', (m: FromIndexThread) => {
        switch (m.t) {
          case 'ready':
            ready = true;
            this.worker = worker;
            this.requests = requests;
            this.replies = replies;
            replies.consume((at, length) => this.settle(readReply(replies, at, length)));
            this.restartDelayMs = RESTART_FIRST_MS;
            if (this.failedStarts >= LIVENESS_AFTER_FAILED_STARTS) this.events.alive(true);
            this.failedStarts = 0;
            this.events.serving(true);
            resolve();
            break;
          case 'failed':
            reject(rebuildStartFailure(m.failure));
            break;
          case 'reply': // one that did not fit in the ring
            this.settle('code' in m ? m : { id: m.id, body: asBuffer(m.bytes) });
            break;
          case 'metrics':
            this.metricsWaiting.get(m.id)?.(m.text);
            this.metricsWaiting.delete(m.id);
            break;
          case 'index':
            this.events.index(m.up);
            break;
        }
      });
      worker.on('error', (err) => {
        this.log.error({ err: String(err), stack: err.stack }, 'index thread failed');
        if (!ready) reject(err);
      });
      worker.once('exit', (code) => {
        if (!ready) {
          reject(new Error(`the index thread exited (code ${code}) before it was ready`));
          return;
        }
        this.exited(worker, code);
      });
    });
  }

  /** A thread is gone: its calls fail UNAVAILABLE; unless stopping, readiness goes and a replacement is started. */
  private exited(worker: Worker, code: number): void {
    if (this.worker === worker) {
      this.worker = null;
      this.requests = null;
      // Closing the ring settles the replies the thread published before it ended (a last drain), then stops consume.
      this.replies?.close();
      this.replies = null;
    }
    const calls = [...this.pending.values()];
    this.pending.clear();
    for (const p of calls) p.reject(new CallStatus(status.UNAVAILABLE, 'the index thread stopped during the call'));
    for (const resolve of this.metricsWaiting.values()) resolve('');
    this.metricsWaiting.clear();
    if (this.stopping) return;
    this.events.serving(false);
    this.log.error(
      { code, callsFailed: calls.length, restartInMs: this.restartDelayMs },
      'index thread exited: calls in flight failed UNAVAILABLE, not ready until a new thread serves (its index starts empty)',
    );
    this.scheduleRestart();
  }

  private scheduleRestart(): void {
    const delay = this.restartDelayMs;
    this.restartDelayMs = Math.min(RESTART_MAX_MS, delay * 2);
    this.restartTimer = setTimeout(() => {
      if (this.stopping) return;
      this.restarts++;
      this.spawn().then(
        () => this.log.info({ restarts: this.restarts }, 'index thread replaced: serving again'),
        (err: unknown) => {
          this.failedStarts++;
          this.log.error(
            { err: String(err), failedStarts: this.failedStarts, retryInMs: this.restartDelayMs },
            'index thread failed to start',
          );
          if (this.failedStarts === LIVENESS_AFTER_FAILED_STARTS) {
            this.log.error(
              { failedStarts: this.failedStarts },
              'index thread cannot be replaced: liveness NOT_SERVING, so that the orchestrator restarts the process',
            );
            this.events.alive(false);
          }
          if (!this.stopping) this.scheduleRestart();
        },
      );
    }, delay);
  }

  /** Calls whose client went away or whose deadline passed: the thread stops work it would throw away. */
  private sendCancels(): void {
    const worker = this.worker;
    if (!worker || this.pending.size === 0) return;
    for (const [id, p] of this.pending) {
      if (!p.cancelSent && p.cancellation.aborted) {
        p.cancelSent = true;
        this.post(worker, { t: 'cancel', id });
      }
    }
  }
}

/**
 * The thread runs index-thread.js beside this file when built; from the TypeScript sources (tsx, vitest) its .ts
 * through tsx's loader, which worker threads do not inherit.
 */
function startWorker(config: Config, rings: ThreadRings): Worker {
  const here = import.meta.url;
  const workerData = { config, rings };
  if (here.endsWith('.js')) return new Worker(new URL('./index-thread.js', here), { workerData });
  // tsx's ESM entry (its `import` export): the require entry cannot register hooks from an ESM worker.
  const tsxPackage = createRequire(here).resolve('tsx/package.json');
  const tsx = pathToFileURL(join(dirname(tsxPackage), 'dist/esm/api/index.mjs')).href;
  const entry = new URL('./index-thread.ts', here).href;
  const boot = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(boot, { eval: true, workerData });
}

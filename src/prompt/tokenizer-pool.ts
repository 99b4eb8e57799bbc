import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { PromptError } from './errors.js';
import { TOKENIZER_WORKER_SOURCE } from './tokenizer-worker-source.js';

/** An added token as declared in tokenizer.json. */
export interface AddedTokenInfo {
  id: number;
  content: string;
  special: boolean;
  lstrip: boolean;
  rstrip: boolean;
  singleWord: boolean;
  normalized: boolean;
}

export interface TokenizerDescription {
  added: AddedTokenInfo[];
  /** token_to_id of each looked-up string (null when absent). */
  ids: (number | null)[];
  /** What `add_special_tokens` prepends to an empty text (e.g. [<bos>]). */
  prefixIds: number[];
  /** True when `add_special_tokens` only ever prepends `prefixIds` (so it can be applied outside the tokenizer). */
  prefixOnly: boolean;
  /** Tokenizer steps replaced by the faster equivalents of tokenizer-patch.ts (0: the library's own code runs). */
  patchedSteps: number;
}

/** Whether the caller gave up (gRPC cancel or deadline); polled, like the API's Cancellation. */
export interface TokenizeSignal {
  readonly aborted: boolean;
}

interface Task {
  message: Record<string, unknown>;
  /** Characters to encode (0 for other operations). */
  chars: number;
  signal?: TokenizeSignal;
  resolve(value: unknown): void;
  reject(err: Error): void;
}

interface Slot {
  worker: Worker;
  task: Task | null;
  /** When the worker started encoding the current task (after loading its tokenizer); 0 = not yet. */
  startedAt: number;
}

export interface TokenizerPoolOptions {
  /** Worker threads (default: the machine's cores, `os.availableParallelism()`). */
  size?: number;
  /** Requests waiting for a worker beyond which new ones fail fast with resource_exhausted (default 1024). */
  maxQueue?: number;
  /**
   * Longest one encode call (one request's text, or its share when spread over workers) may keep a worker busy; then
   * the worker is replaced and the request fails with resource_exhausted (default 10 s). Bounds a single huge "word".
   */
  budgetMs?: number;
}

/** How often queued and running tasks are checked for cancellation and budget while any exist. */
const WATCH_MS = 20;
/**
 * A cancelled task this small is left to finish: its remaining work (at most tens of milliseconds) costs less than
 * replacing the worker, whose successor must load the tokenizer again (0.5 s for Qwen, 1.4 s for Gemma 3).
 */
const STOP_MIN_CHARS = 32 * 1024;
export const DEFAULT_TOKENIZE_BUDGET_MS = 10_000;

/** What happened to encode tasks, for metrics and tests. */
export interface TokenizerPoolCounters {
  /** Characters of text whose encoding a worker finished. */
  completedChars: number;
  /** Tasks dropped from the queue because their call was cancelled before a worker took them. */
  cancelledQueued: number;
  /** Tasks whose call was cancelled while a worker ran them: the worker was replaced. */
  cancelledRunning: number;
  /** Tasks stopped at the budget: the worker was replaced and the request answered resource_exhausted. */
  overBudget: number;
}

/**
 * Tokenization off the main thread: a fixed set of worker threads, each holding the tokenizers it has loaded (lazily,
 * by model directory). One task per worker at a time; the rest wait in a FIFO queue. A worker that dies fails only
 * its own task, with a clear error, and is replaced.
 */
export class TokenizerPool {
  private readonly slots: Slot[] = [];
  private readonly queue: Task[] = [];
  private readonly tokenizersPath: string;
  private readonly maxQueue: number;
  private nextId = 1;
  private closed = false;
  /** Workers replaced after a crash (for metrics and tests). */
  respawns = 0;
  /** Characters of text sent to the workers to encode (for metrics and tests). */
  encodedChars = 0;
  readonly counters: TokenizerPoolCounters = {
    completedChars: 0,
    cancelledQueued: 0,
    cancelledRunning: 0,
    overBudget: 0,
  };
  private readonly budgetMs: number;
  private watch: NodeJS.Timeout | undefined;

  constructor(options: TokenizerPoolOptions = {}) {
    this.tokenizersPath = createRequire(import.meta.url).resolve('@huggingface/tokenizers');
    const size = options.size ?? availableParallelism();
    this.maxQueue = options.maxQueue ?? 1024;
    this.budgetMs = options.budgetMs ?? DEFAULT_TOKENIZE_BUDGET_MS;
    for (let i = 0; i < size; i++) this.slots.push(this.spawn());
  }

  get size(): number {
    return this.slots.length;
  }

  describe(dir: string, lookup: readonly string[]): Promise<TokenizerDescription> {
    return this.run({ op: 'describe', dir, lookup }) as Promise<TokenizerDescription>;
  }

  /**
   * Token ids of each text. With `signal`, a call cancelled while queued is dropped from the queue, and one cancelled
   * while a worker runs it stops that worker (replaced at once): abandoned requests do not keep the tokenizer busy.
   */
  encode(
    dir: string,
    texts: readonly string[],
    addSpecialTokens: boolean,
    signal?: TokenizeSignal,
  ): Promise<Uint32Array[]> {
    let chars = 0;
    for (const t of texts) chars += t.length;
    this.encodedChars += chars;
    return this.run({ op: 'encode', dir, texts, addSpecialTokens }, chars, signal).then(
      (r) => (r as { ids: Uint32Array[] }).ids,
    );
  }

  /** Test hook: makes the next free worker exit abruptly while `encode`s may be queued behind it. */
  crashOne(): Promise<unknown> {
    return this.run({ op: 'crash' });
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.watch);
    for (const t of this.queue.splice(0)) t.reject(new PromptError('internal', 'tokenizer pool closed'));
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  private run(message: Record<string, unknown>, chars = 0, signal?: TokenizeSignal): Promise<unknown> {
    if (this.closed) return Promise.reject(new PromptError('internal', 'tokenizer pool closed'));
    if (signal?.aborted) {
      this.counters.cancelledQueued++;
      return Promise.reject(cancelled());
    }
    if (this.queue.length >= this.maxQueue) {
      return Promise.reject(
        new PromptError('resource_exhausted', `tokenizer queue is full (${this.maxQueue} waiting requests)`),
      );
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ message, chars, signal, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    for (const slot of this.slots) {
      if (slot.task) continue;
      const task = this.nextLive();
      if (!task) break;
      slot.task = task;
      slot.startedAt = 0;
      slot.worker.postMessage({ ...task.message, id: this.nextId++ });
    }
    this.watchWhileBusy();
  }

  /** The first queued task whose caller is still waiting; cancelled ones are dropped on the way. */
  private nextLive(): Task | undefined {
    for (let task = this.queue.shift(); task; task = this.queue.shift()) {
      if (!task.signal?.aborted) return task;
      this.counters.cancelledQueued++;
      task.reject(cancelled());
    }
    return undefined;
  }

  /** Checks queued and running tasks every WATCH_MS while there are any (cancellation is a polled flag). */
  private watchWhileBusy(): void {
    const busy = this.queue.length > 0 || this.slots.some((s) => s.task);
    if (busy && !this.watch && !this.closed) {
      this.watch = setInterval(() => this.check(), WATCH_MS);
      this.watch.unref();
    } else if (!busy && this.watch) {
      clearInterval(this.watch);
      this.watch = undefined;
    }
  }

  private check(): void {
    const live = this.queue.filter((t) => !t.signal?.aborted);
    if (live.length !== this.queue.length) {
      for (const t of this.queue) {
        if (!t.signal?.aborted) continue;
        this.counters.cancelledQueued++;
        t.reject(cancelled());
      }
      this.queue.splice(0, this.queue.length, ...live);
    }
    const now = Date.now();
    for (const slot of [...this.slots]) {
      const task = slot.task;
      if (!task) continue;
      if (task.signal?.aborted && task.chars >= STOP_MIN_CHARS) {
        this.counters.cancelledRunning++;
        this.replace(slot, cancelled());
      } else if (task.chars > 0 && slot.startedAt > 0 && now - slot.startedAt > this.budgetMs) {
        this.counters.overBudget++;
        this.replace(
          slot,
          new PromptError(
            'resource_exhausted',
            `tokenizing ${task.chars} characters took longer than the budget of ${this.budgetMs} ms (one very long word?)`,
          ),
        );
      }
    }
    this.pump();
  }

  /** Stops a worker in the middle of a task (the only way to interrupt a synchronous encode) and starts another. */
  private replace(slot: Slot, err: Error): void {
    const index = this.slots.indexOf(slot);
    if (index < 0) return;
    const task = slot.task;
    slot.task = null;
    this.slots[index] = this.spawn(); // before terminate: the old worker's exit handler then sees it already replaced
    void slot.worker.terminate();
    task?.reject(err);
  }

  private spawn(): Slot {
    const worker = new Worker(TOKENIZER_WORKER_SOURCE, {
      eval: true,
      workerData: { tokenizersPath: this.tokenizersPath },
    });
    const slot: Slot = { worker, task: null, startedAt: 0 };
    worker.on('message', (msg: { ok: boolean; started?: boolean; message?: string }) => {
      if (msg.started) {
        slot.startedAt = Date.now();
        return;
      }
      const task = slot.task;
      slot.task = null;
      if (task) {
        if (msg.ok) {
          this.counters.completedChars += task.chars;
          task.resolve(msg);
        } else task.reject(new PromptError('internal', `tokenizer failed: ${msg.message}`));
      }
      this.pump();
    });
    const onDeath = (why: string) => {
      const index = this.slots.indexOf(slot);
      if (index < 0) return; // already replaced
      const task = slot.task;
      slot.task = null;
      if (this.closed) {
        task?.reject(new PromptError('internal', 'tokenizer pool closed'));
        return;
      }
      this.slots[index] = this.spawn();
      this.respawns++;
      task?.reject(
        new PromptError('internal', `tokenizer worker died (${why}); the request was not tokenized, retry it`),
      );
      this.pump();
    };
    worker.on('error', (err) => onDeath(err.message));
    worker.on('exit', (code) => onDeath(`exit code ${code}`));
    return slot;
  }
}

function cancelled(): PromptError {
  return new PromptError(
    'deadline_exceeded',
    'the call was cancelled or its deadline passed; its tokenization was dropped',
  );
}

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

interface Task {
  message: Record<string, unknown>;
  resolve(value: unknown): void;
  reject(err: Error): void;
}

interface Slot {
  worker: Worker;
  task: Task | null;
}

export interface TokenizerPoolOptions {
  /** Worker threads (default: cores − 1, at least 1, at most 4). */
  size?: number;
  /** Requests waiting for a worker beyond which new ones fail fast with resource_exhausted (default 1024). */
  maxQueue?: number;
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

  constructor(options: TokenizerPoolOptions = {}) {
    this.tokenizersPath = createRequire(import.meta.url).resolve('@huggingface/tokenizers');
    const size = options.size ?? Math.min(4, Math.max(1, availableParallelism() - 1));
    this.maxQueue = options.maxQueue ?? 1024;
    for (let i = 0; i < size; i++) this.slots.push(this.spawn());
  }

  get size(): number {
    return this.slots.length;
  }

  describe(dir: string, lookup: readonly string[]): Promise<TokenizerDescription> {
    return this.run({ op: 'describe', dir, lookup }) as Promise<TokenizerDescription>;
  }

  encode(dir: string, texts: readonly string[], addSpecialTokens: boolean): Promise<Uint32Array[]> {
    for (const t of texts) this.encodedChars += t.length;
    return this.run({ op: 'encode', dir, texts, addSpecialTokens }).then((r) => (r as { ids: Uint32Array[] }).ids);
  }

  /** Test hook: makes the next free worker exit abruptly while `encode`s may be queued behind it. */
  crashOne(): Promise<unknown> {
    return this.run({ op: 'crash' });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.queue.splice(0)) t.reject(new PromptError('internal', 'tokenizer pool closed'));
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  private run(message: Record<string, unknown>): Promise<unknown> {
    if (this.closed) return Promise.reject(new PromptError('internal', 'tokenizer pool closed'));
    if (this.queue.length >= this.maxQueue) {
      return Promise.reject(new PromptError('resource_exhausted', `tokenizer queue is full (${this.maxQueue} waiting requests)`));
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ message, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    for (const slot of this.slots) {
      if (this.queue.length === 0) return;
      if (slot.task) continue;
      const task = this.queue.shift()!;
      slot.task = task;
      slot.worker.postMessage({ ...task.message, id: this.nextId++ });
    }
  }

  private spawn(): Slot {
    const worker = new Worker(TOKENIZER_WORKER_SOURCE, { eval: true, workerData: { tokenizersPath: this.tokenizersPath } });
    const slot: Slot = { worker, task: null };
    worker.on('message', (msg: { ok: boolean; message?: string }) => {
      const task = slot.task;
      slot.task = null;
      if (task) {
        if (msg.ok) task.resolve(msg);
        else task.reject(new PromptError('internal', `tokenizer failed: ${msg.message}`));
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
      task?.reject(new PromptError('internal', `tokenizer worker died (${why}); the request was not tokenized, retry it`));
      this.pump();
    };
    worker.on('error', (err) => onDeath(err.message));
    worker.on('exit', (code) => onDeath(`exit code ${code}`));
    return slot;
  }
}

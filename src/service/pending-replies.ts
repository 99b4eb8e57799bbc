/**
 * Requests over the cluster's IPC channel answered by id (service/serving-processes.ts and serving-worker.ts): each
 * waits for its answer, or gives up after a time with a stand-in answer. A late answer, after its request gave up, is
 * dropped.
 */
export class PendingReplies<T> {
  private nextId = 1;
  private readonly waiting = new Map<number, (answer: T) => void>();

  /** Sends request `id` through `send`; resolves with its answer, or with `onTimeout()` after `waitMs`. */
  ask(send: (id: number) => void, waitMs: number, onTimeout: () => T): Promise<T> {
    return new Promise((resolve) => {
      const id = this.nextId++;
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        resolve(onTimeout());
      }, waitMs);
      this.waiting.set(id, (answer) => {
        clearTimeout(timer);
        resolve(answer);
      });
      send(id);
    });
  }

  /** The answer to request `id`. */
  settle(id: number, answer: T): void {
    const done = this.waiting.get(id);
    this.waiting.delete(id);
    done?.(answer);
  }
}

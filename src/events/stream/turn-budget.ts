/**
 * The ingest time that the stream workers of one pipeline share per turn of the event loop
 * (`StreamOptions.sliceMs`). Each worker used to yield after a slice of its own, so with N endpoints draining a
 * backlog one turn could run N slices before the loop polled its sockets again: 16 endpoints bursting held Score calls
 * for up to ~0.9 s at p99 (bench grpc-threads, `singleBurstReadsP99`). Now the workers draw on one slice: whichever
 * finds it used up schedules a single yield that every worker awaits, and the slice starts again when the loop comes
 * back after its I/O poll. A slice also starts when a worker begins while no other is running.
 */
export class TurnBudget {
  private sliceStart = performance.now();
  private running = 0;
  private next: Promise<void> | null = null;

  constructor(private readonly sliceMs: number) {}

  /** A worker starts draining. */
  enter(): void {
    if (this.running++ === 0 && this.next === null) this.sliceStart = performance.now();
  }

  /** A worker has nothing left to drain. */
  leave(): void {
    this.running--;
  }

  /** Whether the workers have used this turn's slice up. */
  spent(): boolean {
    return performance.now() - this.sliceStart > this.sliceMs;
  }

  /** Resolves in the next turn of the event loop, after its I/O poll; one yield shared by every worker that asks. */
  yield(): Promise<void> {
    this.next ??= new Promise<void>((resolve) =>
      setImmediate(() => {
        this.next = null;
        this.sliceStart = performance.now();
        resolve();
      }),
    );
    return this.next;
  }
}

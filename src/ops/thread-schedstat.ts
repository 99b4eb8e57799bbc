import { readFileSync } from 'node:fs';

/**
 * The calling thread's CPU time and run-queue wait (Linux `/proc/thread-self/schedstat`, in nanoseconds: time on a
 * CPU, time runnable but waiting for one), in seconds; null where the file is absent (not Linux, no schedstats).
 * Read by the index thread for /metrics and by the benchmarks for the thread that ingests.
 */
export function threadSchedstat(): { cpuSeconds: number; waitSeconds: number } | null {
  let text: string;
  try {
    text = readFileSync('/proc/thread-self/schedstat', 'latin1');
  } catch {
    return null;
  }
  const [cpu, wait] = text.split(' ').map(Number);
  return Number.isFinite(cpu) && Number.isFinite(wait) ? { cpuSeconds: cpu / 1e9, waitSeconds: wait / 1e9 } : null;
}

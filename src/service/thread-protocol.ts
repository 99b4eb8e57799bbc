/**
 * The messages between the main thread (index-thread-host.ts) and the index thread (index-thread.ts). Request and
 * response bodies are protobuf bytes in exact-size buffers, transferred, never copied twice.
 */

/** main → index thread */
export type ToIndexThread =
  | { t: 'call'; id: number; path: string; bytes: Uint8Array; deadlineMs: number; caller: string }
  | { t: 'cancel'; id: number }
  | { t: 'metrics'; id: number }
  | { t: 'stop' }
  /** The thread throws an uncaught error, as a bug would (tests of recovery, like the tokenizer worker's `crash`). */
  | { t: 'crash' };

/** How a failed start travels back: enough to rebuild the StartupError or ConfigError that names the setting. */
export type StartFailure =
  | { kind: 'startup'; setting: string; value: string; reason: string }
  | { kind: 'config'; message: string }
  | { kind: 'other'; message: string };

/** index thread → main */
export type FromIndexThread =
  | { t: 'ready' }
  | { t: 'failed'; failure: StartFailure }
  | { t: 'reply'; id: number; bytes: Uint8Array }
  | { t: 'reply'; id: number; code: number; details: string }
  | { t: 'metrics'; id: number; text: string }
  /** The index backend's availability changed (Redis); the memory index never sends it. */
  | { t: 'index'; up: boolean };

/** A copy of `bytes` in a buffer of its own, so it can be transferred (a Buffer may be a slice of a shared pool). */
export function ownBytes(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(bytes.byteLength);
  out.set(bytes);
  return out;
}

import type { ByteRing } from './byte-ring.js';

/**
 * The messages between the main thread (index-thread-host.ts) and the index thread (index-thread.ts). Request and
 * response bodies are protobuf bytes, written in a ByteRing (byte-ring.ts) and named by their region (`end`,
 * `length`); a body the ring has no room for travels in the message instead (`bytes`, an exact-size buffer, transferred).
 */

/** Where a body is: in the sender's ring, or in the message. */
export type Body = { end: number; length: number } | { bytes: Uint8Array };

/** main → index thread */
export type ToIndexThread =
  | ({ t: 'call'; id: number; path: string; deadlineMs: number; caller: string } & Body)
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
  | ({ t: 'reply'; id: number } & Body)
  | { t: 'reply'; id: number; code: number; details: string }
  | { t: 'metrics'; id: number; text: string }
  /** The index backend's availability changed (Redis); the memory index never sends it. */
  | { t: 'index'; up: boolean };

/** The rings of one thread: requests (main → thread) and replies (thread → main). */
export interface ThreadRings {
  requests: { buffer: SharedArrayBuffer; control: SharedArrayBuffer };
  replies: { buffer: SharedArrayBuffer; control: SharedArrayBuffer };
}

/** Capacity of each ring: 4 MiB holds ~1,000 calls of 1k-token Score in flight; a larger backlog goes by message. */
export const RING_BYTES = 4 << 20;

/** `body` as a message part: its region in `ring`, or (no room) a transferred copy, with the list to transfer. */
export function sendBody(ring: ByteRing, body: Uint8Array): [Body, ArrayBuffer[]] {
  const end = ring.write(body);
  if (end >= 0) return [{ end, length: body.byteLength }, []];
  const own = new Uint8Array(body.byteLength);
  own.set(body);
  return [{ bytes: own }, [own.buffer as ArrayBuffer]];
}

/** The body a message names, as a Buffer of its own (its ring region released). */
export function receiveBody(ring: ByteRing, body: Body): Buffer {
  if ('bytes' in body) return Buffer.from(body.bytes.buffer, body.bytes.byteOffset, body.bytes.byteLength);
  return ring.read(body.end, body.length);
}

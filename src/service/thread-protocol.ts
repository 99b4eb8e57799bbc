import { OPERATION_PATHS } from '../api/index.js';
import type { RecordRing, SharedRing } from './record-ring.js';
import type { StartFailure } from './startup-error.js';

/**
 * What passes between the main thread (index-thread-host.ts) and the index thread (index-thread.ts). Calls and their
 * replies are records in two RecordRings (record-ring.ts): no message per call. A call whose record does not fit (a
 * body over a quarter of the ring, or a ring full of calls the thread has not taken yet) travels as a message
 * instead, its body transferred; so does such a reply. Everything else (start-up, metrics, cancellation, stop) is a
 * message.
 *
 * Call record payload:  u32 id | u8 operation (index in OPERATION_PATHS) | u8 caller length | u16 0 | f64 deadline
 *                       (ms since the epoch, Infinity for none) | caller (latin1) | request body
 * Reply record payload: u32 id | i32 code (-1: OK, the body follows; else a gRPC status, its details in UTF-8 follow)
 */

/** main → index thread */
export type ToIndexThread =
  | { t: 'call'; id: number; path: string; deadlineMs: number; caller: string; bytes: Uint8Array }
  | { t: 'cancel'; id: number }
  | { t: 'metrics'; id: number }
  | { t: 'stop' }
  /** The thread throws an uncaught error, as a bug would (tests of recovery, like the tokenizer worker's `crash`). */
  | { t: 'crash' };

/** index thread → main */
export type FromIndexThread =
  | { t: 'ready' }
  | { t: 'failed'; failure: StartFailure }
  | { t: 'reply'; id: number; bytes: Uint8Array }
  | { t: 'reply'; id: number; code: number; details: string }
  | { t: 'metrics'; id: number; text: string }
  /** The index backend's availability changed (Redis); the memory index never sends it. */
  | { t: 'index'; up: boolean };

/** The rings of one thread: calls (main → thread) and replies (thread → main). */
export interface ThreadRings {
  requests: SharedRing;
  replies: SharedRing;
}

/** Capacity of each ring: 4 MiB holds ~1,000 calls of 1k-token Score in flight; a larger backlog goes by message. */
export const RING_BYTES = 4 << 20;

const OPERATION_INDEX = new Map(OPERATION_PATHS.map((path, i) => [path, i]));
const CALL_HEAD = 16;
const REPLY_HEAD = 8;
const OK = -1;

/** An exact-size copy of `bytes` that owns its memory (for a message that transfers it). */
export function ownCopy(bytes: Uint8Array): Uint8Array {
  const own = new Uint8Array(bytes.byteLength);
  own.set(bytes);
  return own;
}

/** A body received in a message (a transferred Uint8Array) as a Buffer over the same memory. */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Writes a call record and publishes it; false when it does not fit (send it as a message). */
export function writeCall(
  ring: RecordRing,
  id: number,
  path: string,
  deadlineMs: number,
  caller: string,
  body: Uint8Array,
): boolean {
  const operation = OPERATION_INDEX.get(path);
  // Callers are peer addresses (ASCII); anything else takes the message path, which carries any string.
  if (operation === undefined || caller.length > 255 || !isLatin1(caller)) return false;
  const at = ring.reserve(CALL_HEAD + caller.length + body.byteLength);
  if (at < 0) return false;
  const view = ring.view;
  view.setUint32(at, id, true);
  view.setUint8(at + 4, operation);
  view.setUint8(at + 5, caller.length);
  view.setUint16(at + 6, 0, true);
  view.setFloat64(at + 8, deadlineMs, true);
  ring.bytes.write(caller, at + CALL_HEAD, caller.length, 'latin1');
  ring.bytes.set(body, at + CALL_HEAD + caller.length);
  ring.publish();
  return true;
}

export interface CallRecord {
  id: number;
  path: string;
  deadlineMs: number;
  caller: string;
  /** A copy (the record's space is released after the drain). */
  body: Buffer;
}

/** Reads the call record at `at` (a drain's offset and length). */
export function readCall(ring: RecordRing, at: number, length: number): CallRecord {
  const view = ring.view;
  const callerLength = view.getUint8(at + 5);
  const bodyAt = at + CALL_HEAD + callerLength;
  const body = Buffer.allocUnsafe(at + length - bodyAt); // pooled for small bodies: no ArrayBuffer of its own
  ring.bytes.copy(body, 0, bodyAt, at + length);
  return {
    id: view.getUint32(at, true),
    path: OPERATION_PATHS[view.getUint8(at + 4)],
    deadlineMs: view.getFloat64(at + 8, true),
    caller: ring.bytes.toString('latin1', at + CALL_HEAD, bodyAt),
    body,
  };
}

/** Writes an OK reply record (its body) and publishes it; false when it does not fit (send it as a message). */
export function writeReply(ring: RecordRing, id: number, body: Uint8Array): boolean {
  const at = ring.reserve(REPLY_HEAD + body.byteLength);
  if (at < 0) return false;
  ring.view.setUint32(at, id, true);
  ring.view.setInt32(at + 4, OK, true);
  ring.bytes.set(body, at + REPLY_HEAD);
  ring.publish();
  return true;
}

/** Writes a failed call's reply record (status and details); false when it does not fit. */
export function writeFailure(ring: RecordRing, id: number, code: number, details: string): boolean {
  const length = Buffer.byteLength(details);
  const at = ring.reserve(REPLY_HEAD + length);
  if (at < 0) return false;
  ring.view.setUint32(at, id, true);
  ring.view.setInt32(at + 4, code, true);
  ring.bytes.write(details, at + REPLY_HEAD, length, 'utf8');
  ring.publish();
  return true;
}

export type ReplyRecord = { id: number; body: Buffer } | { id: number; code: number; details: string };

/** Reads the reply record at `at` (a drain's offset and length); the body is a copy. */
export function readReply(ring: RecordRing, at: number, length: number): ReplyRecord {
  const id = ring.view.getUint32(at, true);
  const code = ring.view.getInt32(at + 4, true);
  const from = at + REPLY_HEAD;
  const to = at + length;
  if (code !== OK) return { id, code, details: ring.bytes.toString('utf8', from, to) };
  const body = Buffer.allocUnsafe(to - from);
  ring.bytes.copy(body, 0, from, to);
  return { id, body };
}

function isLatin1(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 255) return false;
  return true;
}

import type { DecodeIssue, EventBatch, KvEvent } from '../types.js';
import { FieldError, PayloadError } from './errors.js';
import { MsgpackError, readMsgpack } from './msgpack-reader.js';
import { fieldPath } from './paths.js';
import { decodeSglangEvent } from './sglang.js';
import { KNOWN_TAGS, unknownTagMessage } from './tags.js';
import { decodeVllmEvent } from './vllm.js';
import { asSafeInt, expected, isWireMap, type WireMap } from './wire-values.js';

export type WireFormat = 'vllm' | 'sglang';

type EventDecoder = (tag: string, body: unknown[] | WireMap, isArray: boolean, ev: number) => KvEvent;

/** The payload's msgpack value (msgpack-reader.ts: 64-bit ints as bigint, event field lists packed). */
function parseMsgpack(payload: Uint8Array): unknown {
  try {
    return readMsgpack(payload);
  } catch (err) {
    if (!(err instanceof MsgpackError)) throw err;
    throw new PayloadError('bad_msgpack', '', `payload is not one msgpack value: ${err.message}`);
  }
}

function readTs(value: unknown): number {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'bigint') return Number(value);
  throw new PayloadError('bad_batch', 'ts', expected('finite float', value));
}

function readRank(value: unknown, field: string): number | null {
  if (value === null || value === undefined) return null;
  const n = asSafeInt(value);
  if (!(n >= 0)) throw new PayloadError('bad_batch', field, expected('non-negative int or nil', value));
  return n;
}

/**
 * Issues listed in full per batch; further ones are only counted (`unlistedIssues`). Malformed events (every reason
 * but unknown_tag) beyond MAX_MALFORMED_EVENTS reject the batch: each costs an exception, and a payload of a million
 * one-byte bad events took seconds and hundreds of MB of issues. Unknown tags (a newer engine) cost no exception.
 */
export const MAX_LISTED_ISSUES = 1000;
export const MAX_MALFORMED_EVENTS = 1000;

/** The event, or its tag when the tag is a string no decoder knows (skipped without an exception). */
function decodeOneEvent(raw: unknown, ev: number, decodeEvent: EventDecoder): KvEvent | string {
  let tag: unknown;
  let body: unknown[] | WireMap;
  let isArray: boolean;
  if (Array.isArray(raw)) {
    if (raw.length === 0) throw new FieldError('bad_event', fieldPath(ev, 'type'), 'expected tag string, got nothing');
    tag = raw[0];
    body = raw;
    isArray = true;
  } else if (isWireMap(raw)) {
    tag = raw.type;
    body = raw;
    isArray = false;
  } else {
    throw new FieldError('bad_event', `events[${ev}]`, expected('array or map', raw));
  }
  if (typeof tag !== 'string') throw new FieldError('bad_event', fieldPath(ev, 'type'), expected('tag string', tag));
  if (!KNOWN_TAGS.has(tag)) return tag;
  return decodeEvent(tag, body, isArray, ev);
}

/**
 * Decode one published batch. Throws PayloadError (and nothing else) when the batch itself is unusable; a bad
 * event is skipped with a DecodeIssue and the rest of the batch still applies.
 */
export function decodeEventBatch(payload: Uint8Array, format: WireFormat = 'vllm'): EventBatch {
  const root = parseMsgpack(payload);
  const rankField = format === 'sglang' ? 'attn_dp_rank' : 'data_parallel_rank';
  const decodeEvent: EventDecoder = format === 'sglang' ? decodeSglangEvent : decodeVllmEvent;

  let tsRaw: unknown;
  let eventsRaw: unknown;
  let rankRaw: unknown;
  if (Array.isArray(root)) {
    // Very old vLLM sends [ts, events]; positions past the rank are ignored like trailing event fields.
    tsRaw = root[0];
    eventsRaw = root[1];
    rankRaw = root[2];
  } else if (isWireMap(root)) {
    tsRaw = root.ts;
    eventsRaw = root.events;
    rankRaw = root[rankField];
  } else {
    throw new PayloadError('bad_batch', 'batch', expected('array or map', root));
  }
  const ts = readTs(tsRaw);
  if (!Array.isArray(eventsRaw)) {
    throw new PayloadError('bad_batch', 'events', expected('array', eventsRaw));
  }
  const dataParallelRank = readRank(rankRaw, rankField);

  const events: KvEvent[] = [];
  const issues: DecodeIssue[] = [];
  let unlistedIssues: Record<string, number> | undefined;
  let malformed = 0;
  for (let ev = 0; ev < eventsRaw.length; ev++) {
    let issue: DecodeIssue;
    try {
      const event = decodeOneEvent(eventsRaw[ev], ev, decodeEvent);
      if (typeof event !== 'string') {
        events.push(event);
        continue;
      }
      if (issues.length >= MAX_LISTED_ISSUES) {
        unlistedIssues ??= {};
        unlistedIssues.unknown_tag = (unlistedIssues.unknown_tag ?? 0) + 1;
        continue;
      }
      issue = {
        reason: 'unknown_tag',
        eventIndex: ev,
        field: fieldPath(ev, 'type'),
        message: unknownTagMessage(event),
      };
    } catch (err) {
      if (++malformed > MAX_MALFORMED_EVENTS) {
        throw new PayloadError(
          'bad_batch',
          'events',
          `more than ${MAX_MALFORMED_EVENTS} malformed events: not a batch a publisher sends`,
        );
      }
      issue = toIssue(err, ev);
      if (issues.length >= MAX_LISTED_ISSUES) {
        unlistedIssues ??= {};
        unlistedIssues[issue.reason] = (unlistedIssues[issue.reason] ?? 0) + 1;
        continue;
      }
    }
    issues.push(issue);
  }
  return unlistedIssues
    ? { ts, events, dataParallelRank, issues, unlistedIssues }
    : { ts, events, dataParallelRank, issues };
}

function toIssue(err: unknown, ev: number): DecodeIssue {
  if (err instanceof FieldError) return { reason: err.reason, eventIndex: ev, field: err.field, message: err.message };
  // A bug in a reader must cost one event, not the batch or the subscriber loop.
  const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return { reason: 'bad_event', eventIndex: ev, field: `events[${ev}]`, message };
}

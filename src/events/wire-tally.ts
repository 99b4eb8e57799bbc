import type { DecodeIssue, KvEvent } from './types.js';

/**
 * Per endpoint, what its live batches said about placement and what was refused (ListEndpoints, `replay
 * --in-process`): stored blocks by `locality` (LOCAL / REMOTE / unspecified) and by `ownership` (vLLM's secondary
 * offloading tier), and skipped events by decode reason (e.g. `bad_token_pairs`, `unknown_locality`). Counted when a
 * live batch is decoded, before the sequence rules (a duplicate batch counts again; replayed batches do not).
 *
 * The keys come from the wire, so the maps are bounded: at most MAX_KEYS distinct keys each, names cut to
 * MAX_KEY_LENGTH characters; further keys count under `other`.
 */
export interface WireTally {
  storedBlocksByLocality: Record<string, number>;
  storedBlocksByOwnership: Record<string, number>;
  skippedEvents: Record<string, number>;
}

export const MAX_KEYS = 16;
export const MAX_KEY_LENGTH = 64;
export const UNSPECIFIED = 'unspecified';
export const OTHER = 'other';

export function newWireTally(): WireTally {
  return { storedBlocksByLocality: {}, storedBlocksByOwnership: {}, skippedEvents: {} };
}

function add(map: Record<string, number>, key: string, by: number): void {
  const name = key.length > MAX_KEY_LENGTH ? key.slice(0, MAX_KEY_LENGTH) : key;
  if (map[name] === undefined && Object.keys(map).length >= MAX_KEYS) {
    map[OTHER] = (map[OTHER] ?? 0) + by;
    return;
  }
  map[name] = (map[name] ?? 0) + by;
}

export function tallyBatch(
  tally: WireTally,
  events: readonly KvEvent[],
  issues: readonly DecodeIssue[],
  unlisted: Record<string, number> | undefined,
): void {
  for (const ev of events) {
    if (ev.type !== 'BlockStored') continue;
    const blocks = ev.blockHashes.length;
    add(tally.storedBlocksByLocality, ev.locality ?? UNSPECIFIED, blocks);
    if (ev.ownership !== undefined) add(tally.storedBlocksByOwnership, ev.ownership, blocks);
  }
  for (const issue of issues) add(tally.skippedEvents, issue.reason, 1);
  if (unlisted) for (const [reason, n] of Object.entries(unlisted)) add(tally.skippedEvents, reason, n);
}

/** A copy of a tally (a fresh one for none), for callers that must not see later counts. */
export function copyTally(t: WireTally | undefined): WireTally {
  if (!t) return newWireTally();
  return {
    storedBlocksByLocality: { ...t.storedBlocksByLocality },
    storedBlocksByOwnership: { ...t.storedBlocksByOwnership },
    skippedEvents: { ...t.skippedEvents },
  };
}

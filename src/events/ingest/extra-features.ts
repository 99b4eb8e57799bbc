import type { ExtraKeyItem } from '../types.js';
import type { LeftoverExtra } from './engine-key-map.js';

/**
 * Moves the identifiers vLLM attached to engine blocks (extra_keys) onto canonical blocks of B tokens
 * (spec/block-keys.md: "Multimodal identifiers attached to engine blocks are re-spread onto canonical blocks by
 * token range"). When the engine block size equals B this reproduces each block's list exactly.
 *
 * Each identifier becomes a token range in the event's combined token sequence (leftover of the parent + the
 * event's tokens): a `[id, offset]` item covers from its start to the end of the engine block; a bare string covers
 * its engine block; the cache salt (a trailing bare string on the first block of a chain that the next block does
 * not repeat) covers token 0 only and is listed last, as the read path does. The same item seen on consecutive
 * engine blocks is listed once per canonical block.
 */

interface Taint {
  start: number;
  end: number;
  id: string;
  /** Identity of the item, so that one item spanning several engine blocks is listed once. */
  item: string;
  /** Unclamped start of a `[id, offset]` item in the combined sequence; null for bare identifiers. */
  itemStart: number | null;
  salt: boolean;
}

export interface SpreadInput {
  /** Extra features of the parent's leftover tokens (relative to the combined sequence start). */
  carried: readonly LeftoverExtra[];
  carriedTokens: number;
  /** Per engine block, or null. */
  extraKeys: readonly (ExtraKeyItem[] | null)[] | null;
  engineBlockSize: number;
  engineBlocks: number;
  loraName: string | null;
  /** True when the event starts a chain (parent nil): only then can block 0 carry a cache salt. */
  chainStart: boolean;
  /** SGLang: the salt arrives as a field, not inside extra_keys. */
  cacheSalt: string | null;
}

export interface SpreadResult {
  /** Per canonical block, its identifiers or null; null overall when there are none. */
  blocks: (string[] | null)[] | null;
  /** Ranges of identifiers over the leftover tokens after the last full canonical block (relative to it). */
  leftover: LeftoverExtra[];
}

export function spreadExtraFeatures(input: SpreadInput, canonicalBlocks: number, blockSize: number): SpreadResult {
  const taints = collectTaints(input);
  if (taints.length === 0) return { blocks: null, leftover: [] };
  const blocks: (string[] | null)[] = new Array<string[] | null>(canonicalBlocks).fill(null);
  const seen: (Set<string> | null)[] = new Array<Set<string> | null>(canonicalBlocks).fill(null);
  // Salts go last in their block, after every multimodal identifier.
  const ordered = [...taints.filter((t) => !t.salt), ...taints.filter((t) => t.salt)];
  for (const t of ordered) {
    const first = Math.floor(t.start / blockSize);
    const last = Math.min(canonicalBlocks - 1, Math.floor((t.end - 1) / blockSize));
    for (let c = first; c <= last; c++) {
      const s = (seen[c] ??= new Set());
      if (s.has(t.item)) continue;
      s.add(t.item);
      (blocks[c] ??= []).push(t.id);
    }
  }
  const tailStart = canonicalBlocks * blockSize;
  const leftover: LeftoverExtra[] = [];
  for (const t of ordered) {
    if (t.end <= tailStart) continue;
    const start = Math.max(t.start, tailStart) - tailStart;
    const end = t.end - tailStart;
    const itemStart = t.itemStart === null ? null : t.itemStart - tailStart;
    const prev = leftover.find((l) => l.start === start && l.end === end);
    if (prev) {
      (prev.ids as string[]).push(t.id);
      (prev.itemStarts as (number | null)[]).push(itemStart);
    } else leftover.push({ start, end, ids: [t.id], itemStarts: [itemStart] });
  }
  return { blocks: blocks.some((b) => b !== null) ? blocks : null, leftover };
}

function collectTaints(input: SpreadInput): Taint[] {
  const taints: Taint[] = [];
  for (const c of input.carried) {
    c.ids.forEach((id, k) => {
      const itemStart = c.itemStarts[k] ?? null;
      taints.push({ start: c.start, end: c.end, id, item: itemKey(id, itemStart, 0), itemStart, salt: false });
    });
  }
  const { extraKeys, engineBlockSize: eb } = input;
  if (extraKeys) {
    for (let j = 0; j < input.engineBlocks && j < extraKeys.length; j++) {
      const items = extraKeys[j];
      if (!items) continue;
      const bs = input.carriedTokens + j * eb;
      const be = bs + eb;
      const occurrences = new Map<string, number>();
      items.forEach((item, k) => {
        const id = identifierOf(item, input.loraName);
        if (id === null) return;
        if (item.kind === 'mm') {
          const itemStart = bs + item.offset;
          taints.push({
            start: Math.max(bs, itemStart),
            end: be,
            id,
            item: itemKey(id, itemStart, 0),
            itemStart,
            salt: false,
          });
          return;
        }
        const n = occurrences.get(id) ?? 0;
        occurrences.set(id, n + 1);
        if (
          j === 0 &&
          input.chainStart &&
          k === items.length - 1 &&
          item.kind === 'string' &&
          !repeatedNext(extraKeys, id)
        ) {
          taints.push({ start: 0, end: 1, id, item: `salt:${id}`, itemStart: null, salt: true });
          return;
        }
        taints.push({ start: bs, end: be, id, item: itemKey(id, null, n), itemStart: null, salt: false });
      });
    }
  }
  if (input.cacheSalt && input.chainStart && input.engineBlocks > 0) {
    taints.push({
      start: 0,
      end: 1,
      id: input.cacheSalt,
      item: `salt:${input.cacheSalt}`,
      itemStart: null,
      salt: true,
    });
  }
  return taints;
}

/** An item's identity: its start when known, else its occurrence number among equal bare ids of one block. */
function itemKey(id: string, itemStart: number | null, occurrence: number): string {
  return itemStart === null ? `bare:${occurrence}:${id}` : `mm:${itemStart}:${id}`;
}

/** The identifier an extra_keys item contributes, or null for the LoRA marker (already in the chain's root). */
export function identifierOf(item: ExtraKeyItem, loraName: string | null): string | null {
  switch (item.kind) {
    case 'mm':
      return item.identifier;
    case 'string':
      return loraName !== null && item.value === loraName ? null : item.value;
    case 'lora-id':
      return null;
    case 'embeds':
      return item.hex;
  }
}

/**
 * The multimodal identifiers (images) of an event's extra_keys, each once, in wire order: `[id, offset]` items and
 * bare strings (vLLM ≤ 0.18 identifiers), but not the LoRA marker (the event's lora_name, or an int LoRA id), not the
 * cache salt (block 0's trailing bare string when the event starts a chain, the rule collectTaints applies) and not
 * prompt-embeds bytes. Feeds encoder residency (index/encoder-residency.ts).
 */
export function imageIdentifiers(
  extraKeys: readonly (ExtraKeyItem[] | null)[],
  loraName: string | null,
  chainStart: boolean,
): string[] {
  const out: string[] = [];
  let seen: Set<string> | null = null;
  for (let j = 0; j < extraKeys.length; j++) {
    const items = extraKeys[j];
    if (!items) continue;
    for (let k = 0; k < items.length; k++) {
      const item = items[k];
      let id: string;
      if (item.kind === 'mm') id = item.identifier;
      else if (item.kind === 'string') {
        if (loraName !== null && item.value === loraName) continue;
        if (j === 0 && chainStart && k === items.length - 1 && !repeatedNext(extraKeys, item.value)) continue;
        id = item.value;
      } else continue;
      if ((seen ??= new Set()).has(id)) continue;
      seen.add(id);
      out.push(id);
    }
  }
  return out;
}

function repeatedNext(extraKeys: readonly (ExtraKeyItem[] | null)[], id: string): boolean {
  const next = extraKeys[1];
  return !!next && next.some((i) => i.kind === 'string' && i.value === id);
}

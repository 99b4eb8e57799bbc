import type { ExtraKeyItem } from '../types.js';
import { FieldError } from './errors.js';
import { fieldPath } from './paths.js';
import { wireList } from './msgpack-reader.js';
import { asSafeInt, describe, expected } from './wire-values.js';

/**
 * `extra_keys` of a BlockStored (spec/vllm-kv-events.md §3): nil, or one entry per block, each nil or a list of
 * items kept in wire order. Items are classified by shape only; deciding what a string means (LoRA name, ≤ 0.18
 * multimodal identifier, cache salt) needs the event's lora_name and is left to ingest.
 */

const NAME = 'extra_keys';
const ITEM_SHAPES = '[string, int], string, int or bytes';

const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'));

function toHex(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += HEX[bytes[i]];
  return s;
}

function classifyItem(item: unknown, ev: number, block: number, k: number): ExtraKeyItem {
  if (typeof item === 'string') return { kind: 'string', value: item };
  if (item instanceof Uint8Array) return { kind: 'embeds', hex: toHex(item) };
  if (typeof item === 'number' || typeof item === 'bigint') {
    const id = asSafeInt(item);
    if (Number.isNaN(id))
      throw new FieldError('bad_extra_keys', fieldPath(ev, NAME, block, k), expected('int LoRA id', item));
    return { kind: 'lora-id', id };
  }
  if (Array.isArray(item) && item.length === 2 && typeof item[0] === 'string') {
    // vLLM ≥ 0.19: [identifier, item_offset - block_start]; the offset is negative when the item began earlier.
    const offset = asSafeInt(item[1]);
    if (Number.isNaN(offset)) {
      throw new FieldError('bad_extra_keys', fieldPath(ev, NAME, block, k, 1), expected('int offset', item[1]));
    }
    return { kind: 'mm', identifier: item[0], offset };
  }
  const found = Array.isArray(item) ? `array of ${item.length}` : describe(item);
  throw new FieldError('bad_extra_keys', fieldPath(ev, NAME, block, k), `expected ${ITEM_SHAPES}, got ${found}`);
}

export function readExtraKeys(raw: unknown, blockCount: number, ev: number): (ExtraKeyItem[] | null)[] | null {
  if (raw === null || raw === undefined) return null;
  const value = wireList(raw);
  if (value === null) throw new FieldError('bad_extra_keys', fieldPath(ev, NAME), expected('array or nil', raw));
  if (value.length !== blockCount) {
    throw new FieldError(
      'bad_extra_keys',
      fieldPath(ev, NAME),
      `expected ${blockCount} entries (one per block), got ${value.length}`,
    );
  }
  const out: (ExtraKeyItem[] | null)[] = [];
  for (let b = 0; b < blockCount; b++) {
    const entry: unknown = value[b];
    if (entry === null || (Array.isArray(entry) && entry.length === 0)) {
      out.push(null);
      continue;
    }
    if (!Array.isArray(entry))
      throw new FieldError('bad_extra_keys', fieldPath(ev, NAME, b), expected('array or nil', entry));
    const items: ExtraKeyItem[] = [];
    for (let k = 0; k < entry.length; k++) items.push(classifyItem(entry[k], ev, b, k));
    out.push(items);
  }
  return out;
}

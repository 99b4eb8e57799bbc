/**
 * HPACK (RFC 7541), the header compression of HTTP/2, as the lean gRPC server needs it: a full decoder for request
 * header blocks and a few encoder helpers for responses.
 *
 * Decoding must be complete and strict: the peer's encoder chooses the representations (§6: indexed, literal with
 * incremental indexing, without indexing, never indexed, table size updates), and the dynamic table (§2.3.2, §4)
 * is shared state that one misread field would silently corrupt for the rest of the connection. So every malformed
 * input throws HpackError, a COMPRESSION_ERROR (RFC 9113 §4.3) after which the connection must end: an index of 0 or
 * past the tables (§2.3.3), a truncated or oversized integer (§5.1), a string past the block (§5.2), bad Huffman
 * padding or EOS (§5.2), a table size update after a field or above our limit (§4.2, §6.3).
 *
 * The decoder is on the path of every call, so it allocates nothing per field beyond the name and value strings: the
 * fields go into a flat `out` array (name, value, name, value, …), the static table is two arrays and the dynamic
 * table a ring of strings indexed from the newest entry (§2.3.3), evicting from the oldest end (§4.4) without moving
 * anything. Strings are latin1, one char per octet, so a string's length is its size in octets for §4.1's entry
 * size and RFC 9113 §6.5.2's header list size, which `decode` returns for the caller to bound. Names are not checked
 * (lowercase, no pseudo-header after a regular one): that is HTTP/2's rule (RFC 9113 §8.2), left to the caller.
 *
 * The encoder never adds to the dynamic table (literals without indexing, §6.2.2, and static indices), so the peer's
 * decoder table stays empty and no encoder state has to be kept, whatever table size the peer allows us.
 */

import { HpackError, huffmanDecode } from './hpack-huffman.js';

export { HpackError } from './hpack-huffman.js';

/**
 * RFC 7541 Appendix A, indices 1..61 as name/value pairs (`''` for no value); each line starts with the index in its
 * comment.
 */
// prettier-ignore
const STATIC_TABLE: readonly string[] = [
  /* 1 */ ':authority', '', ':method', 'GET', ':method', 'POST', ':path', '/', ':path', '/index.html',
  /* 6 */ ':scheme', 'http', ':scheme', 'https', ':status', '200', ':status', '204', ':status', '206',
  /* 11 */ ':status', '304', ':status', '400', ':status', '404', ':status', '500', 'accept-charset', '',
  /* 16 */ 'accept-encoding', 'gzip, deflate', 'accept-language', '', 'accept-ranges', '', 'accept', '',
  /* 20 */ 'access-control-allow-origin', '', 'age', '', 'allow', '', 'authorization', '', 'cache-control', '',
  /* 25 */ 'content-disposition', '', 'content-encoding', '', 'content-language', '', 'content-length', '',
  /* 29 */ 'content-location', '', 'content-range', '', 'content-type', '', 'cookie', '', 'date', '', 'etag', '',
  /* 35 */ 'expect', '', 'expires', '', 'from', '', 'host', '', 'if-match', '', 'if-modified-since', '',
  /* 41 */ 'if-none-match', '', 'if-range', '', 'if-unmodified-since', '', 'last-modified', '', 'link', '',
  /* 46 */ 'location', '', 'max-forwards', '', 'proxy-authenticate', '', 'proxy-authorization', '', 'range', '',
  /* 51 */ 'referer', '', 'refresh', '', 'retry-after', '', 'server', '', 'set-cookie', '',
  /* 56 */ 'strict-transport-security', '', 'transfer-encoding', '', 'user-agent', '', 'vary', '', 'via', '',
  /* 61 */ 'www-authenticate', '',
];

/** The number of static entries; dynamic indices start after it (§2.3.3). */
const STATIC_TABLE_LENGTH = 61;
if (STATIC_TABLE.length !== 2 * STATIC_TABLE_LENGTH) throw new Error('HPACK static table: wrong length');

/** By index (0 unused), so that an indexed field costs two array reads. */
const STATIC_NAMES: readonly string[] = ['', ...STATIC_TABLE.filter((_, i) => i % 2 === 0)];
const STATIC_VALUES: readonly string[] = ['', ...STATIC_TABLE.filter((_, i) => i % 2 === 1)];

/** A static name → its first index, for the encoder's literals with an indexed name (§6.2.2). */
const STATIC_NAME_INDEX = new Map<string, number>();
for (let index = STATIC_TABLE_LENGTH; index >= 1; index--) STATIC_NAME_INDEX.set(STATIC_NAMES[index], index);

/** §4.1: an entry's size is its name and value octets plus 32 (the estimated overhead of an entry). */
const ENTRY_OVERHEAD = 32;
/** Integers past this are never meaningful here (indices, lengths, table sizes) and would overflow 31-bit math. */
const MAX_INTEGER = 0x7fffffff;
/** 5 continuation octets carry 35 bits: any integer up to MAX_INTEGER fits, more is only padding or an attack. */
const MAX_CONTINUATIONS = 5;

const latin1Slice = Buffer.prototype.latin1Slice as (this: Uint8Array, start: number, end: number) => string;

/** The decoding context of one HTTP/2 connection's request header blocks, in the order they arrive. */
export class HpackDecoder {
  /** The ring: slot `newest` holds dynamic index 62, the slot before it 63, and so on for `count` entries. */
  private readonly names: string[];
  private readonly values: string[];
  private readonly capacity: number;
  private newest = 0;
  private count = 0;
  private size = 0;
  /** The table's current maximum size: maxTableSize until the peer's encoder lowers it (§4.2, §6.3). */
  private limit: number;
  /** Read position and end of the block being decoded (fields, so the readers return plain numbers and strings). */
  private pos = 0;
  private end = 0;

  /** `maxTableSize`: the SETTINGS_HEADER_TABLE_SIZE we advertised (RFC 9113 §6.5.2; 4096 is HTTP/2's default). */
  constructor(readonly maxTableSize = 4096) {
    // Every entry takes at least 32 octets, so the table can never hold more than this many.
    this.capacity = Math.max(1, Math.floor(maxTableSize / ENTRY_OVERHEAD));
    this.names = new Array<string>(this.capacity).fill('');
    this.values = new Array<string>(this.capacity).fill('');
    this.limit = maxTableSize;
  }

  /** The dynamic table's size in octets (§4.1). */
  get tableSize(): number {
    return this.size;
  }

  /** The dynamic table as [name, value] pairs, newest (index 62) first; for tests and debugging. */
  get tableEntries(): Array<[string, string]> {
    const entries: Array<[string, string]> = [];
    for (let i = 0; i < this.count; i++) {
      const slot = this.slotOf(i);
      entries.push([this.names[slot], this.values[slot]]);
    }
    return entries;
  }

  /**
   * Decodes the complete header block `block[start, end)` (HEADERS plus any CONTINUATION fragments, joined),
   * appending name, value, name, value, … to `out`. Returns the header list size of RFC 9113 §6.5.2 (name and value
   * octets plus 32 per field) for the caller to compare with its SETTINGS_MAX_HEADER_LIST_SIZE.
   */
  decode(block: Uint8Array, start: number, end: number, out: string[]): number {
    this.pos = start;
    this.end = end;
    let listSize = 0;
    let fieldSeen = false;
    while (this.pos < end) {
      const first = block[this.pos];
      let name: string;
      let value: string;
      if (first >= 0x80) {
        // §6.1 indexed field.
        const index = this.readInteger(block, 7);
        if (index === 0) throw new HpackError('HPACK: indexed field with index 0');
        if (index <= STATIC_TABLE_LENGTH) {
          name = STATIC_NAMES[index];
          value = STATIC_VALUES[index];
        } else {
          const slot = this.dynamicSlot(index);
          name = this.names[slot];
          value = this.values[slot];
        }
      } else if (first >= 0x40) {
        // §6.2.1 literal with incremental indexing.
        name = this.readName(block, this.readInteger(block, 6));
        value = this.readString(block);
        this.insert(name, value);
      } else if (first >= 0x20) {
        // §6.3 dynamic table size update: §4.2 allows it only before the block's first field.
        if (fieldSeen) throw new HpackError('HPACK: dynamic table size update after a header field');
        const limit = this.readInteger(block, 5);
        if (limit > this.maxTableSize) {
          throw new HpackError(`HPACK: dynamic table size update to ${limit} above the limit ${this.maxTableSize}`);
        }
        this.limit = limit;
        this.evictTo(limit);
        continue;
      } else {
        // §6.2.2 without indexing (0000xxxx) and §6.2.3 never indexed (0001xxxx): the same to a decoder that
        // re-encodes nothing.
        name = this.readName(block, this.readInteger(block, 4));
        value = this.readString(block);
      }
      fieldSeen = true;
      out.push(name, value);
      listSize += name.length + value.length + ENTRY_OVERHEAD;
    }
    return listSize;
  }

  /** A literal's name: a new string when the index is 0, else the name of that table entry (§6.2). */
  private readName(block: Uint8Array, index: number): string {
    if (index === 0) return this.readString(block);
    return index <= STATIC_TABLE_LENGTH ? STATIC_NAMES[index] : this.names[this.dynamicSlot(index)];
  }

  /** §5.1: an integer with an N-bit prefix in the current octet, then 7 bits per continuation octet, low first. */
  private readInteger(block: Uint8Array, prefixBits: number): number {
    if (this.pos >= this.end) throw new HpackError('HPACK: truncated header block');
    const max = (1 << prefixBits) - 1;
    let value = block[this.pos++] & max;
    if (value < max) return value;
    let factor = 1;
    for (let continuations = 0; ; continuations++) {
      if (continuations === MAX_CONTINUATIONS) throw new HpackError('HPACK: integer too long');
      if (this.pos >= this.end) throw new HpackError('HPACK: truncated integer');
      const octet = block[this.pos++];
      value += (octet & 0x7f) * factor;
      if (value > MAX_INTEGER) throw new HpackError('HPACK: integer overflow');
      if (octet < 0x80) return value;
      factor *= 128;
    }
  }

  /** §5.2: H bit, length (7-bit prefix), then the octets, raw (latin1) or Huffman-coded. */
  private readString(block: Uint8Array): string {
    if (this.pos >= this.end) throw new HpackError('HPACK: truncated header block');
    const huffman = block[this.pos] >= 0x80;
    const length = this.readInteger(block, 7);
    const start = this.pos;
    if (length > this.end - start) throw new HpackError(`HPACK: string of ${length} octets past the block's end`);
    this.pos = start + length;
    return huffman ? huffmanDecode(block, start, this.pos) : latin1Slice.call(block, start, this.pos);
  }

  /** The ring slot of dynamic index `index` (> 61), or HpackError when the table has no such entry. */
  private dynamicSlot(index: number): number {
    const age = index - STATIC_TABLE_LENGTH - 1;
    if (age >= this.count) throw new HpackError(`HPACK: index ${index} past the tables`);
    return this.slotOf(age);
  }

  /** The slot of the entry `age` insertions older than the newest. */
  private slotOf(age: number): number {
    const slot = this.newest - age;
    return slot < 0 ? slot + this.capacity : slot;
  }

  /** §4.4: evict until the new entry fits; one larger than the whole table empties it and is not added. */
  private insert(name: string, value: string): void {
    const size = name.length + value.length + ENTRY_OVERHEAD;
    if (size > this.limit) {
      this.evictTo(0);
      return;
    }
    this.evictTo(this.limit - size);
    this.newest = this.newest + 1 === this.capacity ? 0 : this.newest + 1;
    this.names[this.newest] = name;
    this.values[this.newest] = value;
    this.count++;
    this.size += size;
  }

  /** Evicts the oldest entries until the table's size is at most `target` (§4.3, §4.4). */
  private evictTo(target: number): void {
    while (this.size > target) {
      const slot = this.slotOf(--this.count);
      this.size -= this.names[slot].length + this.values[slot].length + ENTRY_OVERHEAD;
      // Dropped so that a long evicted value is not kept alive by the ring.
      this.names[slot] = '';
      this.values[slot] = '';
    }
  }
}

/**
 * `:status: 200` as an indexed field of the static table (index 8): the whole status line of a gRPC response, whose
 * errors travel in trailers.
 */
export const STATUS_200 = 0x88;

/** §6.1: the one-octet indexed field of static entry `index` (1..61). */
export function indexedStatic(index: number): number {
  if (!(index >= 1 && index <= STATIC_TABLE_LENGTH)) throw new RangeError(`not a static table index: ${index}`);
  return 0x80 | index;
}

/** §5.1: appends `value` with an N-bit prefix; `firstByteFlags` are the representation's bits above the prefix. */
export function encodeInteger(value: number, prefixBits: number, firstByteFlags: number, out: number[]): void {
  const max = (1 << prefixBits) - 1;
  if (value < max) {
    out.push(firstByteFlags | value);
    return;
  }
  out.push(firstByteFlags | max);
  let rest = value - max;
  while (rest >= 128) {
    out.push((rest & 0x7f) | 0x80);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
}

/**
 * §6.2.2: `name: value` as a literal without indexing, the name as a static index when the static table has it
 * (content-type → 31), else as a new name; strings raw latin1 (no Huffman: the saving is not worth the CPU on a few
 * short response headers). Constant fields are meant to be encoded once and the bytes reused.
 */
export function literalWithoutIndexing(name: string, value: string): Buffer {
  const out: number[] = [];
  const index = STATIC_NAME_INDEX.get(name);
  if (index === undefined) {
    out.push(0x00);
    pushString(name, out);
  } else {
    encodeInteger(index, 4, 0x00, out);
  }
  pushString(value, out);
  return Buffer.from(out);
}

/** §5.2 with H = 0: the length, then one octet per char; a char above 0xff has no latin1 octet. */
function pushString(text: string, out: number[]): void {
  encodeInteger(text.length, 7, 0x00, out);
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code > 0xff) throw new RangeError(`HPACK literal: char U+${code.toString(16)} is not latin1`);
    out.push(code);
  }
}

import { isUtf8 } from 'node:buffer';

/**
 * A pass over msgpack bytes, before `@msgpack/msgpack` decodes them, that rejects payloads declaring more values than
 * they have bytes for. The library allocates `new Array(size)` as soon as it reads an array header, so a few bytes of
 * nested `array16` headers (3 bytes each, declaring 16k elements each) would make it allocate ~128 KB per 3 bytes and
 * run the process out of memory. Every value takes at least one byte, so in a well-formed payload the values still
 * owed by open containers never exceed the bytes left: checking that after each container header bounds what the
 * decoder allocates for arrays to about twice the payload length.
 *
 * The same pass rejects strings that are not valid UTF-8 (see utf8At). Anything else (invalid type bytes, truncated
 * strings, trailing bytes) is left to the decoder, which reports it without allocating. Nothing is thrown.
 */

/** `null` when the payload's declared sizes fit its length and its strings are UTF-8, else why not. */
export function precheckMsgpack(bytes: Uint8Array): string | null {
  const n = bytes.length;
  let pos = 0;
  /** Values still owed: the root plus the unread elements (maps: keys and values) of every open container. */
  let pending = 1;
  while (pending > 0 && pos < n) {
    const b = bytes[pos++];
    pending--;
    let count = -1; // values a container header adds
    if (b <= 0x7f || b >= 0xe0) continue; // fixint
    if (b <= 0x8f) count = (b & 0x0f) * 2; // fixmap
    else if (b <= 0x9f) count = b & 0x0f; // fixarray
    else if (b <= 0xbf) {
      if (!utf8At(bytes, pos, b & 0x1f)) return `has a string that is not valid UTF-8 (at byte ${pos - 1})`;
      pos += b & 0x1f; // fixstr
    } else {
      switch (b) {
        case 0xc0: case 0xc2: case 0xc3: break; // nil, bool
        case 0xc1: return null; // invalid type byte: the decoder names it
        case 0xc4: pos += 1 + (pos < n ? bytes[pos] : 0); break; // bin8
        case 0xc5: pos += 2 + u16(bytes, pos); break; // bin16
        case 0xc6: pos += 4 + u32(bytes, pos); break; // bin32
        case 0xd9: case 0xda: case 0xdb: { // str8, str16, str32
          const head = b === 0xd9 ? 1 : b === 0xda ? 2 : 4;
          const len = b === 0xd9 ? (pos < n ? bytes[pos] : 0) : b === 0xda ? u16(bytes, pos) : u32(bytes, pos);
          if (!utf8At(bytes, pos + head, len)) return `has a string that is not valid UTF-8 (at byte ${pos - 1})`;
          pos += head + len;
          break;
        }
        case 0xc7: pos += 2 + (pos < n ? bytes[pos] : 0); break; // ext8
        case 0xc8: pos += 3 + u16(bytes, pos); break; // ext16
        case 0xc9: pos += 5 + u32(bytes, pos); break; // ext32
        case 0xcc: case 0xd0: pos += 1; break;
        case 0xcd: case 0xd1: pos += 2; break;
        case 0xca: case 0xce: case 0xd2: pos += 4; break;
        case 0xcb: case 0xcf: case 0xd3: pos += 8; break;
        case 0xd4: pos += 2; break; // fixext1..16: type byte + data
        case 0xd5: pos += 3; break;
        case 0xd6: pos += 5; break;
        case 0xd7: pos += 9; break;
        case 0xd8: pos += 17; break;
        case 0xdc: count = u16(bytes, pos); pos += 2; break; // array16
        case 0xdd: count = u32(bytes, pos); pos += 4; break; // array32
        case 0xde: count = u16(bytes, pos) * 2; pos += 2; break; // map16
        case 0xdf: count = u32(bytes, pos) * 2; pos += 4; break; // map32
      }
    }
    if (count > 0) {
      pending += count;
      if (pending > n - pos) {
        return `declares ${pending} more values than the ${Math.max(0, n - pos)} bytes left can hold (at byte ${pos})`;
      }
    }
  }
  return null;
}

/**
 * Whether the string at [at, at + len) is valid UTF-8 (true when it runs past the end: the decoder reports that).
 * The decoder does not check: it turns invalid bytes into U+FFFD or other code points, so two different byte strings
 * (a LoRA name, a multimodal identifier) could become one and hash alike. msgspec, vLLM's own decoder, rejects them.
 */
function utf8At(b: Uint8Array, at: number, len: number): boolean {
  const end = at + len;
  if (end > b.length) return true;
  for (let i = at; i < end; i++) {
    if (b[i] >= 0x80) return isUtf8(b.subarray(at, end)); // ASCII (the common case) needs no call
  }
  return true;
}

/** Big-endian reads; past the end they read as 0 (the decoder then reports the truncation). */
function u16(b: Uint8Array, at: number): number {
  return at + 2 <= b.length ? (b[at] << 8) | b[at + 1] : 0;
}

function u32(b: Uint8Array, at: number): number {
  return at + 4 <= b.length ? ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0 : 0;
}

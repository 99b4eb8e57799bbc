/**
 * HPACK's Huffman code (RFC 7541 §5.2, Appendix B) and a decoder for header strings sent with the H bit set. Clients
 * (grpc-go, grpc-java, nghttp2, browsers) Huffman-code most literal values, so this runs on nearly every request
 * header of the lean HTTP/2 server; the server itself never Huffman-codes what it sends, hence no encoder.
 *
 * The table is kept as code lengths only. Appendix B's code is canonical: ordered by (length, symbol), each code is
 * the previous one plus 1, shifted left when the length grows. So the codes are derived here at load, and the load
 * fails unless the lengths make a complete prefix code ending in EOS = 30 1-bits; the test checks Appendix B codes.
 *
 * Decoding walks a 4-bit state machine built at load: a state is an internal node of the code tree (256 of them), and
 * each (state, nibble) entry holds the next state and the symbol completed on the way, if any. Every code has at
 * least 5 bits, so a nibble completes at most one symbol: two table reads a byte, no per-bit loop and no objects.
 * §5.2's rules on the end of a string become a per-state flag: only a state reached from the root by at most 7
 * 1-bits (an EOS prefix) may end a string; a completed EOS is an error anywhere.
 */

/** A COMPRESSION_ERROR (RFC 9113 §4.3): the header block is undecodable and the connection must end. */
export class HpackError extends Error {
  override readonly name = 'HpackError';
}

/** Symbols 0..255 are octets, 256 is EOS (never sent whole, only as padding prefix). */
const SYMBOLS = 257;
const EOS = 256;

/**
 * RFC 7541 Appendix B, the code length in bits of each symbol: one row per 16 symbols (0x00–0x0f, 0x10–0x1f, …),
 * then EOS.
 */
// prettier-ignore
const CODE_LENGTHS: readonly number[] = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28,
  28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6,
  5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
  7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5,
  6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,
  24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23,
  21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,
  19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,
  26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
  30,
];

/** The code lengths and the canonical codes derived from them (exported for the test that checks them). */
export const HUFFMAN_LENGTHS: readonly number[] = CODE_LENGTHS;
export const HUFFMAN_CODES: Uint32Array = canonicalCodes(CODE_LENGTHS);

function canonicalCodes(lengths: readonly number[]): Uint32Array {
  if (lengths.length !== SYMBOLS) throw new Error(`HPACK Huffman table: ${lengths.length} lengths, want ${SYMBOLS}`);
  const order = Array.from({ length: SYMBOLS }, (_, s) => s).sort((a, b) => lengths[a] - lengths[b] || a - b);
  const codes = new Uint32Array(SYMBOLS);
  let code = 0;
  let length = lengths[order[0]];
  for (const symbol of order) {
    code *= 2 ** (lengths[symbol] - length);
    length = lengths[symbol];
    codes[symbol] = code++;
  }
  // A complete code uses up the whole 30-bit space, and EOS (the longest, last symbol) is then all 1-bits.
  if (code !== 2 ** 30 || order[SYMBOLS - 1] !== EOS) throw new Error('HPACK Huffman table: not a complete code');
  return codes;
}

/** A binary tree has one internal node fewer than leaves: these are the decoder's states, the root being 0. */
const STATES = SYMBOLS - 1;
const EMIT = 0x10000;
const FAIL = 0x20000;

/**
 * `(state << 4) | nibble` → next state (bits 0–7), the completed symbol (bits 8–15) with EMIT, or FAIL when the
 * nibble completes EOS.
 */
const TRANSITIONS = new Uint32Array(STATES * 16);
/** 1 for the states a string may end in: the root, or up to 7 1-bits into EOS (§5.2 padding). */
const ACCEPTS = new Uint8Array(STATES);

buildDecoder();

function buildDecoder(): void {
  // children[2 * node + bit]: > 0 an internal node, < 0 the leaf of symbol -child - 1 (the root is nobody's child).
  const children = new Int32Array(2 * STATES);
  const onesDepth = new Int8Array(STATES).fill(-1);
  onesDepth[0] = 0;
  let nodes = 1;
  for (let symbol = 0; symbol < SYMBOLS; symbol++) {
    const code = HUFFMAN_CODES[symbol];
    let node = 0;
    for (let bit = CODE_LENGTHS[symbol] - 1; bit >= 0; bit--) {
      const slot = 2 * node + ((code >>> bit) & 1);
      if (bit === 0) {
        children[slot] = -symbol - 1;
        break;
      }
      if (children[slot] === 0) {
        if (nodes === STATES) throw new Error('HPACK Huffman table: too many internal nodes');
        children[slot] = nodes;
        if ((code >>> bit) & 1 && onesDepth[node] >= 0) onesDepth[nodes] = onesDepth[node] + 1;
        nodes++;
      }
      node = children[slot];
    }
  }
  for (let state = 0; state < STATES; state++) {
    ACCEPTS[state] = onesDepth[state] >= 0 && onesDepth[state] <= 7 ? 1 : 0;
    for (let nibble = 0; nibble < 16; nibble++) {
      let node = state;
      let entry = 0;
      for (let bit = 3; bit >= 0; bit--) {
        const child = children[2 * node + ((nibble >>> bit) & 1)];
        if (child >= 0) {
          node = child;
          continue;
        }
        const symbol = -child - 1;
        if (symbol === EOS) {
          entry = FAIL;
          break;
        }
        entry = EMIT | (symbol << 8);
        node = 0;
      }
      TRANSITIONS[(state << 4) | nibble] = entry === FAIL ? FAIL : entry | node;
    }
  }
}

const latin1Slice = Buffer.prototype.latin1Slice as (this: Uint8Array, start: number, end: number) => string;

/** Decoded octets, reused across calls (grown when a longer string comes): the string is sliced out of it. */
let scratch = Buffer.allocUnsafe(256);

/**
 * Decodes the Huffman-coded octets `src[start, end)` to a latin1 string (one char per octet). Throws HpackError on
 * EOS in the string or padding that is not at most 7 1-bits (§5.2).
 */
export function huffmanDecode(src: Uint8Array, start: number, end: number): string {
  // The shortest code has 5 bits: at most 8 symbols in 5 octets.
  const most = Math.ceil(((end - start) * 8) / 5);
  if (most > scratch.length) scratch = Buffer.allocUnsafe(Math.max(most, 2 * scratch.length));
  const out = scratch;
  let n = 0;
  let state = 0;
  for (let i = start; i < end; i++) {
    const octet = src[i];
    let t = TRANSITIONS[(state << 4) | (octet >>> 4)];
    if (t >= EMIT) {
      if (t === FAIL) throw new HpackError('HPACK: Huffman string contains EOS');
      out[n++] = (t >>> 8) & 0xff;
    }
    t = TRANSITIONS[((t & 0xff) << 4) | (octet & 15)];
    if (t >= EMIT) {
      if (t === FAIL) throw new HpackError('HPACK: Huffman string contains EOS');
      out[n++] = (t >>> 8) & 0xff;
    }
    state = t & 0xff;
  }
  if (ACCEPTS[state] === 0) {
    throw new HpackError('HPACK: Huffman string ends in an incomplete code (padding must be at most 7 1-bits)');
  }
  return latin1Slice.call(out, 0, n);
}

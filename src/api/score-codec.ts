/**
 * Hand-written protobuf codec for the Score hot path (kvindexer.v1 ScoreRequest in, ScoreResponse out).
 *
 * The generic codec (proto-loader over protobufjs) decodes a 1,024-token request into a JS array of numbers, then
 * copies it again in toObject — more than a third of a call's cost with the GC it causes. This decoder reads the token
 * ids straight into a Uint32Array and builds the same object shape proto-loader hands over (LOADER_OPTIONS: camelCase,
 * defaults filled, `input` naming the oneof member), so everything after it is unchanged.
 *
 * Scope: it decodes every field of ScoreRequest except `chat`, `block_keys` (not the tokens-in hot path) and shapes
 * where protobufjs's behaviour is not plain protobuf (a oneof member or a sub-message given twice, a known field with
 * another wire type); for those it hands the whole buffer to the generic decoder, so the result is always what the
 * generic decoder gives. Token ids are accepted packed and unpacked (parsers must accept both), in any mix; unknown
 * fields of every wire type, groups included, are skipped.
 *
 * Malformed input (truncated varint or field, a length past the end, wire type 6/7, field number 0, an unterminated
 * group) is not thrown at grpc-js — it would answer INTERNAL — but returned as an `UndecodableRequest`, which the server
 * answers with INVALID_ARGUMENT and the message. Errors of the generic decoder are returned the same way.
 */

import { isUtf8 } from 'node:buffer';
import type { MultimodalItemMsg, ScoreRequestMsg, ScoreResponseMsg } from './messages.js';

/** A request whose bytes are not a valid message; the server answers INVALID_ARGUMENT with `message`. */
export class UndecodableRequest {
  constructor(readonly message: string) {}
}

class WireFormatError extends Error {}

/** Thrown inside the fast decoder when the generic decoder must take over (never escapes this module). */
const GENERIC = Symbol('generic decoder');

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;
const WIRE_START_GROUP = 3;
const WIRE_END_GROUP = 4;
const WIRE_FIXED32 = 5;

/** Reader over one buffer; `field` names what is being read, for error messages. */
class Reader {
  pos = 0;
  field = 'request';

  constructor(
    readonly buf: Buffer,
    public end: number,
  ) {}

  fail(problem: string): never {
    throw new WireFormatError(`${this.field}: ${problem} at byte ${this.pos}`);
  }

  /** A varint's low 32 bits (protobuf's uint32/bool reading; up to 10 bytes, the bits past 32 dropped). */
  varint32(): number {
    const buf = this.buf;
    const end = this.end;
    let pos = this.pos;
    if (pos >= end) return this.fail('truncated varint');
    let b = buf[pos++];
    let value = b & 0x7f;
    if (b < 0x80) {
      this.pos = pos;
      return value;
    }
    for (let shift = 7; shift < 35; shift += 7) {
      if (pos >= end) return this.failAt(pos, 'truncated varint');
      b = buf[pos++];
      value |= (b & 0x7f) << shift;
      if (b < 0x80) {
        this.pos = pos;
        return value >>> 0;
      }
    }
    // Bytes 6..10 carry bits 35..69: read and dropped.
    for (let i = 5; i < 10; i++) {
      if (pos >= end) return this.failAt(pos, 'truncated varint');
      if (buf[pos++] < 0x80) {
        this.pos = pos;
        return value >>> 0;
      }
    }
    return this.failAt(pos, 'varint longer than 10 bytes');
  }

  private failAt(pos: number, problem: string): never {
    this.pos = pos;
    return this.fail(problem);
  }

  /** The end of a length-delimited field that starts here (after reading its length). */
  lengthEnd(): number {
    const length = this.varint32();
    const end = this.pos + length;
    if (end > this.end) this.fail(`length ${length} runs past the end of the message (${this.end - this.pos} bytes left)`);
    return end;
  }

  string(): string {
    const end = this.lengthEnd();
    const s = end === this.pos ? '' : this.buf.toString('utf8', this.pos, end);
    this.pos = end;
    return s;
  }

  /**
   * A text field that must be UTF-8 as sent: decoding would turn bad bytes into U+FFFD and so render and hash
   * another prompt than the one the engine will refuse or see.
   */
  utf8String(): string {
    const start = this.pos;
    const end = this.lengthEnd();
    if (!isUtf8(this.buf.subarray(this.pos, end))) {
      this.pos = start;
      this.fail('is not valid UTF-8');
    }
    const s = this.buf.toString('utf8', this.pos, end);
    this.pos = end;
    return s;
  }

  double(): number {
    if (this.pos + 8 > this.end) this.fail('truncated double');
    const v = this.buf.readDoubleLE(this.pos);
    this.pos += 8;
    return v;
  }

  /** Reads a tag; returns field number × 8 + wire type, after checking both. */
  tag(): number {
    const tag = this.varint32();
    if (tag >>> 3 === 0) this.fail('field number 0');
    if ((tag & 7) > 5) this.fail(`invalid wire type ${tag & 7}`);
    return tag;
  }

  /** Skips one field of the given tag (an unknown field). */
  skip(tag: number): void {
    switch (tag & 7) {
      case WIRE_VARINT:
        this.varint32();
        return;
      case WIRE_FIXED64:
        this.advance(8);
        return;
      case WIRE_LEN:
        this.pos = this.lengthEnd();
        return;
      case WIRE_START_GROUP: {
        const field = tag >>> 3;
        for (;;) {
          if (this.pos >= this.end) this.fail(`unterminated group ${field}`);
          const inner = this.tag();
          if ((inner & 7) === WIRE_END_GROUP) {
            if (inner >>> 3 !== field) this.fail(`group ${field} closed by end group ${inner >>> 3}`);
            return;
          }
          this.skip(inner);
        }
      }
      case WIRE_END_GROUP:
        return this.fail(`end group ${tag >>> 3} without a start`);
      case WIRE_FIXED32:
        this.advance(4);
        return;
    }
  }

  private advance(n: number): void {
    if (this.pos + n > this.end) this.fail(`truncated ${n * 8}-bit field`);
    this.pos += n;
  }
}

/** Expects `wire` for a known field; another wire type is left to the generic decoder. */
function expect(tag: number, wire: number): void {
  if ((tag & 7) !== wire) throw GENERIC;
}

/**
 * Token arrays are views into shared 256 KiB slabs (as Node's Buffer pool does for small buffers): a fresh 4 KiB
 * array per call would be a malloc'd backing store each time, and V8 counts that external memory towards its GC
 * triggers. A slab is released once no request holds a view of it. Large arrays get their own buffer.
 */
const SLAB_WORDS = 64 * 1024;
const SLAB_MAX_VIEW = SLAB_WORDS / 8;
let slab = new Uint32Array(SLAB_WORDS);
let slabUsed = 0;

function tokenArray(n: number): Uint32Array {
  if (n > SLAB_MAX_VIEW) return new Uint32Array(n);
  if (slabUsed + n > SLAB_WORDS) {
    slab = new Uint32Array(SLAB_WORDS);
    slabUsed = 0;
  }
  const view = slab.subarray(slabUsed, slabUsed + n);
  slabUsed += n;
  return view;
}

/** Token ids, appended run by run (packed runs and single unpacked values, in any mix). */
class TokenSink {
  ids: Uint32Array = new Uint32Array(0);
  length = 0;

  reserve(extra: number): void {
    if (this.length + extra <= this.ids.length) return;
    const grown = tokenArray(Math.max(this.length + extra, this.ids.length * 2));
    grown.set(this.ids.subarray(0, this.length));
    this.ids = grown;
  }

  result(): Uint32Array {
    return this.length === this.ids.length ? this.ids : this.ids.subarray(0, this.length);
  }
}

function readPackedTokens(r: Reader, sink: TokenSink): void {
  const end = r.lengthEnd();
  const buf = r.buf;
  // Varints in the run = bytes without the continuation bit: one pass sizes the array exactly (branch-free: the
  // lengths of real token ids are random, and mispredicted branches cost more than the arithmetic).
  let count = 0;
  for (let p = r.pos; p < end; p++) count += 1 - (buf[p] >>> 7);
  sink.reserve(count);
  const ids = sink.ids;
  let n = sink.length;
  let p = r.pos;
  // Token ids are below 2^21 in every vocabulary: 1 to 3 bytes, decoded without branching on the length; a longer
  // varint (or one near the end of the run) goes through the checked reader.
  const inlineEnd = end - 2;
  for (;;) {
    while (p < inlineEnd) {
      const b0 = buf[p];
      const b1 = buf[p + 1];
      const b2 = buf[p + 2];
      const more0 = b0 >>> 7;
      const more1 = more0 & (b1 >>> 7);
      if ((more1 & (b2 >>> 7)) !== 0) break;
      ids[n++] = (b0 & 0x7f) | (-more0 & ((b1 & 0x7f) << 7)) | (-more1 & ((b2 & 0x7f) << 14));
      p += 1 + more0 + more1;
    }
    if (p >= end) break;
    const outer = r.end;
    r.end = end;
    r.pos = p;
    ids[n++] = r.varint32();
    p = r.pos;
    r.end = outer;
  }
  r.pos = p;
  sink.length = n;
}

function readItem(r: Reader, at: string): MultimodalItemMsg {
  const end = r.lengthEnd();
  const outer = r.end;
  r.end = end;
  const item: MultimodalItemMsg = { identifier: '', offset: 0, length: 0 };
  while (r.pos < end) {
    const tag = r.tag();
    switch (tag >>> 3) {
      case 1:
        expect(tag, WIRE_LEN);
        r.field = `${at}.identifier`;
        item.identifier = r.string();
        break;
      case 2:
        expect(tag, WIRE_VARINT);
        r.field = `${at}.offset`;
        item.offset = r.varint32();
        break;
      case 3:
        expect(tag, WIRE_VARINT);
        r.field = `${at}.length`;
        item.length = r.varint32();
        break;
      default:
        r.field = at;
        r.skip(tag);
    }
  }
  r.end = outer;
  return item;
}

/** ChatInput's string fields, by field number: each must be UTF-8 (2, 3 and 11, max_tokens, are varints). */
const CHAT_TEXT_FIELDS: Record<number, string> = {
  1: 'chat.messages_json',
  4: 'chat.chat_template_kwargs_json',
  5: 'chat.mm_processor_kwargs_json',
  6: 'chat.tools_json',
  7: 'chat.tool_choice',
  8: 'chat.documents_json',
  9: 'chat.chat_template',
  10: 'chat.reasoning_effort',
};

/** ChatInput's text fields must be UTF-8 (checked on the wire, before the generic decoder replaces bad bytes). */
function checkChatText(r: Reader): void {
  const end = r.lengthEnd();
  const outer = r.end;
  r.end = end;
  while (r.pos < end) {
    r.field = 'chat';
    const tag = r.tag();
    const field = tag >>> 3;
    const name = CHAT_TEXT_FIELDS[field] ?? null;
    if (name !== null && (tag & 7) === WIRE_LEN) {
      r.field = name;
      r.utf8String();
    } else r.skip(tag);
  }
  r.end = outer;
}

function readTokenInput(r: Reader): { tokenIds: Uint32Array; items: MultimodalItemMsg[] } {
  const end = r.lengthEnd();
  const outer = r.end;
  r.end = end;
  const sink = new TokenSink();
  const items: MultimodalItemMsg[] = [];
  while (r.pos < end) {
    r.field = 'tokens';
    const tag = r.tag();
    switch (tag >>> 3) {
      case 1:
        r.field = 'tokens.token_ids';
        if ((tag & 7) === WIRE_LEN) {
          readPackedTokens(r, sink);
        } else {
          expect(tag, WIRE_VARINT);
          sink.reserve(1);
          sink.ids[sink.length++] = r.varint32();
        }
        break;
      case 2:
        expect(tag, WIRE_LEN);
        r.field = `tokens.items[${items.length}]`;
        items.push(readItem(r, r.field));
        break;
      default:
        r.skip(tag);
    }
  }
  r.end = outer;
  return { tokenIds: sink.result(), items };
}

function readTierWeight(r: Reader, into: Record<string, number>): void {
  const end = r.lengthEnd();
  const outer = r.end;
  r.end = end;
  let key = '';
  let value = 0;
  while (r.pos < end) {
    const tag = r.tag();
    switch (tag >>> 3) {
      case 1:
        expect(tag, WIRE_LEN);
        key = r.string();
        break;
      case 2:
        expect(tag, WIRE_FIXED64);
        value = r.double();
        break;
      default:
        r.skip(tag);
    }
  }
  into[key] = value;
  r.end = outer;
}

function readSpeculate(r: Reader): { endpoint: string; ttlMs: number } {
  const end = r.lengthEnd();
  const outer = r.end;
  r.end = end;
  const speculate = { endpoint: '', ttlMs: 0 };
  while (r.pos < end) {
    const tag = r.tag();
    switch (tag >>> 3) {
      case 1:
        expect(tag, WIRE_LEN);
        r.field = 'speculate.endpoint';
        speculate.endpoint = r.string();
        break;
      case 2:
        expect(tag, WIRE_VARINT);
        r.field = 'speculate.ttl_ms';
        speculate.ttlMs = r.varint32();
        break;
      default:
        r.skip(tag);
    }
  }
  r.end = outer;
  return speculate;
}

/** The fast decoder; throws WireFormatError on malformed input and GENERIC when the generic decoder must decide. */
function decodeFast(buf: Buffer): ScoreRequestMsg {
  const r = new Reader(buf, buf.length);
  const msg: ScoreRequestMsg = {
    candidates: [],
    tierWeights: {},
    model: '',
    loraName: '',
    cacheSalt: '',
    maxBlocks: 0,
    speculate: null,
    returnBlockKeys: false,
    strict: false,
  };
  let inputs = 0;
  while (r.pos < r.end) {
    r.field = 'request';
    const tag = r.tag();
    switch (tag >>> 3) {
      case 1:
        expect(tag, WIRE_LEN);
        r.field = 'model';
        msg.model = r.string();
        break;
      case 2:
        expect(tag, WIRE_LEN);
        r.field = 'lora_name';
        msg.loraName = r.string();
        break;
      case 3:
        expect(tag, WIRE_LEN);
        r.field = 'cache_salt';
        msg.cacheSalt = r.string();
        break;
      case 5:
        expect(tag, WIRE_LEN);
        if (inputs++ > 0) throw GENERIC;
        r.field = 'prompt';
        msg.prompt = r.utf8String();
        msg.input = 'prompt';
        break;
      case 6:
        expect(tag, WIRE_LEN);
        if (inputs++ > 0) throw GENERIC;
        msg.tokens = readTokenInput(r);
        msg.input = 'tokens';
        break;
      case 4: // chat: its text checked here, the message decoded by the generic decoder
        expect(tag, WIRE_LEN);
        checkChatText(r);
        throw GENERIC;
      case 7: // block_keys
        throw GENERIC;
      case 8:
        expect(tag, WIRE_LEN);
        r.field = `candidates[${msg.candidates.length}]`;
        msg.candidates.push(r.string());
        break;
      case 9:
        expect(tag, WIRE_LEN);
        r.field = 'tier_weights';
        readTierWeight(r, msg.tierWeights);
        break;
      case 10:
        expect(tag, WIRE_VARINT);
        r.field = 'max_blocks';
        msg.maxBlocks = r.varint32();
        break;
      case 11:
        expect(tag, WIRE_LEN);
        if (msg.speculate) throw GENERIC;
        r.field = 'speculate';
        msg.speculate = readSpeculate(r);
        break;
      case 12:
        expect(tag, WIRE_VARINT);
        r.field = 'return_block_keys';
        msg.returnBlockKeys = r.varint32() !== 0;
        break;
      case 13:
        expect(tag, WIRE_VARINT);
        r.field = 'strict';
        msg.strict = r.varint32() !== 0;
        break;
      default:
        r.skip(tag);
    }
  }
  return msg;
}

/**
 * ScoreRequest bytes → the message object, or an UndecodableRequest. `generic` is proto-loader's deserializer for the
 * same message (used for what the fast path leaves to it).
 */
export function decodeScoreRequest(buf: Buffer, generic: (buf: Buffer) => unknown): ScoreRequestMsg | UndecodableRequest {
  try {
    return decodeFast(buf);
  } catch (err) {
    if (err instanceof WireFormatError) return new UndecodableRequest(`malformed ScoreRequest: ${err.message}`);
    if (err !== GENERIC) throw err;
  }
  return decodeGeneric(buf, generic as (buf: Buffer) => ScoreRequestMsg, 'ScoreRequest');
}

/**
 * A request with a chat or prompt input other than Score (ComputeBlockKeys, Render): its text fields are checked for
 * UTF-8 on the wire, then the generic decoder decodes it. `fields`: the field numbers of its chat and prompt inputs.
 */
export function decodePromptRequest<T>(buf: Buffer, generic: (buf: Buffer) => T, name: string, fields: { chat: number; prompt: number }): T | UndecodableRequest {
  try {
    const r = new Reader(buf, buf.length);
    while (r.pos < r.end) {
      r.field = 'request';
      const tag = r.tag();
      const field = tag >>> 3;
      if ((tag & 7) === WIRE_LEN && field === fields.chat) checkChatText(r);
      else if ((tag & 7) === WIRE_LEN && field === fields.prompt) {
        r.field = 'prompt';
        r.utf8String();
      } else r.skip(tag);
    }
  } catch (err) {
    if (err instanceof WireFormatError) return new UndecodableRequest(`malformed ${name}: ${err.message}`);
    throw err;
  }
  return decodeGeneric(buf, generic, name);
}

/** The generic decoder, with its errors returned as UndecodableRequest instead of thrown. */
export function decodeGeneric<T>(buf: Buffer, generic: (buf: Buffer) => T, name: string): T | UndecodableRequest {
  try {
    return generic(buf);
  } catch (err) {
    return new UndecodableRequest(`malformed ${name}: ${(err as Error).message}`);
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// ScoreResponse encoder: sizes first, then one exact buffer. Default values (0, "", false, empty) are left out, as
// proto3 encoders do; decoding gives the same message as proto-loader's encoding of the same object.

function varintSize(v: number): number {
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5;
}

function uint64Size(v: bigint): number {
  let n = 1;
  while (v >= 0x80n) {
    v >>= 7n;
    n++;
  }
  return n;
}

/** Size of a length-delimited field with a one-byte tag. */
function lenFieldSize(bytes: number): number {
  return 1 + varintSize(bytes) + bytes;
}

/** uint32 fields take the value's low 32 bits, as protobufjs's `>>> 0` does. */
function uint32FieldSize(v: number): number {
  v >>>= 0;
  return v === 0 ? 0 : 1 + varintSize(v);
}

function stringFieldSize(s: string): number {
  return s.length === 0 ? 0 : lenFieldSize(Buffer.byteLength(s));
}

class Writer {
  pos = 0;
  constructor(readonly buf: Buffer) {}

  varint(v: number): void {
    const buf = this.buf;
    while (v >= 0x80) {
      buf[this.pos++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    buf[this.pos++] = v;
  }

  uint64(v: bigint): void {
    while (v >= 0x80n) {
      this.buf[this.pos++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.pos++] = Number(v);
  }

  uint32Field(tag: number, v: number): void {
    v >>>= 0;
    if (v === 0) return;
    this.buf[this.pos++] = tag;
    this.varint(v);
  }

  doubleField(tag: number, v: number): void {
    if (v === 0 && !Object.is(v, -0)) return;
    this.buf[this.pos++] = tag;
    this.buf.writeDoubleLE(v, this.pos);
    this.pos += 8;
  }

  boolField(tag: number, v: boolean): void {
    if (!v) return;
    this.buf[this.pos++] = tag;
    this.buf[this.pos++] = 1;
  }

  stringField(tag: number, s: string): void {
    if (s.length === 0) return;
    this.buf[this.pos++] = tag;
    const at = this.pos;
    // One byte of length is the common case; move the text if the length needs more.
    const written = this.buf.write(s, at + 1, 'utf8');
    const lengthBytes = varintSize(written);
    if (lengthBytes > 1) this.buf.copy(this.buf, at + lengthBytes, at + 1, at + 1 + written);
    this.varint(written);
    this.pos += written;
  }
}

function doubleFieldSize(v: number): number {
  return v === 0 && !Object.is(v, -0) ? 0 : 9;
}

function tierEntrySize(tier: string, blocks: number): number {
  return stringFieldSize(tier) + uint32FieldSize(blocks);
}

function endpointScoreSize(s: ScoreResponseMsg['scores'][number]): number {
  let size =
    stringFieldSize(s.endpoint) +
    uint32FieldSize(s.matchedBlocks) +
    doubleFieldSize(s.weighted) +
    doubleFieldSize(s.normalized) +
    uint32FieldSize(s.speculativeBlocks);
  for (const tier in s.blocksByTier) size += lenFieldSize(tierEntrySize(tier, s.blocksByTier[tier]));
  return size;
}

function itemSize(i: ScoreResponseMsg['items'][number]): number {
  return (
    uint32FieldSize(i.offset) +
    uint32FieldSize(i.length) +
    stringFieldSize(i.identifier) +
    (i.estimated ? 2 : 0) +
    stringFieldSize(i.identifierSource) +
    stringFieldSize(i.fetchOutcome)
  );
}

function fingerprintSize(f: ScoreResponseMsg['fingerprint']): number {
  return stringFieldSize(f.scheme) + stringFieldSize(f.hashSeed) + uint32FieldSize(f.blockSize);
}

/** Encodes a ScoreResponse (the object IndexerApi.score returns) as protobuf bytes. */
export function encodeScoreResponse(msg: ScoreResponseMsg): Buffer {
  const scoreSizes = new Array<number>(msg.scores.length);
  let size = uint32FieldSize(msg.totalBlocks) + uint32FieldSize(msg.blockSize) + uint32FieldSize(msg.tokenCount);
  for (let i = 0; i < msg.scores.length; i++) size += lenFieldSize((scoreSizes[i] = endpointScoreSize(msg.scores[i])));
  for (const item of msg.items) size += lenFieldSize(itemSize(item));
  const fingerprint = msg.fingerprint ? fingerprintSize(msg.fingerprint) : -1;
  if (fingerprint >= 0) size += lenFieldSize(fingerprint);
  let keys: bigint[] | null = null;
  let keyBytes = 0;
  if (msg.blockKeys.length > 0) {
    keys = msg.blockKeys.map((k) => BigInt(k));
    for (const k of keys) keyBytes += uint64Size(k);
    size += lenFieldSize(keyBytes);
  }
  size += msg.degraded ? 2 : 0;
  size += stringFieldSize(msg.degradedReason);
  size += msg.unknownModel ? 2 : 0;

  const w = new Writer(Buffer.allocUnsafe(size));
  w.uint32Field(0x08, msg.totalBlocks);
  w.uint32Field(0x10, msg.blockSize);
  w.uint32Field(0x18, msg.tokenCount);
  for (let i = 0; i < msg.scores.length; i++) {
    const s = msg.scores[i];
    w.buf[w.pos++] = 0x22;
    w.varint(scoreSizes[i]);
    w.stringField(0x0a, s.endpoint);
    w.uint32Field(0x10, s.matchedBlocks);
    w.doubleField(0x19, s.weighted);
    w.doubleField(0x21, s.normalized);
    for (const tier in s.blocksByTier) {
      const blocks = s.blocksByTier[tier];
      w.buf[w.pos++] = 0x2a;
      w.varint(tierEntrySize(tier, blocks));
      w.stringField(0x0a, tier);
      w.uint32Field(0x10, blocks);
    }
    w.uint32Field(0x30, s.speculativeBlocks);
  }
  for (const item of msg.items) {
    w.buf[w.pos++] = 0x2a;
    w.varint(itemSize(item));
    w.uint32Field(0x08, item.offset);
    w.uint32Field(0x10, item.length);
    w.stringField(0x1a, item.identifier);
    w.boolField(0x20, item.estimated);
    w.stringField(0x2a, item.identifierSource);
    w.stringField(0x32, item.fetchOutcome);
  }
  if (fingerprint >= 0) {
    const f = msg.fingerprint;
    w.buf[w.pos++] = 0x32;
    w.varint(fingerprint);
    w.stringField(0x0a, f.scheme);
    w.stringField(0x12, f.hashSeed);
    w.uint32Field(0x18, f.blockSize);
  }
  if (keys) {
    w.buf[w.pos++] = 0x3a;
    w.varint(keyBytes);
    for (const k of keys) w.uint64(k);
  }
  w.boolField(0x40, msg.degraded);
  w.stringField(0x4a, msg.degradedReason);
  w.boolField(0x50, msg.unknownModel); // field 10, varint
  if (w.pos !== size) throw new Error(`ScoreResponse encoder: wrote ${w.pos} bytes, sized ${size}`);
  return w.buf;
}

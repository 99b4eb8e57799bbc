/**
 * The fast ScoreRequest decoder (the Score hot path). The generic codec (proto-loader over protobufjs) decodes a
 * 1,024-token request into a JS array of numbers, then copies it again in toObject — more than a third of a call's
 * cost with the GC it causes. This decoder reads the token ids straight into a Uint32Array and builds the same object
 * shape proto-loader hands over (LOADER_OPTIONS: camelCase, defaults filled, `input` naming the oneof member), so
 * everything after it is unchanged.
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
 *
 * Field numbers and tags come from the table in fields.ts, read once here at module load.
 */

import type { MultimodalItemMsg, ScoreRequestMsg } from '../messages.js';
import {
  fieldNumbers,
  fieldTags,
  MULTIMODAL_ITEM,
  SCORE_REQUEST,
  SPECULATE,
  TIER_WEIGHT_ENTRY,
  TOKEN_INPUT,
  WIRE_LEN,
} from './fields.js';
import { checkChatText } from './prompt-request.js';
import { GENERIC, Reader, WireFormatError } from './reader.js';
import { readPackedTokens, TokenSink } from './token-ids.js';
import { decodeGeneric, UndecodableRequest } from './undecodable.js';

/**
 * Expects exactly `expected` (a precomputed tag) for a known field, whose number already matched; another wire type
 * is left to the generic decoder. Local to this module, as it runs for every field: the small functions of the codec
 * measured slower when called from another module (see score-response.ts).
 */
function expectTag(tag: number, expected: number): void {
  if (tag !== expected) throw GENERIC;
}

const ITEM_N = fieldNumbers(MULTIMODAL_ITEM);
const ITEM_T = fieldTags(MULTIMODAL_ITEM);
const TOKENS_N = fieldNumbers(TOKEN_INPUT);
const TOKENS_T = fieldTags(TOKEN_INPUT);
/** token_ids given unpacked: one varint per field. */
const TOKEN_ID_UNPACKED_TAG = (TOKEN_INPUT.token_ids.number << 3) | TOKEN_INPUT.token_ids.wire;
const TIER_N = fieldNumbers(TIER_WEIGHT_ENTRY);
const TIER_T = fieldTags(TIER_WEIGHT_ENTRY);
const SPEC_N = fieldNumbers(SPECULATE);
const SPEC_T = fieldTags(SPECULATE);
const REQ_N = fieldNumbers(SCORE_REQUEST);
const REQ_T = fieldTags(SCORE_REQUEST);

/** The token-id scratch of every request (decoding is synchronous: one request at a time). */
const sink = new TokenSink();

function readItem(r: Reader, at: string): MultimodalItemMsg {
  const end = r.lengthEnd();
  const outer = r.end;
  r.end = end;
  const item: MultimodalItemMsg = { identifier: '', offset: 0, length: 0 };
  while (r.pos < end) {
    const tag = r.tag();
    switch (tag >>> 3) {
      case ITEM_N.identifier:
        expectTag(tag, ITEM_T.identifier);
        r.field = `${at}.identifier`;
        item.identifier = r.string();
        break;
      case ITEM_N.offset:
        expectTag(tag, ITEM_T.offset);
        r.field = `${at}.offset`;
        item.offset = r.varint32();
        break;
      case ITEM_N.length:
        expectTag(tag, ITEM_T.length);
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

function readTokenInput(r: Reader): { tokenIds: Uint32Array; items: MultimodalItemMsg[] } {
  const end = r.lengthEnd();
  const outer = r.end;
  r.end = end;
  sink.begin();
  const items: MultimodalItemMsg[] = [];
  while (r.pos < end) {
    r.field = 'tokens';
    const tag = r.tag();
    switch (tag >>> 3) {
      case TOKENS_N.token_ids:
        r.field = 'tokens.token_ids';
        if ((tag & 7) === WIRE_LEN) {
          readPackedTokens(r, sink);
        } else {
          expectTag(tag, TOKEN_ID_UNPACKED_TAG);
          sink.reserve(1);
          sink.ids[sink.length++] = r.varint32();
        }
        break;
      case TOKENS_N.items:
        expectTag(tag, TOKENS_T.items);
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
      case TIER_N.key:
        expectTag(tag, TIER_T.key);
        key = r.string();
        break;
      case TIER_N.value:
        expectTag(tag, TIER_T.value);
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
      case SPEC_N.endpoint:
        expectTag(tag, SPEC_T.endpoint);
        r.field = 'speculate.endpoint';
        speculate.endpoint = r.name();
        break;
      case SPEC_N.ttl_ms:
        expectTag(tag, SPEC_T.ttl_ms);
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
      case REQ_N.model:
        expectTag(tag, REQ_T.model);
        r.field = 'model';
        msg.model = r.name();
        break;
      case REQ_N.lora_name:
        expectTag(tag, REQ_T.lora_name);
        r.field = 'lora_name';
        msg.loraName = r.name();
        break;
      case REQ_N.cache_salt:
        expectTag(tag, REQ_T.cache_salt);
        r.field = 'cache_salt';
        msg.cacheSalt = r.string();
        break;
      case REQ_N.prompt:
        expectTag(tag, REQ_T.prompt);
        if (inputs++ > 0) throw GENERIC;
        r.field = 'prompt';
        msg.prompt = r.utf8String();
        msg.input = 'prompt';
        break;
      case REQ_N.tokens:
        expectTag(tag, REQ_T.tokens);
        if (inputs++ > 0) throw GENERIC;
        msg.tokens = readTokenInput(r);
        msg.input = 'tokens';
        break;
      case REQ_N.chat: // its text checked here, the message decoded by the generic decoder
        expectTag(tag, REQ_T.chat);
        checkChatText(r);
        throw GENERIC;
      case REQ_N.block_keys:
        throw GENERIC;
      case REQ_N.candidates:
        expectTag(tag, REQ_T.candidates);
        r.field = 'candidates';
        r.element = msg.candidates.length;
        msg.candidates.push(r.name());
        r.element = -1;
        break;
      case REQ_N.tier_weights:
        expectTag(tag, REQ_T.tier_weights);
        r.field = 'tier_weights';
        readTierWeight(r, msg.tierWeights);
        break;
      case REQ_N.max_blocks:
        expectTag(tag, REQ_T.max_blocks);
        r.field = 'max_blocks';
        msg.maxBlocks = r.varint32();
        break;
      case REQ_N.speculate:
        expectTag(tag, REQ_T.speculate);
        if (msg.speculate) throw GENERIC;
        r.field = 'speculate';
        msg.speculate = readSpeculate(r);
        break;
      case REQ_N.return_block_keys:
        expectTag(tag, REQ_T.return_block_keys);
        r.field = 'return_block_keys';
        msg.returnBlockKeys = r.varint32() !== 0;
        break;
      case REQ_N.strict:
        expectTag(tag, REQ_T.strict);
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
export function decodeScoreRequest(
  buf: Buffer,
  generic: (buf: Buffer) => unknown,
): ScoreRequestMsg | UndecodableRequest {
  try {
    return decodeFast(buf);
  } catch (err) {
    if (err instanceof WireFormatError) return new UndecodableRequest(`malformed ScoreRequest: ${err.message}`);
    if (err !== GENERIC) throw err;
  }
  return decodeGeneric(buf, generic as (buf: Buffer) => ScoreRequestMsg, 'ScoreRequest');
}

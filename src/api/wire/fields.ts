/**
 * The one table of protobuf field numbers and wire types the hand-written Score codec uses (kvindexer.v1, from
 * proto/kvindexer/v1/kvindexer.proto). The decoders and the encoder read field numbers and tags from here, never from
 * literals; test/unit/api/wire-fields.test.ts checks every message below against the .proto descriptors, so a field
 * added to the proto and not here, or renumbered, or given another type, fails that test.
 *
 * Every message the codec touches is listed with all of its fields, including those it leaves to the generic decoder
 * (`chat`, `block_keys`), so the test can ask for exactly the proto's fields. Keys are the proto field names.
 */

/** Protobuf wire types (encoding.md: VARINT 0, I64 1, LEN 2, SGROUP 3, EGROUP 4, I32 5). */
export const WIRE_VARINT = 0;
export const WIRE_FIXED64 = 1;
export const WIRE_LEN = 2;
export const WIRE_START_GROUP = 3;
export const WIRE_END_GROUP = 4;
export const WIRE_FIXED32 = 5;

export interface WireField {
  readonly number: number;
  /** The wire type of one value (for a repeated scalar: of one element; packed runs are LEN). */
  readonly wire: number;
  /** `repeated` in the proto; map fields are repeated entry messages. */
  readonly repeated: boolean;
}

/** A message's fields by proto name. */
export type WireMessage = Readonly<Record<string, WireField>>;

const one = (number: number, wire: number): WireField => ({ number, wire, repeated: false });
const many = (number: number, wire: number): WireField => ({ number, wire, repeated: true });

export const CHAT_INPUT = {
  messages_json: one(1, WIRE_LEN),
  add_generation_prompt: one(2, WIRE_VARINT),
  continue_final_message: one(3, WIRE_VARINT),
  chat_template_kwargs_json: one(4, WIRE_LEN),
  mm_processor_kwargs_json: one(5, WIRE_LEN),
  tools_json: one(6, WIRE_LEN),
  tool_choice: one(7, WIRE_LEN),
  documents_json: one(8, WIRE_LEN),
  chat_template: one(9, WIRE_LEN),
  reasoning_effort: one(10, WIRE_LEN),
  max_tokens: one(11, WIRE_VARINT),
} as const satisfies WireMessage;

export const MULTIMODAL_ITEM = {
  identifier: one(1, WIRE_LEN),
  offset: one(2, WIRE_VARINT),
  length: one(3, WIRE_VARINT),
} as const satisfies WireMessage;

export const TOKEN_INPUT = {
  token_ids: many(1, WIRE_VARINT),
  items: many(2, WIRE_LEN),
} as const satisfies WireMessage;

export const SPECULATE = {
  endpoint: one(1, WIRE_LEN),
  ttl_ms: one(2, WIRE_VARINT),
} as const satisfies WireMessage;

/** Fields 1–9 of ScoreRequest, which SelectRequest repeats with the same numbers: the prompt input and candidates. */
const PROMPT_REQUEST = {
  model: one(1, WIRE_LEN),
  lora_name: one(2, WIRE_LEN),
  cache_salt: one(3, WIRE_LEN),
  chat: one(4, WIRE_LEN),
  prompt: one(5, WIRE_LEN),
  tokens: one(6, WIRE_LEN),
  block_keys: one(7, WIRE_LEN),
  candidates: many(8, WIRE_LEN),
  tier_weights: many(9, WIRE_LEN),
} as const satisfies WireMessage;

export const SCORE_REQUEST = {
  ...PROMPT_REQUEST,
  max_blocks: one(10, WIRE_VARINT),
  speculate: one(11, WIRE_LEN),
  return_block_keys: one(12, WIRE_VARINT),
  strict: one(13, WIRE_VARINT),
} as const satisfies WireMessage;

/** The entry message of ScoreRequest's `map<string, double> tier_weights`. */
export const TIER_WEIGHT_ENTRY = {
  key: one(1, WIRE_LEN),
  value: one(2, WIRE_FIXED64),
} as const satisfies WireMessage;

export const ENDPOINT_SCORE = {
  endpoint: one(1, WIRE_LEN),
  matched_blocks: one(2, WIRE_VARINT),
  weighted: one(3, WIRE_FIXED64),
  normalized: one(4, WIRE_FIXED64),
  blocks_by_tier: many(5, WIRE_LEN),
  speculative_blocks: one(6, WIRE_VARINT),
  images_seen: one(7, WIRE_VARINT),
} as const satisfies WireMessage;

/** The entry message of EndpointScore's `map<string, uint32> blocks_by_tier`. */
export const BLOCKS_BY_TIER_ENTRY = {
  key: one(1, WIRE_LEN),
  value: one(2, WIRE_VARINT),
} as const satisfies WireMessage;

export const ITEM_INFO = {
  offset: one(1, WIRE_VARINT),
  length: one(2, WIRE_VARINT),
  identifier: one(3, WIRE_LEN),
  estimated: one(4, WIRE_VARINT),
  identifier_source: one(5, WIRE_LEN),
  fetch_outcome: one(6, WIRE_LEN),
} as const satisfies WireMessage;

export const FINGERPRINT = {
  scheme: one(1, WIRE_LEN),
  hash_seed: one(2, WIRE_LEN),
  block_size: one(3, WIRE_VARINT),
} as const satisfies WireMessage;

export const SCORE_RESPONSE = {
  total_blocks: one(1, WIRE_VARINT),
  block_size: one(2, WIRE_VARINT),
  token_count: one(3, WIRE_VARINT),
  scores: many(4, WIRE_LEN),
  items: many(5, WIRE_LEN),
  fingerprint: one(6, WIRE_LEN),
  block_keys: many(7, WIRE_VARINT),
  degraded: one(8, WIRE_VARINT),
  degraded_reason: one(9, WIRE_LEN),
  unknown_model: one(10, WIRE_VARINT),
} as const satisfies WireMessage;

/** Other requests with chat/prompt text (checked for UTF-8 on the wire before the generic decoder). */
export const COMPUTE_BLOCK_KEYS_REQUEST = {
  model: one(1, WIRE_LEN),
  lora_name: one(2, WIRE_LEN),
  cache_salt: one(3, WIRE_LEN),
  chat: one(4, WIRE_LEN),
  prompt: one(5, WIRE_LEN),
  tokens: one(6, WIRE_LEN),
} as const satisfies WireMessage;

export const RENDER_REQUEST = {
  model: one(1, WIRE_LEN),
  chat: one(2, WIRE_LEN),
  prompt: one(3, WIRE_LEN),
} as const satisfies WireMessage;

/** Select carries ScoreRequest's prompt input (chat and prompt text checked for UTF-8 on the wire, as Score's). */
export const SELECT_REQUEST = {
  ...PROMPT_REQUEST,
  policy: one(10, WIRE_LEN),
  reserve: one(11, WIRE_VARINT),
  expected_output_tokens: one(12, WIRE_VARINT),
  reservation_ttl_ms: one(13, WIRE_VARINT),
} as const satisfies WireMessage;

/**
 * Every message above by its full proto name; a map's entry message is named `<Message>.<field>` (its proto type is
 * synthesized from the map field, so it has no name of its own to check against).
 */
export const WIRE_MESSAGES: Readonly<Record<string, WireMessage>> = {
  'kvindexer.v1.ChatInput': CHAT_INPUT,
  'kvindexer.v1.MultimodalItem': MULTIMODAL_ITEM,
  'kvindexer.v1.TokenInput': TOKEN_INPUT,
  'kvindexer.v1.Speculate': SPECULATE,
  'kvindexer.v1.ScoreRequest': SCORE_REQUEST,
  'kvindexer.v1.ScoreRequest.tier_weights': TIER_WEIGHT_ENTRY,
  'kvindexer.v1.EndpointScore': ENDPOINT_SCORE,
  'kvindexer.v1.EndpointScore.blocks_by_tier': BLOCKS_BY_TIER_ENTRY,
  'kvindexer.v1.ItemInfo': ITEM_INFO,
  'kvindexer.v1.Fingerprint': FINGERPRINT,
  'kvindexer.v1.ScoreResponse': SCORE_RESPONSE,
  'kvindexer.v1.ComputeBlockKeysRequest': COMPUTE_BLOCK_KEYS_REQUEST,
  'kvindexer.v1.RenderRequest': RENDER_REQUEST,
  'kvindexer.v1.SelectRequest': SELECT_REQUEST,
};

// --- derived once at module load (the codec's hot loops read plain numbers) ----------------------------------------

/** A message's field numbers by name. */
export function fieldNumbers<M extends WireMessage>(message: M): { readonly [K in keyof M]: number } {
  const out: Record<string, number> = {};
  for (const [name, f] of Object.entries(message)) out[name] = f.number;
  return out as { [K in keyof M]: number };
}

/** A message's tags by name: field number × 8 + wire type, packed (LEN) for repeated scalars. */
export function fieldTags<M extends WireMessage>(message: M): { readonly [K in keyof M]: number } {
  const out: Record<string, number> = {};
  for (const [name, f] of Object.entries(message)) {
    const packed = f.repeated && f.wire !== WIRE_LEN; // proto3 packs repeated scalars
    out[name] = (f.number << 3) | (packed ? WIRE_LEN : f.wire);
  }
  return out as { [K in keyof M]: number };
}

/**
 * fieldTags for the encoder, which writes a tag as one byte and sizes a field with one tag byte: a field numbered past
 * 15 fails here, at module load, not on the wire.
 */
export function oneByteTags<M extends WireMessage>(message: M): { readonly [K in keyof M]: number } {
  const tags = fieldTags(message);
  for (const [name, tag] of Object.entries(tags)) {
    if (tag >= 0x80) throw new Error(`wire table: field ${name} = ${tag >>> 3} needs a tag of more than one byte`);
  }
  return tags;
}

/**
 * Stable reason codes of the decoder. Metrics pre-register them as label values, so they only ever grow.
 * `bad_msgpack` and `bad_batch` reject a whole payload (PayloadError); the others reject one event (DecodeIssue).
 */
import { IndexerError } from '../../common/index.js';
export const DECODE_REASONS = [
  'bad_msgpack',
  'bad_batch',
  'bad_event',
  'unknown_tag',
  'missing_field',
  'bad_field_type',
  'bad_hash',
  'bad_extra_keys',
  'bad_token_ids',
  /** SGLang speculative-decoding `token_ids` pairs that are not `[token, next]` lists chaining into one sequence. */
  'bad_token_pairs',
  /** `locality` other than LOCAL / REMOTE / nil: whose block it is cannot be told. */
  'unknown_locality',
  /** TensorRT-LLM `mm_keys` on a block: its multimodal identity has no agreed mapping to request keys yet. */
  'unsupported_mm_keys',
] as const;

export type DecodeReason = (typeof DECODE_REASONS)[number];

/** The whole payload is unusable (not msgpack, trailing bytes, not a batch). Nothing of it may be applied. */
export class PayloadError extends IndexerError {
  constructor(
    readonly reason: DecodeReason,
    /** Which part of the batch is wrong (`ts`, `events`, `data_parallel_rank`, `batch`); empty for bad msgpack. */
    field: string,
    message: string,
  ) {
    super('invalid_argument', field, message);
  }
}

/**
 * One value is unusable. Inside the decoder it rejects the event that holds it (and becomes a DecodeIssue);
 * `normaliseHash` throws it to its callers as well.
 */
export class FieldError extends IndexerError {
  constructor(
    readonly reason: DecodeReason,
    /** Full path of the value, e.g. `events[3].block_hashes[2]`. */
    field: string,
    /** What was expected and what was found, e.g. `expected int or bytes, got string`. */
    message: string,
  ) {
    super('invalid_argument', field, message);
  }
}

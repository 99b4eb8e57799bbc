/**
 * The msgpack decoder of the write path: one ZMQ payload (vLLM or SGLang) → a normalised EventBatch.
 */
export { decodeEventBatch, type WireFormat } from './batch.js';
export { DECODE_REASONS, FieldError, PayloadError, type DecodeReason } from './errors.js';
export { normaliseHash } from './hash.js';

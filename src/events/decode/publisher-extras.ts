import { FieldError } from './errors.js';
import { fieldPath } from './paths.js';
import { expected } from './wire-values.js';

/**
 * Shapes other publishers put on the vLLM wire (spec/vllm-kv-events.md §6), read by the vLLM decoder.
 *
 * SGLang ≥ 0.5.18: `BlockStoredWithMetadata` shares the `BlockStored` tag and appends a `metadata` struct
 * (`BlockStoredMetadata`, a map: `cache_salt`, and `session_id` in later versions) after `medium`
 * (sgl-project/sglang python/sglang/srt/disaggregation/kv_events.py). Its events are positional arrays, so the map
 * lands at position 7, where vLLM has `lora_name`; a map there is SGLang's metadata, never a LoRA name.
 */
export interface SglangMetadata {
  cacheSalt: string | null;
}

export function readSglangMetadata(value: Record<string, unknown>, ev: number, name: string): SglangMetadata {
  const salt = value.cache_salt;
  if (salt !== null && salt !== undefined && typeof salt !== 'string') {
    throw new FieldError('bad_field_type', fieldPath(ev, `${name}.cache_salt`), expected('string or nil', salt));
  }
  // session_id is request context, not part of the block's identity: read by nobody.
  return { cacheSalt: salt ?? null };
}

/**
 * TensorRT-LLM's streaming publisher (NVIDIA/TensorRT-LLM tensorrt_llm/_torch/pyexecutor/kv_cache_events.py) sends
 * map-form events with the vLLM keys plus `mm_keys`: per block a list of `{hash (hex), start_offset, uuid?}` when
 * multimodal decoding is on. How those hashes and offsets relate to the identifiers a picker sends is not defined
 * anywhere we can cite, and indexing such a block as plain text would match text-only prompts wrongly: an event
 * with any non-empty `mm_keys` is refused (`unsupported_mm_keys`). Absent, nil, or all-empty lists are fine.
 */
export function refuseMultimodalKeys(value: unknown, ev: number): void {
  if (value === null || value === undefined) return;
  if (!Array.isArray(value))
    throw new FieldError('bad_field_type', fieldPath(ev, 'mm_keys'), expected('array or nil', value));
  for (let i = 0; i < value.length; i++) {
    const block: unknown = value[i];
    if (block === null || (Array.isArray(block) && block.length === 0)) continue;
    if (!Array.isArray(block))
      throw new FieldError('bad_field_type', fieldPath(ev, 'mm_keys', i), expected('array or nil', block));
    throw new FieldError(
      'unsupported_mm_keys',
      fieldPath(ev, 'mm_keys', i),
      `block ${i} carries ${block.length} TensorRT-LLM multimodal key(s); such blocks are not indexed`,
    );
  }
}

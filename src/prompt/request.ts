import { invalid } from './errors.js';
import type { ImageKwargs } from './image-rules.js';
import { toPlain } from './py-json.js';
import { parsePyObject, pyFromJs, type KwargValue } from './py-value.js';

/**
 * A prompt request as JSON (OpenAI/vLLM field names): exactly one of `messages` (chat), `prompt` (completion text, or
 * token ids) or `prompt_token_ids` (tokens in, with `mm_items` placeholder ranges already expanded).
 */
export interface PromptRequest {
  model: string;
  /** LoRA adapter (alternatively, the adapter's name as `model`). */
  lora?: string | null;
  /**
   * The API's lora_name (the key root there): not checked against the registry's adapters, used only for vLLM's
   * tower-connector identifier prefix when `lora` does not name the adapter.
   */
  lora_name?: string;
  messages?: unknown[];
  prompt?: string | number[];
  prompt_token_ids?: number[];
  mm_items?: { offset: number; length: number; identifier: string; estimated?: boolean }[];
  add_generation_prompt?: boolean;
  continue_final_message?: boolean;
  chat_template_kwargs?: Record<string, unknown>;
  tools?: unknown[];
  /** "none" | "auto" | "required" | {"type": "function", "function": {"name": ...}}. */
  tool_choice?: unknown;
  documents?: Record<string, string>[];
  /** The request's own template (only for models with trustRequestChatTemplate). */
  chat_template?: string;
  reasoning_effort?: string;
  add_special_tokens?: boolean;
  mm_processor_kwargs?: ImageKwargs & Record<string, unknown>;
  /**
   * The same kwargs as JSON text (the gRPC ChatInput field): when present, vLLM's image identifier is computed from it
   * with Python's typing (`2.0` stays a float, key order as written). `mm_processor_kwargs` still sets token counts.
   */
  mm_processor_kwargs_json?: string;
  /** vLLM 0.16's image identifier depends on them (spec/vllm-mm-hash.md §4). */
  max_tokens?: number | null;
  max_completion_tokens?: number | null;
  cache_salt?: string | null;
}

export const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

export function optionalBool(v: unknown, field: string, dflt: boolean): boolean {
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'boolean') throw invalid(field, 'must be a boolean');
  return v;
}

export function tokenIds(v: unknown, field: string): Uint32Array {
  if (!Array.isArray(v)) throw invalid(field, 'must be an array of token ids');
  const out = new Uint32Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const t: unknown = v[i];
    if (typeof t !== 'number' || !Number.isInteger(t) || t < 0 || t > 0xffffffff)
      throw invalid(`${field}[${i}]`, 'must be a uint32 token id');
    out[i] = t;
  }
  return out;
}

export function imageKwargs(v: unknown): ImageKwargs | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) throw invalid('mm_processor_kwargs', 'must be an object');
  const out: ImageKwargs = {};
  for (const key of ['min_pixels', 'max_pixels', 'max_soft_tokens'] as const) {
    const x = v[key];
    if (x === undefined) continue;
    if (typeof x !== 'number' || !Number.isInteger(x) || x <= 0)
      throw invalid(`mm_processor_kwargs.${key}`, 'must be a positive integer');
    out[key] = x;
  }
  if (v.size !== undefined) {
    if (!isObject(v.size)) throw invalid('mm_processor_kwargs.size', 'must be an object');
    out.size = {};
    for (const key of ['shortest_edge', 'longest_edge'] as const) {
      const x = v.size[key];
      if (x === undefined) continue;
      if (typeof x !== 'number' || !Number.isInteger(x) || x <= 0)
        throw invalid(`mm_processor_kwargs.size.${key}`, 'must be a positive integer');
      out.size[key] = x;
    }
  }
  return out;
}

export function optionalCount(v: unknown, field: string): number | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw invalid(field, 'must be a non-negative integer');
  return v;
}

/** Keys vLLM passes to hash_kwargs itself; a request kwarg of the same name makes the engine fail. */
const RESERVED_KWARGS = new Set(['model_id', 'image']);

/** The request's mm_processor_kwargs as vLLM's hasher sees them: from the JSON text when given, else the object. */
export function hashKwargs(json: unknown, object: unknown): [string, KwargValue][] {
  let entries: [string, KwargValue][];
  if (typeof json === 'string' && json.trim() !== '') entries = parsePyObject(json, 'mm_processor_kwargs');
  else if (object === undefined || object === null) return [];
  else {
    const v = pyFromJs(object, 'mm_processor_kwargs');
    if (v.t !== 'dict') throw invalid('mm_processor_kwargs', 'must be an object');
    entries = v.v;
  }
  for (const [key] of entries) {
    if (RESERVED_KWARGS.has(key))
      throw invalid(`mm_processor_kwargs.${key}`, 'is reserved (vLLM passes it to its hasher itself)');
  }
  return entries;
}

/**
 * ChatInput.max_tokens from an OpenAI request body: vLLM's `max_completion_tokens or max_tokens` (Python `or`: an unset
 * or zero max_completion_tokens falls through to max_tokens). Only vLLM 0.16.x image identifiers depend on it.
 */
export function maxTokensOf(body: Record<string, unknown>): number | undefined {
  for (const field of ['max_completion_tokens', 'max_tokens']) {
    const v = toPlain(body[field]);
    if (v === undefined || v === null) continue;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff)
      throw invalid(field, `${field} must be a non-negative integer`);
    if (v > 0) return v;
  }
  return undefined;
}

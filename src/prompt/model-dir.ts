import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PromptError } from './errors.js';

/** The JSON files of a Hugging Face model directory that rendering and image rules need (tokenizer.json aside). */
export interface ModelFiles {
  dir: string;
  tokenizerConfig: Record<string, unknown>;
  config: Record<string, unknown>;
  preprocessor: Record<string, unknown>;
  /** The chat template source and where it came from, or null when the directory has none. */
  chatTemplate: { source: string; from: string } | null;
  toolChatTemplate: string | null;
}

function readJson(dir: string, name: string, required: boolean): Record<string, unknown> {
  const path = join(dir, name);
  if (!existsSync(path)) {
    if (required) throw new PromptError('failed_precondition', `model directory has no ${name}`, dir);
    return {};
  }
  try {
    const value: unknown = JSON.parse(readFileSync(path, 'utf8'));
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not a JSON object');
    return value as Record<string, unknown>;
  } catch (err) {
    throw new PromptError('failed_precondition', `cannot read ${name}: ${(err as Error).message}`, dir);
  }
}

/**
 * Reads a model directory. Chat template precedence follows transformers/vLLM: the processor's `chat_template.jinja`,
 * then `chat_template.json`, then `tokenizer_config.json` `chat_template` (a string, or a list of named templates
 * where "default" is used and "tool_use" when the request has tools).
 */
export function readModelDir(dir: string): ModelFiles {
  if (!existsSync(join(dir, 'tokenizer.json'))) {
    throw new PromptError('failed_precondition', 'model directory has no tokenizer.json', dir);
  }
  const tokenizerConfig = readJson(dir, 'tokenizer_config.json', false);
  const config = readJson(dir, 'config.json', false);
  const preprocessor = readJson(dir, 'preprocessor_config.json', false);
  let chatTemplate: ModelFiles['chatTemplate'] = null;
  let toolChatTemplate: string | null = null;
  const jinjaPath = join(dir, 'chat_template.jinja');
  if (existsSync(jinjaPath)) {
    chatTemplate = { source: readFileSync(jinjaPath, 'utf8'), from: 'chat_template.jinja' };
  } else {
    const json = readJson(dir, 'chat_template.json', false);
    if (typeof json.chat_template === 'string')
      chatTemplate = { source: json.chat_template, from: 'chat_template.json' };
  }
  const fromTokenizer = tokenizerConfig.chat_template;
  if (typeof fromTokenizer === 'string') {
    chatTemplate ??= { source: fromTokenizer, from: 'tokenizer_config.json' };
  } else if (Array.isArray(fromTokenizer)) {
    const named = new Map<string, string>();
    for (const t of fromTokenizer as { name?: unknown; template?: unknown }[]) {
      if (typeof t?.name === 'string' && typeof t.template === 'string') named.set(t.name, t.template);
    }
    const def = named.get('default');
    if (def !== undefined) chatTemplate ??= { source: def, from: 'tokenizer_config.json (default)' };
    toolChatTemplate = named.get('tool_use') ?? null;
  }
  return { dir, tokenizerConfig, config, preprocessor, chatTemplate, toolChatTemplate };
}

/** A special-token value of tokenizer_config.json: a string or an AddedToken dict ({content: …}). */
export function tokenString(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') {
    return (value as { content: string }).content;
  }
  return null;
}

/** The special tokens transformers passes to chat templates (`bos_token`, `eos_token`, …). */
export function specialTokensMap(tokenizerConfig: Record<string, unknown>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const key of ['bos_token', 'eos_token', 'unk_token', 'sep_token', 'pad_token', 'cls_token', 'mask_token']) {
    const s = tokenString(tokenizerConfig[key]);
    if (s !== null) out[key] = s;
  }
  const extra = tokenizerConfig.additional_special_tokens;
  if (Array.isArray(extra))
    out.additional_special_tokens = extra.map(tokenString).filter((s): s is string => s !== null);
  return out;
}

/** config.json's top-level model_type (the multimodal wrapper's type, e.g. qwen2_vl or gemma3). */
export function modelType(config: Record<string, unknown>): string | null {
  return typeof config.model_type === 'string' ? config.model_type : null;
}

export function numberField(obj: Record<string, unknown>, ...path: string[]): number | undefined {
  let v: unknown = obj;
  for (const p of path) {
    if (!v || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[p];
  }
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

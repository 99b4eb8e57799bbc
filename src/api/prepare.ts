import { blockExtras, type BlockHasher } from '../keys/index.js';
import { ERROR_CODES, IndexerError } from '../common/index.js';
import { ApiError, invalid } from './errors.js';
import { parsePyJson } from '../prompt/index.js';
import type { ChatInputMsg, PromptFields } from './messages.js';
import type { Cancellation, PromptFrontend, PromptItem } from './prompt-frontend.js';
import { checkItems, checkModel, checkTokens, checkUtf8, parseBlockKeys, parseJsonField } from './validate.js';

export type InputKind = 'chat' | 'prompt' | 'tokens' | 'block_keys';

/** A request's prompt, turned into what scoring needs. */
export interface PreparedPrompt {
  kind: InputKind;
  /** Rendered text (chat/prompt input only). */
  text: string;
  tokenIds: Uint32Array | null;
  tokenCount: number;
  items: PromptItem[];
  keys: BigUint64Array;
}

export interface PrepareContext {
  hasher: BlockHasher;
  prompts: PromptFrontend | null;
  maxPromptTokens: number;
  /** Multimodal items a tokens request may carry. */
  maxItems: number;
}

/** Renders/tokenizes (chat, prompt), validates (tokens, keys) and hashes a request's prompt into block keys. */
export async function preparePrompt(
  ctx: PrepareContext,
  req: PromptFields,
  signal?: Cancellation,
  allowKeys = true,
): Promise<PreparedPrompt> {
  if (req.input === 'tokens') return prepareTokens(ctx, req);
  const model = checkModel(req.model);
  const chainModel = req.loraName ? checkModel(req.loraName, 'lora_name') : model;
  const salt = req.cacheSalt ? checkUtf8('cache_salt', req.cacheSalt) : null;
  const B = ctx.hasher.blockSize;
  switch (req.input) {
    case 'blockKeys': {
      if (!allowKeys) throw invalid('block_keys', 'is not accepted by this call');
      const keys = parseBlockKeys('block_keys.keys', req.blockKeys?.keys ?? [], Math.floor(ctx.maxPromptTokens / B));
      return { kind: 'block_keys', text: '', tokenIds: null, tokenCount: keys.length * B, items: [], keys };
    }
    case 'chat':
    case 'prompt': {
      const frontend = ctx.prompts;
      if (!frontend) throw new ApiError('not_found', 'model', `no models are loaded, so "${model}" cannot be rendered`);
      const input =
        req.input === 'prompt'
          ? { kind: 'prompt' as const, text: req.prompt ?? '' }
          : {
              kind: 'chat' as const,
              ...chatTemplateFields(req.chat),
              addGenerationPrompt: req.chat?.addGenerationPrompt ?? undefined,
              continueFinalMessage: req.chat?.continueFinalMessage ?? false,
              mmProcessorKwargs: objectField('chat.mm_processor_kwargs_json', req.chat?.mmProcessorKwargsJson ?? ''),
              mmProcessorKwargsJson: req.chat?.mmProcessorKwargsJson || undefined,
              lora: req.loraName || undefined,
              maxTokens: req.chat?.maxTokens ?? undefined,
            };
      if (input.kind === 'chat' && input.messages === undefined) throw invalid('chat.messages_json', 'is required');
      // JSON null would reach the prompt pipeline as "no messages" and be reported without a field.
      if (input.kind === 'chat' && input.messages === null)
        throw invalid('chat.messages_json', 'must be a JSON array of messages, not null');
      const rendered = await frontend.render(model, input, signal).catch(rethrowAsApiError);
      if (rendered.tokenIds.length > ctx.maxPromptTokens) {
        throw new ApiError(
          'resource_exhausted',
          req.input,
          `${rendered.tokenIds.length} tokens, at most ${ctx.maxPromptTokens}`,
        );
      }
      const keys = ctx.hasher.keysFor(
        chainModel,
        rendered.tokenIds,
        blockExtras(rendered.items, rendered.tokenIds.length, B, salt),
      );
      return {
        kind: req.input,
        text: rendered.text,
        tokenIds: rendered.tokenIds,
        tokenCount: rendered.tokenIds.length,
        items: rendered.items,
        keys,
      };
    }
    default:
      throw invalid('input', 'one of chat, prompt, tokens or block_keys is required');
  }
}

/**
 * A tokens-in request's prompt, synchronously: validation and hashing, nothing that waits. The Score path's direct
 * route (indexer-api.ts) calls it without a promise; preparePrompt answers tokens input through it too, so both give
 * the same keys and the same errors in the same order (model, lora_name, cache_salt, tokens, items).
 */
export function prepareTokens(ctx: PrepareContext, req: PromptFields): PreparedPrompt {
  const model = checkModel(req.model);
  const chainModel = req.loraName ? checkModel(req.loraName, 'lora_name') : model;
  const salt = req.cacheSalt ? checkUtf8('cache_salt', req.cacheSalt) : null;
  const B = ctx.hasher.blockSize;
  const tokenIds = checkTokens('tokens.token_ids', req.tokens?.tokenIds ?? [], ctx.maxPromptTokens);
  const given = req.tokens?.items ?? [];
  const items =
    given.length === 0
      ? []
      : checkItems('tokens.items', given, tokenIds.length, { maxItems: ctx.maxItems, blockSize: B });
  const keys = ctx.hasher.keysFor(chainModel, tokenIds, blockExtras(items, tokenIds.length, B, salt));
  return {
    kind: 'tokens',
    text: '',
    tokenIds,
    tokenCount: tokenIds.length,
    items: items.length === 0 ? [] : items.map(callerItem),
    keys,
  };
}

function callerItem(i: { identifier: string; offset: number; length: number }): PromptItem {
  return { ...i, estimated: false, identifierSource: 'caller' };
}

/**
 * The chat fields whose JSON reaches the template, parsed as vLLM's Python parses them (parsePyJson: key order and
 * number kinds kept). Any of them malformed: INVALID_ARGUMENT naming it, before anything renders.
 */
function chatTemplateFields(chat: ChatInputMsg | null | undefined) {
  const tools = pyJsonField('chat.tools_json', chat?.toolsJson ?? '');
  if (tools !== undefined && !Array.isArray(tools)) throw invalid('chat.tools_json', 'must be a JSON array of tools');
  const documents = pyJsonField('chat.documents_json', chat?.documentsJson ?? '');
  if (documents !== undefined && !Array.isArray(documents))
    throw invalid('chat.documents_json', 'must be a JSON array of objects');
  const kwargs = pyJsonField('chat.chat_template_kwargs_json', chat?.chatTemplateKwargsJson ?? '');
  if (kwargs !== undefined && !(kwargs instanceof Map))
    throw invalid('chat.chat_template_kwargs_json', 'must be a JSON object');
  const choice = (chat?.toolChoice ?? '').trim();
  return {
    messages: pyJsonField('chat.messages_json', chat?.messagesJson ?? ''),
    chatTemplateKwargs: kwargs,
    tools,
    documents,
    // A bare word ("auto") or JSON (a named choice, or a quoted word).
    toolChoice: choice === '' ? undefined : /^[{"]/.test(choice) ? pyJsonField('chat.tool_choice', choice) : choice,
    chatTemplate: chat?.chatTemplate || undefined,
    reasoningEffort: chat?.reasoningEffort || undefined,
  };
}

function pyJsonField(field: string, text: string): unknown {
  if (text === '') return undefined;
  try {
    return parsePyJson(text);
  } catch (err) {
    throw invalid(field, `is not valid JSON: ${(err as Error).message}`);
  }
}

function objectField(field: string, text: string): Record<string, unknown> | undefined {
  const value = parseJsonField(field, text);
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw invalid(field, 'must be a JSON object');
  return value as Record<string, unknown>;
}

/**
 * Errors from the prompt pipeline are IndexerErrors (src/common/errors.ts) and pass as they are; those that crossed a
 * worker thread arrive as plain objects with {code, field, message} and are rebuilt; anything else is a bug (internal).
 */
function rethrowAsApiError(err: unknown): never {
  if (err instanceof IndexerError) throw err;
  const e = err as { code?: unknown; field?: unknown; message?: unknown };
  if (typeof e?.code === 'string' && (ERROR_CODES as readonly string[]).includes(e.code)) {
    const field = typeof e.field === 'string' ? e.field : '';
    let message = String(e.message ?? e.code);
    // The prompt pipeline already prefixes its message with the field; ApiError adds it again.
    if (field && message.startsWith(`${field}: `)) message = message.slice(field.length + 2);
    throw new ApiError(e.code as ApiError['code'], field, message);
  }
  throw err;
}

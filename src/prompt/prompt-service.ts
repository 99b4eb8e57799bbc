import { BlockHasher, blockExtras, type BlockExtra, type KeySchemeConfig } from '../keys/index.js';
import { chatTemplateInputs } from './chat-inputs.js';
import { invalid, PromptError } from './errors.js';
import { expandPlaceholders } from './expand.js';
import { DEFAULT_FETCH_OPTIONS, ImageFetcher, type ImageFetchOptions, type PendingFetches } from './image-fetch.js';
import { checkHashAlgorithm, resolveImage, type ImageContext, type ResolvedImage } from './images.js';
import { imageParts, MAX_IDENTIFIER_LENGTH, normalizeMessages } from './messages.js';
import { asRecord, MAX_JSON_DEPTH, nestedDeeperThan, stringifyPyJson, toPlain } from './py-json.js';
import type { RegistryConfig } from './model-config.js';
import type { PendingCacheWrites } from './model-tokenizer.js';
import { ModelRegistry, type LoadedModel } from './registry.js';
import { renderChat } from './render.js';
import {
  hashKwargs,
  imageKwargs,
  isObject,
  optionalBool,
  optionalCount,
  tokenIds,
  type PromptRequest,
} from './request.js';
import type { TokenizeSignal, TokenizerPool } from './tokenizer-pool.js';

/** One multimodal item of a prepared prompt: its placeholder range and identifier. */
export interface PromptItem {
  offset: number;
  length: number;
  identifier: string;
  /** The image size was assumed (http URL without width/height): the token count may be wrong. */
  estimated: boolean;
  /** Request path of the image (absent for tokens-in items). */
  field?: string;
  width?: number | null;
  height?: number | null;
  identifierSource?: ResolvedImage['identifierSource'];
  /** http(s) images: fetched, cached, or why not fetched (absent for data URLs and tokens-in items). */
  fetchOutcome?: ResolvedImage['fetchOutcome'];
}

export interface PreparedPrompt {
  kind: 'chat' | 'completion' | 'tokens';
  /** The served (base) model. */
  model: string;
  lora: string | null;
  /** The name that roots the keys: the LoRA adapter when there is one, else the model. */
  keyModel: string;
  /** The rendered prompt text (null for tokens in). */
  text: string | null;
  tokenIds: Uint32Array;
  items: PromptItem[];
  cacheSalt: string | null;
}

export interface RequestKeys extends PreparedPrompt {
  blockSize: number;
  extras: BlockExtra[] | null;
  blockKeys: BigUint64Array;
}

export interface PromptStats {
  cacheEntries: number;
  cacheBytes: number;
  /** Text chunks served from the cache / tokenized by a worker. */
  cacheHits: number;
  cacheMisses: number;
  workers: number;
  workerRespawns: number;
  /** Fetched image bodies cached by URL. */
  fetchCacheEntries: number;
  fetchCacheBytes: number;
  /** Characters handed to the tokenizer pool / whose tokenization a worker finished. */
  tokenizeRequestedChars: number;
  tokenizedChars: number;
  /** Tokenizations dropped because the call was cancelled: still queued / while a worker ran them (worker replaced). */
  tokenizeCancelledQueued: number;
  tokenizeCancelledRunning: number;
  /** Tokenizations stopped at the budget (resource_exhausted). */
  tokenizeOverBudget: number;
}

export interface PromptServiceOptions {
  registry: RegistryConfig;
  keys: KeySchemeConfig;
  /** Directory relative model dirs are resolved from (default: cwd). */
  baseDir?: string;
  /** Share a pool (tests, several services); the service then does not close it. */
  pool?: TokenizerPool;
  /** http(s) image fetching (config images.fetch); default: disabled. */
  fetch?: ImageFetchOptions;
}

/** Request fields whose JSON reaches the chat template: parsed with parsePyJson, they keep their order and numbers. */
const TEMPLATE_FIELDS = new Set(['messages', 'tools', 'tool_choice', 'documents', 'chat_template_kwargs']);

/**
 * A request as a record: a plain object as given, or a parsed JSON object (a Map from parsePyJson) whose other fields
 * become plain values (token ids, kwargs for the image processor…).
 */
function requestFields(input: unknown): Record<string, unknown> {
  const rec = asRecord(input);
  if (!rec) throw invalid(undefined, 'the request must be a JSON object');
  if (!(input instanceof Map)) {
    // Parsed JSON text is bounded by its parser; objects given as such get the same bound here.
    for (const [key, value] of Object.entries(rec)) {
      if (nestedDeeperThan(value, MAX_JSON_DEPTH)) throw invalid(key, `nested deeper than ${MAX_JSON_DEPTH} levels`);
    }
    return rec;
  }
  const out = Object.fromEntries(Object.entries(rec).map(([k, v]) => [k, TEMPLATE_FIELDS.has(k) ? v : toPlain(v)]));
  // vLLM's image identifier hashes the kwargs as Python typed them (`2.0` a float, key order as written): keep that
  // as JSON text, which hashKwargs prefers over the plain object (which still sets token counts).
  const kwargs = input.get('mm_processor_kwargs');
  if (kwargs instanceof Map && out.mm_processor_kwargs_json === undefined)
    out.mm_processor_kwargs_json = stringifyPyJson(kwargs);
  return out;
}

/**
 * The read path's front half: request → rendered prompt → token ids with expanded image placeholders → per-block
 * extra features → request keys (spec/multimodal.md, spec/block-keys.md). A failed request caches nothing.
 */
export class PromptService {
  private constructor(
    readonly registry: ModelRegistry,
    readonly hasher: BlockHasher,
    readonly fetcher: ImageFetcher,
  ) {}

  static async create(options: PromptServiceOptions): Promise<PromptService> {
    const hasher = new BlockHasher(options.keys);
    const registry = await ModelRegistry.load(options.registry, { baseDir: options.baseDir, pool: options.pool });
    try {
      checkHashAlgorithm(registry.config.identifierHash);
    } catch (err) {
      await registry.close();
      throw err;
    }
    return new PromptService(registry, hasher, new ImageFetcher(options.fetch ?? DEFAULT_FETCH_OPTIONS));
  }

  models(): string[] {
    return this.registry.names();
  }

  /** Counters for metrics: tokenization cache use and tokenizer worker health. */
  stats(): PromptStats {
    const cache = this.registry.cache;
    return {
      cacheEntries: cache?.size ?? 0,
      cacheBytes: cache?.usedBytes ?? 0,
      cacheHits: cache?.hits ?? 0,
      cacheMisses: cache?.misses ?? 0,
      workers: this.registry.pool.size,
      workerRespawns: this.registry.pool.respawns,
      fetchCacheEntries: this.fetcher.cacheEntries,
      fetchCacheBytes: this.fetcher.cacheBytes,
      tokenizeRequestedChars: this.registry.pool.encodedChars,
      tokenizedChars: this.registry.pool.counters.completedChars,
      tokenizeCancelledQueued: this.registry.pool.counters.cancelledQueued,
      tokenizeCancelledRunning: this.registry.pool.counters.cancelledRunning,
      tokenizeOverBudget: this.registry.pool.counters.overBudget,
    };
  }

  /** Renders and tokenizes; with `signal`, a call cancelled meanwhile stops its tokenization (tokenizer-pool.ts). */
  async prepare(input: PromptRequest | unknown, signal?: TokenizeSignal): Promise<PreparedPrompt> {
    const request = requestFields(input);
    const { model, lora, keyModel } = this.registry.resolve(request.model, request.lora);
    const salt = request.cache_salt;
    if (salt !== undefined && salt !== null && (typeof salt !== 'string' || salt.length === 0))
      throw invalid('cache_salt', 'must be a non-empty string');
    const cacheSalt = (salt as string | null | undefined) ?? null;
    const given = (['messages', 'prompt', 'prompt_token_ids'] as const).filter(
      (k) => request[k] !== undefined && request[k] !== null,
    );
    if (given.length !== 1) throw invalid(undefined, 'give exactly one of messages, prompt, prompt_token_ids');
    const base = { model: model.name, lora, keyModel, cacheSalt };
    const pending: PendingCacheWrites = [];
    const fetched: PendingFetches = [];
    let result: PreparedPrompt;
    if (given[0] === 'messages') {
      result = { ...base, kind: 'chat', ...(await this.chat(model, lora, request, pending, fetched, signal)) };
    } else if (given[0] === 'prompt' && typeof request.prompt === 'string') {
      const addSpecial = optionalBool(request.add_special_tokens, 'add_special_tokens', true);
      const ids = await model.tokenizer.encode(
        request.prompt,
        addSpecial,
        pending,
        model.limits.maxTokens,
        'prompt',
        signal,
      );
      result = { ...base, kind: 'completion', text: request.prompt, tokenIds: ids, items: [] };
    } else {
      const field = given[0];
      const ids = tokenIds(request[field], field);
      result = {
        ...base,
        kind: 'tokens',
        text: null,
        tokenIds: ids,
        items: this.tokenItems(request.mm_items, ids.length, model),
      };
    }
    if (result.tokenIds.length > model.limits.maxTokens) {
      throw new PromptError(
        'resource_exhausted',
        `prompt has ${result.tokenIds.length} tokens, more than the limit of ${model.limits.maxTokens}`,
        given[0],
      );
    }
    model.tokenizer.commit(pending);
    this.fetcher.commit(fetched);
    return result;
  }

  /** prepare() + per-block extra features + request keys. */
  async keys(request: PromptRequest | unknown): Promise<RequestKeys> {
    const p = await this.prepare(request);
    const extras = blockExtras(p.items, p.tokenIds.length, this.hasher.blockSize, p.cacheSalt);
    const blockKeys = this.hasher.keysFor(p.keyModel, p.tokenIds, extras);
    return { ...p, blockSize: this.hasher.blockSize, extras, blockKeys };
  }

  async close(): Promise<void> {
    await this.registry.close();
  }

  private async chat(
    model: LoadedModel,
    lora: string | null,
    request: Record<string, unknown>,
    pending: PendingCacheWrites,
    fetched: PendingFetches,
    signal?: TokenizeSignal,
  ) {
    const messages = normalizeMessages(request.messages);
    const kwargs = imageKwargs(request.mm_processor_kwargs);
    // vLLM's `max_completion_tokens or max_tokens`: Python's `or` also passes over a 0.
    const maxTokens =
      optionalCount(request.max_completion_tokens, 'max_completion_tokens') ||
      optionalCount(request.max_tokens, 'max_tokens') ||
      null;
    const inputs = chatTemplateInputs(request, model);
    const refs = imageParts(messages);
    if (refs.length > model.limits.maxImages) {
      throw new PromptError(
        'resource_exhausted',
        `${refs.length} images, more than the limit of ${model.limits.maxImages} per request`,
        refs[model.limits.maxImages].field,
      );
    }
    const ctx: ImageContext = {
      model,
      kwargs,
      hashKwargs: refs.length > 0 ? hashKwargs(request.mm_processor_kwargs_json, request.mm_processor_kwargs) : [],
      contentHash: this.registry.config.identifierHash,
      fetcher: this.fetcher,
      pendingFetches: fetched,
      lora: lora ?? (typeof request.lora_name === 'string' && request.lora_name !== '' ? request.lora_name : null),
      addSpecialTokens: optionalBool(request.add_special_tokens, 'add_special_tokens', false),
      maxTokens,
    };
    // Images resolve concurrently (fetches, hashing); the first failing part in request order is reported.
    const settled = await Promise.allSettled(refs.map((ref) => resolveImage(ref, ctx)));
    const failed = settled.find((s) => s.status === 'rejected');
    if (failed) throw failed.reason;
    const images = settled.map((s) => (s as PromiseFulfilledResult<ResolvedImage>).value);
    const text = renderChat(model, messages, {
      addGenerationPrompt: optionalBool(request.add_generation_prompt, 'add_generation_prompt', true),
      continueFinalMessage: optionalBool(request.continue_final_message, 'continue_final_message', false),
      inputs,
    });
    // vLLM tokenizes rendered chats without adding special tokens unless asked (the template already wrote them).
    // The rendered tokens are a lower bound of the prompt's (expansion only adds): over the limit, tokenizing stops early.
    const rendered = await model.tokenizer.encode(
      text,
      optionalBool(request.add_special_tokens, 'add_special_tokens', false),
      pending,
      model.limits.maxTokens,
      'messages',
      signal,
    );
    if (images.length === 0) return { text, tokenIds: rendered, items: [] };
    const { tokens, ranges } = expandPlaceholders(
      rendered,
      model.expansionIds!,
      images.map((i) => i.tokens),
    );
    const items: PromptItem[] = images.map((img, k) => ({
      offset: ranges[k].offset,
      length: ranges[k].length,
      identifier: img.identifier,
      estimated: img.estimated,
      field: img.field,
      width: img.width,
      height: img.height,
      identifierSource: img.identifierSource,
      fetchOutcome: img.fetchOutcome,
    }));
    return { text, tokenIds: tokens, items };
  }

  private tokenItems(value: unknown, tokenCount: number, model: LoadedModel): PromptItem[] {
    if (value === undefined || value === null) return [];
    if (!Array.isArray(value)) throw invalid('mm_items', 'must be an array');
    if (value.length > model.limits.maxImages) {
      throw new PromptError(
        'resource_exhausted',
        `${value.length} items, more than the limit of ${model.limits.maxImages}`,
        'mm_items',
      );
    }
    return value.map((item, i) => {
      const f = `mm_items[${i}]`;
      if (!isObject(item)) throw invalid(f, 'must be an object');
      const { offset, length, identifier } = item;
      if (typeof offset !== 'number' || !Number.isInteger(offset) || offset < 0)
        throw invalid(`${f}.offset`, 'must be a non-negative integer');
      if (typeof length !== 'number' || !Number.isInteger(length) || length <= 0)
        throw invalid(`${f}.length`, 'must be a positive integer');
      if (offset + length > tokenCount)
        throw invalid(f, `range [${offset}, ${offset + length}) is beyond the ${tokenCount} tokens`);
      if (typeof identifier !== 'string' || identifier.length === 0)
        throw invalid(`${f}.identifier`, 'must be a non-empty string');
      if (identifier.length > MAX_IDENTIFIER_LENGTH)
        throw invalid(`${f}.identifier`, `is longer than ${MAX_IDENTIFIER_LENGTH} characters`);
      return { offset, length, identifier, estimated: item.estimated === true, identifierSource: 'caller' as const };
    });
  }
}

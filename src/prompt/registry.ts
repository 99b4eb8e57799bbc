import { isAbsolute, resolve } from 'node:path';
import { PromptError } from './errors.js';
import { resolveImageRule, ruleTokens, type ImageRule } from './image-rules.js';
import type { ExpansionIds } from './expand.js';
import {
  DEFAULT_LIMITS,
  RegistryConfigSchema,
  type ModelEntryResolved,
  type RegistryConfig,
  type RegistryConfigResolved,
} from './model-config.js';
import { numberField, readModelDir, specialTokensMap, type ModelFiles } from './model-dir.js';
import { PyTemplate } from './jinja-py.js';
import { ModelTokenizer } from './model-tokenizer.js';
import { TokenCache } from './token-cache.js';
import { TokenizerPool } from './tokenizer-pool.js';
import { resolveVllmConfig, type VllmHashConfig } from './vllm-mm-hash.js';

export type ContentFormat = 'string' | 'openai';

export interface Limits {
  maxTokens: number;
  maxImages: number;
  maxImageSide: number;
  maxImagePixels: number;
  maxImageBytes: number;
}

/** A served model, loaded: template compiled, tokenizer described, image rule resolved. */
export interface LoadedModel {
  name: string;
  entry: ModelEntryResolved;
  files: ModelFiles;
  template: PyTemplate | null;
  toolTemplate: PyTemplate | null;
  contentFormat: ContentFormat;
  specialTokens: Record<string, string | string[]>;
  tokenizer: ModelTokenizer;
  imageRule: ImageRule | null;
  expansionIds: ExpansionIds | null;
  limits: Limits;
  /** The serving vLLM engine (registry `vllm`): images without a uuid get its identifier; null = content hash. */
  vllm: VllmHashConfig | null;
}

/** A request's model name resolved: the loaded base model and the name that roots its keys. */
export interface ResolvedModel {
  model: LoadedModel;
  /** The LoRA adapter name when the request targets one (it replaces the model in the key root). */
  lora: string | null;
  keyModel: string;
}

/**
 * vLLM's content-format detection, approximated on the template source: a template that loops over a message's
 * content gets OpenAI-style part lists ("openai"), any other gets one string per message ("string").
 */
export function detectContentFormat(source: string): ContentFormat {
  return /\{%-?\s*for\s+\w+\s+in\s+\w+(\[\s*['"]content['"]\s*\]|\.content)\s*(\||-?%\})/.test(source)
    ? 'openai'
    : 'string';
}

export function compileTemplate(source: string, where: string): PyTemplate {
  try {
    return new PyTemplate(source);
  } catch (err) {
    throw new PromptError('failed_precondition', `chat template does not parse: ${(err as Error).message}`, where);
  }
}

async function loadModel(
  entry: ModelEntryResolved,
  where: string,
  baseDir: string,
  pool: TokenizerPool,
  cache: TokenCache | null,
): Promise<LoadedModel> {
  const dir = isAbsolute(entry.dir) ? entry.dir : resolve(baseDir, entry.dir);
  const vllm = entry.vllm ? resolveVllmConfig(entry.vllm, entry.name, where) : null;
  const files = readModelDir(dir);
  const imageRule = resolveImageRule(files, entry.image, `${where}.image`);
  const lookup = imageRule ? ruleTokens(imageRule) : [];
  // Every worker loads the tokenizer now (tasks queued together go to distinct idle workers), not on a first request.
  const [description] = await Promise.all(Array.from({ length: pool.size }, () => pool.describe(dir, lookup)));
  const tokenizer = new ModelTokenizer(dir, description, pool, cache);
  tokenizer.registerLookups(lookup, description.ids);
  let expansionIds: ExpansionIds | null = null;
  if (imageRule) {
    const id = (t: string): number => {
      const v = tokenizer.id(t);
      if (v === undefined)
        throw new PromptError(
          'failed_precondition',
          `token ${JSON.stringify(t)} is not in the tokenizer`,
          `${where}.image`,
        );
      return v;
    };
    expansionIds = {
      target: id(imageRule.target),
      prefix: imageRule.prefix.map(id),
      repeat: id(imageRule.repeat),
      suffix: imageRule.suffix.map(id),
      newlines: imageRule.mergeNewlines ? [id('\n'), id('\n\n'), id('\n\n\n'), id('\n\n\n\n')] : null,
    };
  }
  const source = files.chatTemplate?.source ?? null;
  const maxPositions =
    numberField(files.config, 'max_position_embeddings') ??
    numberField(files.config, 'text_config', 'max_position_embeddings');
  return {
    name: entry.name,
    entry,
    files,
    template: source === null ? null : compileTemplate(source, `${where} (${files.chatTemplate!.from})`),
    toolTemplate:
      files.toolChatTemplate === null ? null : compileTemplate(files.toolChatTemplate, `${where} (tool_use template)`),
    contentFormat:
      entry.contentFormat === 'auto' ? (source === null ? 'string' : detectContentFormat(source)) : entry.contentFormat,
    specialTokens: specialTokensMap(files.tokenizerConfig),
    tokenizer,
    imageRule,
    expansionIds,
    limits: {
      maxTokens: entry.limits.maxTokens ?? maxPositions ?? DEFAULT_LIMITS.maxTokens,
      maxImages: entry.limits.maxImages ?? DEFAULT_LIMITS.maxImages,
      maxImageSide: entry.limits.maxImageSide ?? DEFAULT_LIMITS.maxImageSide,
      maxImagePixels: entry.limits.maxImagePixels ?? DEFAULT_LIMITS.maxImagePixels,
      maxImageBytes: entry.limits.maxImageBytes ?? DEFAULT_LIMITS.maxImageBytes,
    },
    vllm,
  };
}

/**
 * Served model names (and aliases, and LoRA adapter names) → loaded local models. Everything is read from local
 * directories; nothing is ever fetched.
 */
export class ModelRegistry {
  private readonly byName = new Map<string, { model: LoadedModel; lora: string | null }>();
  readonly models: LoadedModel[];

  private constructor(
    models: LoadedModel[],
    readonly config: RegistryConfigResolved,
    readonly pool: TokenizerPool,
    readonly cache: TokenCache | null,
    private readonly ownsPool: boolean,
  ) {
    this.models = models;
    for (const model of models) {
      for (const name of [model.name, ...model.entry.aliases]) this.add(name, model, null);
      for (const lora of model.entry.loras) this.add(lora, model, lora);
    }
  }

  private add(name: string, model: LoadedModel, lora: string | null): void {
    if (this.byName.has(name))
      throw new PromptError('failed_precondition', `model name "${name}" is configured twice`, 'models');
    this.byName.set(name, { model, lora });
  }

  /** Validates the configuration, starts the tokenizer pool and loads every model (relative dirs from `baseDir`). */
  static async load(
    config: RegistryConfig,
    options: { baseDir?: string; pool?: TokenizerPool } = {},
  ): Promise<ModelRegistry> {
    const parsed = RegistryConfigSchema.safeParse(config);
    if (!parsed.success) {
      const lines = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
      throw new PromptError('failed_precondition', `invalid model registry configuration: ${lines.join('; ')}`);
    }
    const cfg = parsed.data;
    const pool = options.pool ?? new TokenizerPool({ size: cfg.workers, budgetMs: cfg.tokenizeBudgetMs });
    const cache = cfg.cacheBytes > 0 ? new TokenCache(cfg.cacheBytes) : null;
    try {
      const models = await Promise.all(
        cfg.models.map((m, i) => loadModel(m, `models[${i}]`, options.baseDir ?? process.cwd(), pool, cache)),
      );
      return new ModelRegistry(models, cfg, pool, cache, !options.pool);
    } catch (err) {
      if (!options.pool) await pool.close();
      throw err;
    }
  }

  /** Every name a request may use. */
  names(): string[] {
    return [...this.byName.keys()].sort();
  }

  /** Resolves a request's model (and optional explicit LoRA adapter); unknown names list the known ones. */
  resolve(name: unknown, lora?: unknown): ResolvedModel {
    if (typeof name !== 'string' || name.length === 0)
      throw new PromptError('invalid_argument', 'model must be a non-empty string', 'model');
    const hit = this.byName.get(name);
    if (!hit)
      throw new PromptError(
        'not_found',
        `unknown model "${shortName(name)}"; known models: ${this.names().join(', ')}`,
        'model',
      );
    let adapter = hit.lora;
    if (lora !== undefined && lora !== null) {
      // A non-string used to be JSON-stringified into the message: a deeply nested value overflowed the stack.
      if (typeof lora !== 'string' || lora.length === 0)
        throw new PromptError('invalid_argument', 'must be a non-empty string', 'lora');
      if (!hit.model.entry.loras.includes(lora)) {
        throw new PromptError(
          'not_found',
          `unknown LoRA adapter ${JSON.stringify(shortName(lora))} for model "${hit.model.name}"; known: ${hit.model.entry.loras.join(', ') || 'none'}`,
          'lora',
        );
      }
      adapter = lora;
    }
    return { model: hit.model, lora: adapter, keyModel: adapter ?? hit.model.name };
  }

  /** Stops the tokenizer pool, unless it was passed in (then its owner closes it). */
  async close(): Promise<void> {
    if (this.ownsPool) await this.pool.close();
  }
}

/** A caller's name as error messages show it: at most 80 characters. */
function shortName(name: string): string {
  return name.length > 80 ? `${name.slice(0, 77)}...` : name;
}

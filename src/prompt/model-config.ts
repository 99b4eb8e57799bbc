import { z } from 'zod';

/**
 * The model registry's configuration (a JSON or YAML file, or an object built by the caller): served model names →
 * local model directories, with per-model overrides. Validated with zod; problems are reported by path.
 */

export const IMAGE_STRATEGIES = ['qwen2-vl', 'qwen3-vl', 'gemma3', 'gemma4', 'llava', 'dimension', 'fixed', 'none'] as const;
export type ImageStrategy = (typeof IMAGE_STRATEGIES)[number];

const positiveInt = z.number().int().positive();

export const ImageOverridesSchema = z
  .object({
    /** Force a rule instead of detecting it from config.json `model_type`. */
    strategy: z.enum(IMAGE_STRATEGIES).optional(),
    minPixels: positiveInt.optional(),
    maxPixels: positiveInt.optional(),
    patchSize: positiveInt.optional(),
    mergeSize: positiveInt.optional(),
    /** Gemma 4 `max_soft_tokens` budget. */
    maxSoftTokens: z.union([z.literal(70), z.literal(140), z.literal(280), z.literal(560), z.literal(1120)]).optional(),
    /** dimension strategy: pixels per token (1024 for 32×32 patches, 784 for 28×28). */
    pixelsPerToken: positiveInt.optional(),
    /** fixed strategy (and LLaVA): tokens per image. */
    tokensPerImage: positiveInt.optional(),
    /** The single token the chat template emits per image (generic strategies; built-in rules know theirs). */
    placeholderToken: z.string().min(1).optional(),
    /** The token the placeholder expands to (default: the placeholder itself). */
    imageToken: z.string().min(1).optional(),
    /** Optional tokens wrapped around the expansion (inside the placeholder range). */
    beginToken: z.string().min(1).optional(),
    endToken: z.string().min(1).optional(),
    /** Size assumed for http(s) images without caller-supplied width/height (items are flagged `estimated`). */
    defaultWidth: positiveInt.optional(),
    defaultHeight: positiveInt.optional(),
  })
  .strict();
export type ImageOverrides = z.infer<typeof ImageOverridesSchema>;

export const LimitsSchema = z
  .object({
    /** Prompt tokens after image expansion (default: config.json max_position_embeddings, else 131072). */
    maxTokens: positiveInt.optional(),
    maxImages: positiveInt.optional(),
    /** Largest accepted width or height, and pixel count (PIL's decompression-bomb error threshold by default). */
    maxImageSide: positiveInt.optional(),
    maxImagePixels: positiveInt.optional(),
    /** Largest image a data URL may carry, in decoded bytes; checked from the base64 length before decoding. */
    maxImageBytes: positiveInt.optional(),
  })
  .strict();

export const ModelEntrySchema = z
  .object({
    /** Served model name (what requests and vLLM's KV-event topics carry). */
    name: z.string().min(1),
    dir: z.string().min(1),
    aliases: z.array(z.string().min(1)).default([]),
    /** LoRA adapter names served on top of this model; their name replaces the model in the key root. */
    loras: z.array(z.string().min(1)).default([]),
    /** How message content reaches the template: vLLM detects it from the template ('auto'). */
    contentFormat: z.enum(['auto', 'string', 'openai']).default('auto'),
    image: ImageOverridesSchema.default({}),
    limits: LimitsSchema.default({}),
  })
  .strict();
export type ModelEntry = z.input<typeof ModelEntrySchema>;
export type ModelEntryResolved = z.output<typeof ModelEntrySchema>;

export const RegistryConfigSchema = z
  .object({
    models: z.array(ModelEntrySchema).min(1),
    /** Identifier for images without a uuid or caller identifier: a node:crypto hash of the raw bytes. */
    identifierHash: z.string().default('sha256'),
    /** Entries of the tokenization cache budget, in bytes (text + token ids). */
    cacheBytes: z.number().int().min(0).default(64 * 1024 * 1024),
    /** Tokenizer worker threads (default: the machine's cores). */
    workers: z.number().int().min(1).max(64).optional(),
    /** Longest one encode call may keep a tokenizer worker busy; then resource_exhausted (tokenizer-pool.ts). */
    tokenizeBudgetMs: z.number().int().min(1).max(600_000).optional(),
  })
  .strict();
export type RegistryConfig = z.input<typeof RegistryConfigSchema>;
export type RegistryConfigResolved = z.output<typeof RegistryConfigSchema>;

export const DEFAULT_LIMITS = {
  maxTokens: 131_072,
  maxImages: 16,
  maxImageSide: 65_500,
  maxImagePixels: 178_956_970,
  maxImageBytes: 20 * 1024 * 1024,
} as const;

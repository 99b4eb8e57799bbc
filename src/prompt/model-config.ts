import { z } from 'zod';

/**
 * The model registry's configuration (a JSON or YAML file, or an object built by the caller): served model names →
 * local model directories, with per-model overrides. Validated with zod; problems are reported by path.
 */

export const IMAGE_STRATEGIES = [
  'qwen2-vl',
  'qwen3-vl',
  'gemma3',
  'gemma4',
  'llava',
  'dimension',
  'fixed',
  'none',
] as const;
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

/**
 * The vLLM engine that serves a model, so image parts without a uuid get vLLM's own identifier (spec/vllm-mm-hash.md).
 * Checked further at start (resolveVllmConfig): versions before 0.13 and unknown ones are refused.
 */
export const VllmEntrySchema = z
  .object({
    /** The engine's vLLM release, "X.Y.Z" (≥ 0.13.0). */
    version: z.string().min(1),
    /** The engine's `--model` string (ModelConfig.model), not --served-model-name; default: the entry's name. */
    model: z.string().min(1).optional(),
    /** VLLM_MM_HASHER_ALGORITHM / --mm-hasher-algorithm of the engine. */
    mmHasher: z.enum(['blake3', 'sha256', 'sha512']).default('blake3'),
    /** The engine runs with --enable-tower-connector-lora: a LoRA request's identifiers get the "<lora>:" prefix. */
    towerConnectorLora: z.boolean().default(false),
    /** vLLM 0.16.x only: the engine's max_model_len (0.16 folds max_length into the image hash). */
    maxModelLen: positiveInt.optional(),
    /** ≥ 0.27: --media-io-kwargs image_mode (RGB, or null when conversion is disabled) and rgba_background_color. */
    imageMode: z.union([z.literal('RGB'), z.null()]).default('RGB'),
    rgbaBackgroundColor: z
      .tuple([z.number().int().min(0).max(255), z.number().int().min(0).max(255), z.number().int().min(0).max(255)])
      .default([255, 255, 255]),
  })
  .strict();
export type VllmEntry = z.output<typeof VllmEntrySchema>;

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
    vllm: VllmEntrySchema.optional(),
    /** Accept a request's own `chat_template` (vLLM's --trust-request-chat-template); refused otherwise. */
    trustRequestChatTemplate: z.boolean().default(false),
    /** Withhold `tools` from the template when tool_choice is "none" (vLLM's --exclude-tools-when-tool-choice-none). */
    excludeToolsWhenToolChoiceNone: z.boolean().default(false),
    /** Template variables under every request's chat_template_kwargs (vLLM's --default-chat-template-kwargs). */
    defaultChatTemplateKwargs: z.record(z.string(), z.unknown()).default({}),
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
    cacheBytes: z
      .number()
      .int()
      .min(0)
      .default(64 * 1024 * 1024),
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

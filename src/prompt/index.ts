/** The read path's front half: models, chat templates, tokenization, image expansion, request keys. */
export {
  PromptService,
  type PreparedPrompt,
  type PromptItem,
  type PromptServiceOptions,
  type PromptStats,
  type RequestKeys,
} from './prompt-service.js';
export type { PromptRequest } from './request.js';
export { maxTokensOf } from './request.js';
export { keysReport, type KeysReport, type KeysReportOptions } from './keys-report.js';
export { PromptError, type PromptErrorCode } from './errors.js';
export {
  ModelRegistry,
  detectContentFormat,
  type LoadedModel,
  type ResolvedModel,
  type ContentFormat,
  type Limits,
} from './registry.js';
export {
  RegistryConfigSchema,
  ModelEntrySchema,
  ImageOverridesSchema,
  IMAGE_STRATEGIES,
  DEFAULT_LIMITS,
  type RegistryConfig,
  type ModelEntry,
  type ImageOverrides,
  type ImageStrategy,
} from './model-config.js';
export { loadRegistryFile } from './registry-file.js';
export {
  ImageFetcher,
  DEFAULT_FETCH_OPTIONS,
  isPrivateAddress,
  type ImageFetchOptions,
  type FetchOutcome,
  type FetchFailure,
} from './image-fetch.js';
export {
  resolveVllmConfig,
  vllmIdentifier,
  digestChunks,
  OLDEST_SUPPORTED_VLLM,
  type VllmHashConfig,
  type MmHasher,
} from './vllm-mm-hash.js';
export { mmHashChunks, type StreamScheme } from './vllm-mm-stream.js';
export { parsePyObject, pyFromJs, type KwargValue } from './py-value.js';
export { decodesAsRgb } from './image-mode.js';
export type { IdentifierSource } from './images.js';
export { TokenizerPool, type TokenizerPoolOptions } from './tokenizer-pool.js';
export {
  smartResize,
  qwenImageTokens,
  gemma4ImageTokens,
  dimensionImageTokens,
  GEMMA4_BUDGETS,
} from './image-tokens.js';
export { resolveImageRule, detectStrategy, type ImageRule, type ImageKwargs } from './image-rules.js';
export { probeImageSize, decodeDataUrl, type ImageSize, type ImageFormat } from './image-probe.js';
export { expandPlaceholders, type ExpansionIds, type PlaceholderRange } from './expand.js';
export { roundHalfEven } from './python-math.js';
export {
  parsePyJson,
  stringifyPyJson,
  asRecord,
  toPlain,
  PyInt,
  PyFloat,
  PyJsonError,
  pyFloatRepr,
  type PyValue,
  type PyDict,
} from './py-json.js';
export { PyTemplate } from './jinja-py.js';

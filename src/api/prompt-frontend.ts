/**
 * What the API needs from the prompt pipeline (src/prompt): turn a chat or a completion prompt into token ids and
 * multimodal placeholder items, exactly as vLLM would. Injected, so that the API runs with or without models loaded.
 */

export interface ChatRequestInput {
  kind: 'chat';
  /** The OpenAI `messages` array, parsed with parsePyJson (objects as Maps, Python number kinds). */
  messages: unknown;
  addGenerationPrompt?: boolean;
  continueFinalMessage?: boolean;
  /** Parsed with parsePyJson, like every value below that reaches the chat template. */
  chatTemplateKwargs?: unknown;
  mmProcessorKwargs?: Record<string, unknown>;
  /** The kwargs' JSON text as received: vLLM's image identifier is computed from it (Python number typing, key order). */
  mmProcessorKwargsJson?: string;
  /** The request's LoRA adapter (vLLM's tower-connector LoRA prefixes image identifiers with it). */
  lora?: string;
  tools?: unknown;
  toolChoice?: unknown;
  documents?: unknown;
  chatTemplate?: string;
  reasoningEffort?: string;
  /** The request's max_completion_tokens, else max_tokens: vLLM 0.16.x's image identifier depends on it. */
  maxTokens?: number;
}

export interface CompletionRequestInput {
  kind: 'prompt';
  text: string;
}

export interface PromptItem {
  offset: number;
  length: number;
  identifier: string;
  estimated: boolean;
  /** uuid | caller | vllm-mm-hash | content-hash */
  identifierSource?: string;
  /** http(s) images: fetched | cached | the reason it was not fetched; absent otherwise. */
  fetchOutcome?: string | null;
}

export interface RenderedPrompt {
  /** The rendered text (chat template applied), when there is one. */
  text: string;
  tokenIds: Uint32Array;
  items: PromptItem[];
}

/** Whether the call was cancelled or its deadline passed (set by the transport; cheaper than an AbortSignal). */
export interface Cancellation {
  readonly aborted: boolean;
  /** The call's deadline (ms since the epoch; Infinity = none), when known: it travels to the index thread. */
  readonly deadlineMs?: number;
}

export interface PromptFrontend {
  /** Served model names (and LoRA adapter names) this frontend can render. */
  models(): string[];
  /**
   * Renders and tokenizes. Throws an ApiError-compatible error: `{ code, field, message }` with code
   * not_found (unknown model), invalid_argument or resource_exhausted.
   */
  render(
    model: string,
    input: ChatRequestInput | CompletionRequestInput,
    signal?: Cancellation,
  ): Promise<RenderedPrompt>;
  /** Tokenizer pool counters for metrics (optional). */
  tokenizerStats?(): TokenizerStats;
}

export interface TokenizerStats {
  workers: number;
  /** Tokenizations dropped because their call was cancelled or expired: still queued / while running. */
  cancelledQueued: number;
  cancelledRunning: number;
  /** Tokenizations stopped at the per-call budget (RESOURCE_EXHAUSTED). */
  overBudget: number;
}

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
  tools?: unknown;
  toolChoice?: unknown;
  documents?: unknown;
  chatTemplate?: string;
  reasoningEffort?: string;
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
}

export interface PromptFrontend {
  /** Served model names (and LoRA adapter names) this frontend can render. */
  models(): string[];
  /**
   * Renders and tokenizes. Throws an ApiError-compatible error: `{ code, field, message }` with code
   * not_found (unknown model), invalid_argument or resource_exhausted.
   */
  render(model: string, input: ChatRequestInput | CompletionRequestInput, signal?: Cancellation): Promise<RenderedPrompt>;
}

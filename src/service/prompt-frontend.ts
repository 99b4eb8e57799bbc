import {
  ApiError,
  type Cancellation,
  type ChatRequestInput,
  type CompletionRequestInput,
  type PromptFrontend,
  type RenderedPrompt,
} from '../api/index.js';
import { loadRegistryFile, PromptService, type ImageFetchOptions } from '../prompt/index.js';
import type { KeySchemeConfig } from '../keys/index.js';
import type { Config, Logger } from '../ops/index.js';
import { atSetting } from './startup-error.js';

/**
 * The models of `models.registry` (null when none is configured), logged either way; a failure to load names the
 * setting. Wherever the API runs: `serve` on one loop, or the index thread.
 */
export async function loadConfiguredModels(config: Config, log: Logger): Promise<PromptServiceFrontend | null> {
  const registry = config.models.registry;
  if (!registry) {
    log.info('no model registry configured: Score takes token ids or block keys (set models.registry for chat)');
    return null;
  }
  const prompts = await atSetting('models.registry', registry, () =>
    PromptServiceFrontend.load(registry, config.keys, config.images.fetch),
  );
  log.info({ registry, models: prompts.models() }, 'models loaded');
  return prompts;
}

/** The prompt pipeline (src/prompt) behind the API's PromptFrontend: OpenAI-shaped requests in, tokens and items out. */
export class PromptServiceFrontend implements PromptFrontend {
  private constructor(readonly service: PromptService) {}

  /** Loads the registry file and every model it lists (tokenizers warm in the worker pool). */
  static async load(
    registryPath: string,
    keys: KeySchemeConfig,
    fetch?: ImageFetchOptions,
  ): Promise<PromptServiceFrontend> {
    const { config, baseDir } = loadRegistryFile(registryPath);
    return new PromptServiceFrontend(await PromptService.create({ registry: config, keys, baseDir, fetch }));
  }

  models(): string[] {
    return this.service.models();
  }

  async render(
    model: string,
    input: ChatRequestInput | CompletionRequestInput,
    signal?: Cancellation,
  ): Promise<RenderedPrompt> {
    const request =
      input.kind === 'prompt'
        ? { model, prompt: input.text }
        : {
            model,
            messages: input.messages as unknown[],
            add_generation_prompt: input.addGenerationPrompt,
            continue_final_message: input.continueFinalMessage,
            chat_template_kwargs: input.chatTemplateKwargs,
            mm_processor_kwargs: input.mmProcessorKwargs,
            mm_processor_kwargs_json: input.mmProcessorKwargsJson,
            lora_name: input.lora,
            tools: input.tools,
            tool_choice: input.toolChoice,
            documents: input.documents,
            chat_template: input.chatTemplate,
            reasoning_effort: input.reasoningEffort,
            max_completion_tokens: input.maxTokens,
          };
    const prepared = await this.service.prepare(request, signal);
    if (signal?.aborted) throw new ApiError('deadline_exceeded', '', 'the call was cancelled or its deadline passed');
    return {
      text: prepared.text ?? '',
      tokenIds: prepared.tokenIds,
      items: prepared.items.map((i) => ({
        offset: i.offset,
        length: i.length,
        identifier: i.identifier,
        estimated: i.estimated,
        identifierSource: i.identifierSource,
        fetchOutcome: i.fetchOutcome,
      })),
    };
  }

  tokenizerStats() {
    const s = this.service.stats();
    return {
      workers: s.workers,
      cancelledQueued: s.tokenizeCancelledQueued,
      cancelledRunning: s.tokenizeCancelledRunning,
      overBudget: s.tokenizeOverBudget,
    };
  }

  close(): Promise<void> {
    return this.service.close();
  }
}

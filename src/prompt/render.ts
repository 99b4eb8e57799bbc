import type { ChatTemplateInputs } from './chat-inputs.js';
import { invalid, PromptError } from './errors.js';
import { PyTemplate } from './jinja-py.js';
import { pyStrip } from './py-str.js';
import type { NormalizedMessage } from './messages.js';
import type { LoadedModel } from './registry.js';

export interface RenderOptions {
  addGenerationPrompt: boolean;
  continueFinalMessage: boolean;
  inputs: ChatTemplateInputs;
}

/** Request templates compiled recently (by source); one enters only after it rendered a request successfully. */
const requestTemplates = new Map<string, PyTemplate>();
const MAX_REQUEST_TEMPLATES = 32;

/**
 * The template a request renders with, as transformers picks it: the request's own (a name of one of the model's
 * templates, or a source), else the `tool_use` template when tools are passed and the model has one, else the default.
 */
function pickTemplate(
  model: LoadedModel,
  inputs: ChatTemplateInputs,
): { template: PyTemplate | null; remember: () => void } {
  const none = () => {};
  const source = inputs.chatTemplate;
  if (source === null)
    return {
      template: inputs.tools !== null && model.toolTemplate ? model.toolTemplate : model.template,
      remember: none,
    };
  if (model.toolTemplate && source === 'tool_use') return { template: model.toolTemplate, remember: none };
  if (model.toolTemplate && source === 'default') return { template: model.template, remember: none };
  const cached = requestTemplates.get(source);
  if (cached) return { template: cached, remember: none };
  let compiled: PyTemplate;
  try {
    compiled = new PyTemplate(source);
  } catch (err) {
    throw invalid('chat_template', `does not parse: ${(err as Error).message}`);
  }
  return {
    template: compiled,
    remember: () => {
      requestTemplates.set(source, compiled);
      if (requestTemplates.size > MAX_REQUEST_TEMPLATES) requestTemplates.delete(requestTemplates.keys().next().value!);
    },
  };
}

/** How vLLM hands a message to the template (ConversationMessage): parts ("openai") or one string ("string"). */
function templateMessage(m: NormalizedMessage, model: LoadedModel): Record<string, unknown> {
  let content: unknown;
  if (model.contentFormat === 'openai') {
    content = m.parts.map((p) => (p.type === 'text' ? { type: 'text', text: p.text } : { type: 'image' }));
  } else {
    let text = m.parts.flatMap((p) => (p.type === 'text' ? [p.text] : [])).join('\n');
    const images = m.parts.length - m.parts.filter((p) => p.type === 'text').length;
    if (images > 0) {
      // vLLM's _get_full_multimodal_text_prompt: placeholders the text lacks are prepended, one per line.
      const placeholder = model.imageRule?.placeholderText ?? '';
      const present = placeholder ? text.split(placeholder).length - 1 : 0;
      if (present > images)
        throw invalid('messages', `found more ${JSON.stringify(placeholder)} placeholders in the text than images`);
      const missing = images - present;
      text = [...new Array<string>(missing).fill(placeholder), text].join('\n');
    }
    content = text;
  }
  return { role: m.role, content, ...m.extra };
}

/**
 * transformers' continue_final_message (huggingface/transformers `apply_chat_template`, tokenization_utils_base.py;
 * `render_jinja_template` in utils/chat_template_utils.py in later releases): the final message's content *as the
 * template received it* — the whole string (string content format: text parts joined, image placeholders included),
 * or the last part carrying text (openai format) — is looked up with `rindex(text.strip())`; the chat is cut after
 * `len(text.lstrip())` characters when the rendered text there equals the content exactly (leading whitespace
 * included, so content with leading whitespace never takes this branch), else after `len(text.strip())`.
 * Python's str.strip(), not JavaScript's trim() (py-str.ts).
 */
function cutAfterFinalMessage(rendered: string, last: Record<string, unknown>): string {
  let finalText: unknown = last.content;
  if (Array.isArray(finalText)) {
    const withText = [...finalText]
      .reverse()
      .find((part) => typeof part === 'object' && part !== null && 'text' in part) as { text: unknown } | undefined;
    if (!withText) throw invalid('continue_final_message', 'the final message has no text to continue');
    finalText = withText.text;
  }
  if (typeof finalText !== 'string')
    throw invalid('continue_final_message', 'the final message has no text to continue');
  const stripped = pyStrip(finalText, null);
  const at = rendered.lastIndexOf(stripped);
  if (at < 0) throw invalid('continue_final_message', 'the final message does not appear in the rendered chat');
  const lstrippedLength = pyStrip(finalText, null, 'left').length;
  return rendered.slice(at, at + lstrippedLength) === finalText
    ? rendered.slice(0, at + lstrippedLength)
    : rendered.slice(0, at + stripped.length);
}

/** Renders a chat with the model's own template, as vLLM's chat completions endpoint does. */
export function renderChat(model: LoadedModel, messages: NormalizedMessage[], opts: RenderOptions): string {
  const { template, remember } = pickTemplate(model, opts.inputs);
  if (!template) throw new PromptError('failed_precondition', `model "${model.name}" has no chat template`, 'model');
  if (opts.addGenerationPrompt && opts.continueFinalMessage) {
    throw invalid('continue_final_message', 'cannot be true together with add_generation_prompt');
  }
  // transformers renders with the special tokens, then the kwargs, then its named arguments (messages, tools,
  // documents, add_generation_prompt); vLLM's request fields (reasoning_effort…) override chat_template_kwargs.
  // continue_final_message is not a template variable: apply_chat_template takes it as its own argument and only
  // cuts the rendered text (below).
  const templateMessages = messages.map((m) => templateMessage(m, model));
  const context: Record<string, unknown> = {
    ...model.specialTokens,
    ...opts.inputs.kwargs,
    messages: templateMessages,
    tools: opts.inputs.tools,
    documents: opts.inputs.documents,
    add_generation_prompt: opts.addGenerationPrompt,
    ...opts.inputs.variables,
  };
  let rendered: string;
  try {
    rendered = template.render(context);
  } catch (err) {
    throw invalid('messages', `chat template rejected the conversation: ${(err as Error).message}`);
  }
  const text = opts.continueFinalMessage
    ? cutAfterFinalMessage(rendered, templateMessages[templateMessages.length - 1])
    : rendered;
  remember();
  return text;
}

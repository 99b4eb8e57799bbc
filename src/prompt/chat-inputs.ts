import { invalid, PromptError } from './errors.js';
import { asRecord, type PyDict, type PyValue } from './py-json.js';
import type { LoadedModel } from './registry.js';

/**
 * The chat-completions request fields besides `messages` that reach the chat template, validated and shaped the way
 * vLLM hands them over (vllm-project/vllm: vllm/entrypoints/openai/chat_completion/protocol.py
 * `ChatCompletionRequest.build_chat_params`, vllm/entrypoints/openai/chat_completion/serving.py for `tool_dicts`,
 * vllm/entrypoints/chat_utils.py `apply_hf_chat_template`). Nothing here mutates the request.
 */
export interface ChatTemplateInputs {
  /** `[tool.model_dump() for tool in request.tools]`, or null (absent, or withheld for tool_choice "none"). */
  tools: PyDict[] | null;
  documents: unknown[] | null;
  /** A request's own template source (only when the model trusts request templates). */
  chatTemplate: string | null;
  /** Template variables from the request fields, applied over chat_template_kwargs. */
  variables: Record<string, unknown>;
  /** chat_template_kwargs without the names vLLM never forwards (`chat_template`, `tokenize`). */
  kwargs: Record<string, unknown>;
}

/** vLLM's accepted reasoning_effort values (newest main; older versions accept a subset). */
export const REASONING_EFFORTS = ['none', 'minimal', 'low', 'medium', 'high', 'xhigh', 'max'] as const;

const given = (v: unknown): boolean => v !== undefined && v !== null;

/** Entries of a JSON object in source order (a parsed Map keeps it; a plain object gives what JS kept). */
function entries(obj: unknown): [string, unknown][] {
  return obj instanceof Map ? [...(obj as Map<string, unknown>)] : Object.entries(obj as object);
}

/**
 * One tool as pydantic's `ChatCompletionToolsParam.model_dump()` gives it: declared fields first in declaration order
 * (`type`, `function` → `name`, `description`, `parameters`; missing ones as null), then any extra fields in the
 * order sent (vLLM's OpenAIBaseModel allows extras).
 */
function dumpTool(tool: unknown, field: string): PyDict {
  const rec = asRecord(tool);
  if (!rec) throw invalid(field, 'a tool must be a JSON object');
  if (given(rec.type) && rec.type !== 'function') throw invalid(`${field}.type`, 'must be "function"');
  const fn = asRecord(rec.function);
  if (!fn) throw invalid(`${field}.function`, 'must be an object with a name');
  if (typeof fn.name !== 'string') throw invalid(`${field}.function.name`, 'must be a string');
  if (given(fn.description) && typeof fn.description !== 'string')
    throw invalid(`${field}.function.description`, 'must be a string or null');
  if (given(fn.parameters) && !asRecord(fn.parameters))
    throw invalid(`${field}.function.parameters`, 'must be a JSON object or null');
  const fnOut: PyDict = new Map<string, PyValue>([
    ['name', fn.name],
    ['description', (fn.description ?? null) as PyValue],
    ['parameters', (fn.parameters ?? null) as PyValue],
  ]);
  for (const [k, v] of entries(rec.function)) if (!fnOut.has(k)) fnOut.set(k, v as PyValue);
  const out: PyDict = new Map<string, PyValue>([
    ['type', 'function'],
    ['function', fnOut],
  ]);
  for (const [k, v] of entries(tool)) if (!out.has(k)) out.set(k, v as PyValue);
  return out;
}

/**
 * tool_choice: "none" | "auto" | "required" | {"type": "function", "function": {"name": ...}}; null when absent.
 * A named choice returns the function's name.
 */
export function toolChoice(value: unknown): 'none' | 'auto' | 'required' | { name: string } | null {
  if (!given(value)) return null;
  if (typeof value === 'string') {
    if (value === 'none' || value === 'auto' || value === 'required') return value;
    throw invalid(
      'tool_choice',
      'must be "none", "auto", "required" or {"type": "function", "function": {"name": ...}}',
    );
  }
  const rec = asRecord(value);
  const fn = rec ? asRecord(rec.function) : null;
  if (!rec || !fn || (given(rec.type) && rec.type !== 'function'))
    throw invalid('tool_choice', 'a named tool choice must be {"type": "function", "function": {"name": ...}}');
  if (typeof fn.name !== 'string' || fn.name.length === 0)
    throw invalid('tool_choice.function.name', 'must be a non-empty string');
  return { name: fn.name };
}

/**
 * vLLM's ChatCompletionRequest.check_tool_usage (vllm-project/vllm vllm/entrypoints/openai/chat_completion/protocol.py):
 * a tool_choice other than "none" needs `tools`, and a named choice must name one of them. The engine refuses such a
 * request (HTTP 400), so there is no prompt to score.
 */
function checkToolUsage(choice: ReturnType<typeof toolChoice>, tools: PyDict[] | null): void {
  if (choice === null || choice === 'none') return;
  if (tools === null)
    throw invalid(
      'tool_choice',
      `"${typeof choice === 'string' ? choice : choice.name}" needs \`tools\` (vLLM: "When using \`tool_choice\`, \`tools\` must be set")`,
    );
  if (typeof choice === 'string') return;
  const names = tools.map((t) => (t.get('function') as PyDict).get('name'));
  if (!names.includes(choice.name)) {
    throw invalid(
      'tool_choice',
      `names function "${choice.name}", which is not one of the request's tools (${names.map((n) => JSON.stringify(n)).join(', ') || 'none'})`,
    );
  }
}

/** Validates and shapes the request's tools, tool_choice, documents, chat_template, reasoning_effort. */
export function chatTemplateInputs(request: Record<string, unknown>, model: LoadedModel): ChatTemplateInputs {
  const rawKwargs = request.chat_template_kwargs ?? {};
  const kwargsRecord = asRecord(rawKwargs);
  if (!kwargsRecord) throw invalid('chat_template_kwargs', 'must be an object');
  // The server's defaults (--default-chat-template-kwargs) under the request's own; vLLM's
  // resolve_chat_template_kwargs never forwards `chat_template` or `tokenize`.
  const kwargs: Record<string, unknown> = {};
  for (const [k, v] of [...Object.entries(model.entry.defaultChatTemplateKwargs), ...entries(rawKwargs)]) {
    if (k !== 'chat_template' && k !== 'tokenize') kwargs[k] = v;
  }

  let tools: PyDict[] | null = null;
  if (given(request.tools)) {
    if (!Array.isArray(request.tools)) throw invalid('tools', 'must be an array of tool objects');
    tools = request.tools.map((t, i) => dumpTool(t, `tools[${i}]`));
  }
  const choice = toolChoice(request.tool_choice);
  checkToolUsage(choice, tools);
  // serving.py: tool_dicts = None if request.tools is None or (tool_choice == "none" and exclude_tools_when_tool_choice_none)
  if (choice === 'none' && model.entry.excludeToolsWhenToolChoiceNone) tools = null;

  let documents: unknown[] | null = null;
  if (given(request.documents)) {
    if (!Array.isArray(request.documents)) throw invalid('documents', 'must be an array of objects');
    request.documents.forEach((doc, i) => {
      if (!asRecord(doc)) throw invalid(`documents[${i}]`, 'must be an object of strings');
      for (const [k, v] of entries(doc))
        if (typeof v !== 'string') throw invalid(`documents[${i}].${k}`, 'must be a string');
    });
    documents = request.documents;
  }

  let chatTemplate: string | null = null;
  if (given(request.chat_template) || 'chat_template' in kwargsRecord) {
    // vLLM's _validate_chat_template: a request template (field or kwarg) needs --trust-request-chat-template.
    const field = given(request.chat_template) ? 'chat_template' : 'chat_template_kwargs.chat_template';
    if (!model.entry.trustRequestChatTemplate) {
      throw new PromptError(
        'failed_precondition',
        `model "${model.name}" does not accept a request's own chat template (set trustRequestChatTemplate: true in its registry entry)`,
        field,
      );
    }
    if (given(request.chat_template)) {
      if (typeof request.chat_template !== 'string' || request.chat_template.length === 0)
        throw invalid('chat_template', 'must be a non-empty string');
      chatTemplate = request.chat_template;
    }
  }

  const variables: Record<string, unknown> = {};
  if (given(request.reasoning_effort)) {
    const effort = request.reasoning_effort;
    if (typeof effort !== 'string' || !(REASONING_EFFORTS as readonly string[]).includes(effort)) {
      throw invalid('reasoning_effort', `must be one of ${REASONING_EFFORTS.join(', ')}`);
    }
    variables.reasoning_effort = effort;
    // build_chat_params: reasoning requested → enable_thinking, unless the caller set it in chat_template_kwargs.
    if (!('enable_thinking' in kwargsRecord)) variables.enable_thinking = effort !== 'none';
  }
  return { tools, documents, chatTemplate, variables, kwargs };
}

/**
 * The Jinja2 parity corpus: chat templates (every fixture model's, plus probe templates) × chat-completions requests
 * (as raw JSON text, so number spellings and key order are part of the input), rendered by the service and by
 * Python's Jinja2 through test/support/jinja2-render.py.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { chatTemplateInputs } from '../../../src/prompt/chat-inputs.js';
import { PyTemplate } from '../../../src/prompt/jinja-py.js';
import { normalizeMessages } from '../../../src/prompt/messages.js';
import { ModelEntrySchema } from '../../../src/prompt/model-config.js';
import { readModelDir, specialTokensMap } from '../../../src/prompt/model-dir.js';
import { asRecord, parsePyJson } from '../../../src/prompt/py-json.js';
import { detectContentFormat, type ContentFormat, type LoadedModel } from '../../../src/prompt/registry.js';
import { renderChat } from '../../../src/prompt/render.js';
import { MODELS, ROOT } from './helpers.js';

export const PYTHON = '/usr/bin/python3';
const SCRIPT = `${ROOT}test/support/jinja2-render.py`;
const PROBES = `${ROOT}test/support/parity/`;

export interface ParityTemplate {
  name: string;
  source: string;
  specialTokens: Record<string, string | string[]>;
  contentFormat: ContentFormat;
}

/** Every fixture model directory's templates (default and tool_use), and the probe templates in both content formats. */
export function parityTemplates(): ParityTemplate[] {
  const out: ParityTemplate[] = [];
  let qwenTokens: Record<string, string | string[]> = {};
  for (const dir of ['qwen3', 'qwen2-vl', 'qwen3-vl', 'gemma3']) {
    const files = readModelDir(`${MODELS}${dir}`);
    const specialTokens = specialTokensMap(files.tokenizerConfig);
    if (dir === 'qwen3') qwenTokens = specialTokens;
    const source = files.chatTemplate!.source;
    out.push({ name: dir, source, specialTokens, contentFormat: detectContentFormat(source) });
    if (files.toolChatTemplate)
      out.push({
        name: `${dir} (tool_use)`,
        source: files.toolChatTemplate,
        specialTokens,
        contentFormat: detectContentFormat(files.toolChatTemplate),
      });
  }
  for (const file of readdirSync(PROBES)
    .filter((f) => f.endsWith('.jinja'))
    .sort()) {
    const source = readFileSync(`${PROBES}${file}`, 'utf8');
    for (const contentFormat of ['string', 'openai'] as const)
      out.push({ name: `${file} (${contentFormat})`, source, specialTokens: qwenTokens, contentFormat });
  }
  return out;
}

const WEATHER_TOOL = `{"type": "function", "function": {"name": "get_weather", "description": "Météo actuelle — 天気 🌦", "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "Ville, e.g. \\"Zürich\\""}, "units": {"type": "string", "enum": ["c", "f"], "default": "c"}, "days": {"type": "integer", "minimum": 1, "maximum": 10.0, "multipleOf": 1e-7}, "filters": {"type": "object", "properties": {"2025": {"type": "number"}, "b": {"type": "array", "items": {"type": "number", "examples": [2.0, 0.5, 1e21, 12345678901234567890]}}, "10": {"type": "boolean"}}}}, "required": ["city"]}}}`;
const CALC_TOOL = `{"type": "function", "function": {"name": "calc", "parameters": {"type": "object", "properties": {"expr": {"type": "string"}}}, "strict": true}, "x_extra": {"z": 1, "a": 2}}`;
const BARE_TOOL = `{"function": {"name": "noop"}}`;

/** The corpus: each a raw request body (messages, tools…) and whether the model withholds tools for tool_choice "none". */
export const PARITY_CHATS: { name: string; json: string; images?: boolean; exclude?: boolean }[] = [
  { name: 'single user', json: `{"messages": [{"role": "user", "content": "Hello there"}]}` },
  {
    name: 'no generation prompt',
    json: `{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}], "add_generation_prompt": false}`,
  },
  {
    name: 'system + multi-turn',
    json: `{"messages": [{"role": "system", "content": "You are terse. Réponds en français."}, {"role": "user", "content": "Q1 — ça va?"}, {"role": "assistant", "content": "Oui."}, {"role": "user", "content": "Q2 😀"}]}`,
  },
  {
    name: 'one tool call, result, answer',
    json: `{"messages": [{"role": "system", "content": "Agent"}, {"role": "user", "content": "Weather in Zürich?"}, {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\\"city\\": \\"Zürich\\", \\"factor\\": 2.0, \\"2025\\": 1, \\"b\\": 2, \\"10\\": 3, \\"tiny\\": 1e-7, \\"big\\": 12345678901234567890, \\"nested\\": {\\"z\\": [1.50, -0.0, 1E+2], \\"a\\": null}}"}}]}, {"role": "tool", "tool_call_id": "call_1", "content": "{\\"temp\\": 21.0, \\"sky\\": \\"ensoleillé\\"}"}, {"role": "assistant", "content": "21 °C, sunny."}, {"role": "user", "content": "Thanks"}], "tools": [${WEATHER_TOOL}], "tool_choice": "auto"}`,
  },
  {
    name: 'two parallel tool calls with reasoning',
    json: `{"messages": [{"role": "user", "content": "Compare Paris and 東京"}, {"role": "assistant", "content": "", "reasoning_content": "Two cities: call twice.", "tool_calls": [{"id": "a", "type": "function", "function": {"name": "get_weather", "arguments": "{\\"city\\": \\"Paris\\", \\"days\\": 3}"}}, {"id": "b", "type": "function", "function": {"name": "get_weather", "arguments": "{\\"city\\": \\"東京\\", \\"units\\": \\"f\\"}"}}]}, {"role": "tool", "tool_call_id": "a", "content": "12"}, {"role": "tool", "tool_call_id": "b", "content": "55"}], "tools": [${WEATHER_TOOL}, ${CALC_TOOL}], "reasoning_effort": "none"}`,
  },
  {
    name: 'empty and object arguments, empty tool_calls',
    json: `{"messages": [{"role": "user", "content": "go"}, {"role": "assistant", "content": "calling", "tool_calls": [{"id": "x", "type": "function", "function": {"name": "noop", "arguments": ""}}, {"id": "y", "type": "function", "function": {"name": "calc", "arguments": {"expr": "1+1", "10": 1.0}}}]}, {"role": "tool", "tool_call_id": "x", "content": "ok"}, {"role": "assistant", "content": "done", "tool_calls": []}, {"role": "user", "content": "again"}], "tools": [${BARE_TOOL}, ${CALC_TOOL}], "reasoning_effort": "high"}`,
  },
  {
    name: 'tool_choice none, tools withheld',
    exclude: true,
    json: `{"messages": [{"role": "user", "content": "just chat"}], "tools": [${WEATHER_TOOL}], "tool_choice": "none"}`,
  },
  {
    name: 'tool_choice none, tools kept',
    json: `{"messages": [{"role": "user", "content": "just chat"}], "tools": [${CALC_TOOL}], "tool_choice": "none"}`,
  },
  {
    name: 'documents and kwargs',
    json: `{"messages": [{"role": "user", "content": "Summarise"}], "documents": [{"title": "Doc «1»", "text": "Le café — 1.0 €"}, {"text": "second", "title": "B"}], "chat_template_kwargs": {"enable_thinking": false, "custom": {"z": 1, "2": [1.5, 2.0, true, null], "a": "ü"}}}`,
  },
  // continue_final_message (add_generation_prompt false, as vLLM requires): the text is cut after the final message.
  {
    name: 'continue: assistant prefill',
    json: `{"messages": [{"role": "user", "content": "Name a colour"}, {"role": "assistant", "content": "The colour is"}], "add_generation_prompt": false, "continue_final_message": true}`,
  },
  {
    name: 'continue: trailing and leading whitespace',
    json: `{"messages": [{"role": "system", "content": "Be brief"}, {"role": "user", "content": "List: a"}, {"role": "assistant", "content": "  - a\\n- b \\n"}], "add_generation_prompt": false, "continue_final_message": true}`,
  },
  {
    name: 'continue: text repeated earlier, multi-part final message',
    json: `{"messages": [{"role": "user", "content": "Say yes"}, {"role": "assistant", "content": [{"type": "text", "text": "Say"}, {"type": "text", "text": "yes "}]}], "add_generation_prompt": false, "continue_final_message": true}`,
  },
  {
    name: 'continue: a user message',
    json: `{"messages": [{"role": "user", "content": "Complete this sentence: the sky is"}], "add_generation_prompt": false, "continue_final_message": true}`,
  },
  {
    name: 'continue: with the default add_generation_prompt (refused)',
    json: `{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hel"}], "continue_final_message": true}`,
  },
  {
    name: 'images and text parts',
    images: true,
    json: `{"messages": [{"role": "user", "content": [{"type": "text", "text": "What is in"}, {"type": "image_url", "image_url": {"url": "https://example.invalid/a.png"}}, {"type": "text", "text": "and this? 🖼"}, {"type": "image_url", "image_url": {"url": "https://example.invalid/b.png"}}]}, {"role": "assistant", "content": "A cat and a dog."}, {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://example.invalid/c.png"}}]}]}`,
  },
];

/** A loaded model as renderChat needs it (template, content format, special tokens, settings); no tokenizer. */
export function renderModel(t: ParityTemplate, exclude: boolean): LoadedModel {
  return {
    name: t.name,
    entry: ModelEntrySchema.parse({ name: t.name, dir: '.', excludeToolsWhenToolChoiceNone: exclude }),
    template: new PyTemplate(t.source),
    toolTemplate: null,
    contentFormat: t.contentFormat,
    specialTokens: t.specialTokens,
    imageRule: null,
  } as unknown as LoadedModel;
}

/** The service's rendering of a raw request: what PromptService.chat does before tokenizing. */
export function renderService(model: LoadedModel, json: string): { text: string } | { error: string } {
  try {
    const request = asRecord(parsePyJson(json))!;
    const messages = normalizeMessages(request.messages);
    const inputs = chatTemplateInputs(request, model);
    const addGenerationPrompt =
      request.add_generation_prompt === undefined ? true : request.add_generation_prompt === true;
    const continueFinalMessage = request.continue_final_message === true;
    return { text: renderChat(model, messages, { addGenerationPrompt, continueFinalMessage, inputs }) };
  } catch (err) {
    return { error: (err as Error).message };
  }
}

export interface ReferenceCase {
  template: string;
  special_tokens: Record<string, string | string[]>;
  content_format: ContentFormat;
  exclude_tools_when_none: boolean;
  request: string;
}

/** Renders every case with Python's Jinja2 (one process for all). */
export function renderReference(cases: ReferenceCase[]): ({ text: string } | { error: string })[] {
  const run = spawnSync(PYTHON, [SCRIPT], {
    input: JSON.stringify(cases),
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  });
  if (run.status !== 0) throw new Error(`jinja2-render.py failed: ${run.stderr}`);
  return JSON.parse(run.stdout) as ({ text: string } | { error: string })[];
}

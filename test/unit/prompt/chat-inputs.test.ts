import { describe, expect, it } from 'vitest';
import { chatTemplateInputs } from '../../../src/prompt/chat-inputs.js';
import { PromptError } from '../../../src/prompt/errors.js';
import { ModelEntrySchema } from '../../../src/prompt/model-config.js';
import { parsePyJson, stringifyPyJson } from '../../../src/prompt/py-json.js';
import { renderModel, parityTemplates, renderService } from './jinja-parity.js';

const qwen3 = parityTemplates().find((t) => t.name === 'qwen3')!;
const model = (settings: Record<string, unknown> = {}) => {
  const m = renderModel(qwen3, false);
  return { ...m, entry: ModelEntrySchema.parse({ name: 'm', dir: '.', ...settings }) };
};
const inputs = (json: string, settings: Record<string, unknown> = {}) =>
  chatTemplateInputs(Object.fromEntries(parsePyJson(json) as Map<string, unknown>), model(settings));
const error = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return [(err as PromptError).code, (err as PromptError).field, (err as Error).message];
  }
  return null;
};

describe('chatTemplateInputs: the request fields vLLM forwards to the chat template', () => {
  it("dumps tools as pydantic's model_dump: declared fields first (missing as null), extras after, in order", () => {
    const { tools } = inputs(
      '{"tools": [{"x": 1, "function": {"parameters": {"b": 2.0, "1": 0}, "strict": true, "name": "f"}}]}',
    );
    expect(stringifyPyJson(tools)).toBe(
      '[{"type":"function","function":{"name":"f","description":null,"parameters":{"b":2.0,"1":0},"strict":true},"x":1}]',
    );
  });

  it('a named tool_choice that matches a tool, and "none" without tools, are accepted (as vLLM accepts them)', () => {
    const named = inputs(
      '{"tools": [{"function": {"name": "f"}}, {"function": {"name": "g"}}], "tool_choice": {"type": "function", "function": {"name": "g"}}}',
    );
    expect(named.tools?.map((t) => t.get('function'))).toEqual([
      new Map([
        ['name', 'f'],
        ['description', null],
        ['parameters', null],
      ]),
      new Map([
        ['name', 'g'],
        ['description', null],
        ['parameters', null],
      ]),
    ]);
    expect(inputs('{"tool_choice": "none"}').tools).toBeNull();
  });

  it('withholds tools only for tool_choice "none" with excludeToolsWhenToolChoiceNone', () => {
    const req = '{"tools": [{"function": {"name": "f"}}], "tool_choice": "none"}';
    expect(inputs(req).tools).toHaveLength(1);
    expect(inputs(req, { excludeToolsWhenToolChoiceNone: true }).tools).toBeNull();
    expect(
      inputs('{"tools": [{"function": {"name": "f"}}], "tool_choice": "auto"}', {
        excludeToolsWhenToolChoiceNone: true,
      }).tools,
    ).toHaveLength(1);
    expect(inputs('{}').tools).toBeNull();
  });

  it('reasoning_effort reaches the template with enable_thinking = effort != "none", unless the kwargs set it', () => {
    expect(inputs('{"reasoning_effort": "none"}').variables).toEqual({
      reasoning_effort: 'none',
      enable_thinking: false,
    });
    expect(inputs('{"reasoning_effort": "high"}').variables).toEqual({
      reasoning_effort: 'high',
      enable_thinking: true,
    });
    expect(inputs('{"reasoning_effort": "low", "chat_template_kwargs": {"enable_thinking": false}}').variables).toEqual(
      { reasoning_effort: 'low' },
    );
    expect(Object.keys(inputs('{"chat_template_kwargs": {"a": 1, "tokenize": true, "z": 2}}').kwargs)).toEqual([
      'a',
      'z',
    ]);
  });

  it('defaultChatTemplateKwargs lie under the request kwargs (vLLM --default-chat-template-kwargs)', () => {
    const settings = { defaultChatTemplateKwargs: { enable_thinking: false, style: 'terse' } };
    expect(inputs('{"chat_template_kwargs": {"style": "long"}}', settings).kwargs).toEqual({
      enable_thinking: false,
      style: 'long',
    });
    // reasoning_effort's enable_thinking wins over a server default (only the request's kwargs stop it).
    expect(inputs('{"reasoning_effort": "high"}', settings).variables).toEqual({
      reasoning_effort: 'high',
      enable_thinking: true,
    });
    const req = '{"messages": [{"role": "user", "content": "hi"}]}';
    expect(renderService(model(settings), req)).toEqual({
      text: '<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n',
    });
  });

  it("a request's own chat_template renders only for a model that trusts it", () => {
    const req =
      '{"messages": [{"role": "user", "content": "hi"}], "chat_template": "[{{ messages[0].content }}|{{ custom }}]", "chat_template_kwargs": {"custom": 2.0}}';
    expect(renderService(model({ trustRequestChatTemplate: true }), req)).toEqual({ text: '[hi|2.0]' });
    expect(renderService(model(), req)).toEqual({
      error: expect.stringMatching(/^chat_template: model "qwen3" does not accept a request's own chat template/),
    });
    expect(error(() => inputs('{"chat_template_kwargs": {"chat_template": "x"}}'))).toEqual([
      'failed_precondition',
      'chat_template_kwargs.chat_template',
      expect.stringContaining('trustRequestChatTemplate'),
    ]);
    const broken = '{"messages": [{"role": "user", "content": "hi"}], "chat_template": "{% if %}"}';
    expect(renderService(model({ trustRequestChatTemplate: true }), broken)).toEqual({
      error: expect.stringMatching(/^chat_template: does not parse/),
    });
  });

  it.each([
    ['{"tools": {"a": 1}}', 'tools', 'must be an array of tool objects'],
    ['{"tools": [{"type": "custom", "function": {"name": "f"}}]}', 'tools[0].type', 'must be "function"'],
    ['{"tools": [{"type": "function"}]}', 'tools[0].function', 'must be an object with a name'],
    [
      '{"tools": [{"function": {"name": "f", "description": 3}}]}',
      'tools[0].function.description',
      'must be a string or null',
    ],
    [
      '{"tools": [{"function": {"name": "f", "parameters": [1]}}]}',
      'tools[0].function.parameters',
      'must be a JSON object or null',
    ],
    ['{"tool_choice": {"function": {}}}', 'tool_choice.function.name', 'must be a non-empty string'],
    [
      '{"tool_choice": 3}',
      'tool_choice',
      'a named tool choice must be {"type": "function", "function": {"name": ...}}',
    ],
    ['{"documents": {"a": "b"}}', 'documents', 'must be an array of objects'],
    ['{"documents": ["x"]}', 'documents[0]', 'must be an object of strings'],
    ['{"chat_template_kwargs": [1]}', 'chat_template_kwargs', 'must be an object'],
    ['{"reasoning_effort": 1}', 'reasoning_effort', 'must be one of none, minimal, low, medium, high, xhigh, max'],
    // vLLM ChatCompletionRequest.check_tool_usage (vllm-project/vllm vllm/entrypoints/openai/chat_completion/protocol.py):
    // a named tool_choice must match one of `tools` by function name; a tool_choice other than "none" needs `tools`.
    [
      '{"tools": [{"type": "function", "function": {"name": "get_weather"}}, {"type": "function", "function": {"name": "get_time"}}], "tool_choice": {"type": "function", "function": {"name": "get_wether"}}}',
      'tool_choice',
      'names function "get_wether", which is not one of the request\'s tools ("get_weather", "get_time")',
    ],
    [
      '{"tool_choice": {"type": "function", "function": {"name": "f"}}}',
      'tool_choice',
      '"f" needs `tools` (vLLM: "When using `tool_choice`, `tools` must be set")',
    ],
    [
      '{"tool_choice": "required"}',
      'tool_choice',
      '"required" needs `tools` (vLLM: "When using `tool_choice`, `tools` must be set")',
    ],
    [
      '{"tools": null, "tool_choice": "auto"}',
      'tool_choice',
      '"auto" needs `tools` (vLLM: "When using `tool_choice`, `tools` must be set")',
    ],
  ])('%s → invalid_argument on %s', (json, field, message) => {
    expect(error(() => inputs(json))).toEqual(['invalid_argument', field, `${field}: ${message}`]);
  });
});

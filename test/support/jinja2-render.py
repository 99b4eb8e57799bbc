#!/usr/bin/python3
"""Reference renderer for the Jinja2 parity test (test/unit/prompt/jinja-parity.test.ts).

Renders chat-completions requests with Python's Jinja2 (Debian's python3-jinja2) the way vLLM + transformers do, so
the service's TypeScript rendering can be compared byte for byte. Facts followed (see docs/models.md):
- vLLM parses the request body with Python's json module (number kinds and key order as written).
- vllm-project/vllm vllm/entrypoints/chat_utils.py: _parse_chat_message_content builds each ConversationMessage
  (role, content as one string or as parts, then tool_calls/reasoning/reasoning_content for assistants, tool_call_id
  for tools, name, tools for developers); _postprocess_messages parses each tool call's arguments with json.loads
  (empty -> {}) and drops an empty tool_calls list.
- vllm-project/vllm vllm/entrypoints/openai/chat_completion/serving.py: tool_dicts = [tool.model_dump() ...], None
  when tool_choice is "none" and --exclude-tools-when-tool-choice-none is set; pydantic's model_dump gives declared
  fields first (type, function: name, description, parameters; missing as None) then extra fields (extra="allow").
- vllm-project/vllm vllm/entrypoints/openai/chat_completion/protocol.py build_chat_params: documents and
  reasoning_effort forwarded over chat_template_kwargs; enable_thinking = reasoning_effort != "none" unless given.
- huggingface/transformers src/transformers/utils/chat_template_utils.py _compile_jinja_template:
  ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols]), tojson =
  json.dumps(x, ensure_ascii=False, indent, separators, sort_keys), globals raise_exception and strftime_now; the
  template renders with the special tokens map, the kwargs, then messages/tools/documents/add_generation_prompt.
- huggingface/transformers apply_chat_template (src/transformers/tokenization_utils_base.py; render_jinja_template in
  src/transformers/utils/chat_template_utils.py in later releases): continue_final_message is an argument of
  apply_chat_template, not a template variable; with add_generation_prompt it is refused ("not compatible"); after
  rendering, the text is cut after the final message's content (the string, or its last block with "text"), found
  with rindex(content.strip()). vLLM passes both flags through (chat_completion/protocol.py build_chat_params), with
  add_generation_prompt defaulting to True.

stdin: a JSON array of cases {template, special_tokens, content_format, exclude_tools_when_none, request}, where
request is the raw JSON text of the request. stdout: a JSON array of {"text": ...} or {"error": ...}.
"""
import datetime
import json
import sys

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment


def environment():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return datetime.datetime.now().strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


TEXT_TYPES = {"text": "text", "input_text": "text", "output_text": "text", "refusal": "refusal"}


def conversation(messages, content_format):
    out = []
    for m in messages:
        role = m["role"]
        content = m.get("content")
        parts = [] if content is None else ([{"type": "text", "text": content}] if isinstance(content, str) else content)
        items = []
        for p in parts:
            if p["type"] in TEXT_TYPES:
                items.append(("text", p[TEXT_TYPES[p["type"]]]))
            else:
                items.append(("image", None))
        if content_format == "string":
            value = "\n".join(t for kind, t in items if kind == "text")
        else:
            value = [{"type": "text", "text": t} if kind == "text" else {"type": "image"} for kind, t in items]
        msg = {"role": role, "content": value}
        if role == "assistant":
            if m.get("tool_calls") is not None:
                msg["tool_calls"] = list(m["tool_calls"])
            reasoning = m.get("reasoning") if m.get("reasoning") is not None else m.get("reasoning_content")
            if reasoning is not None:
                msg["reasoning"] = reasoning
                msg["reasoning_content"] = reasoning
        elif role == "tool" and "tool_call_id" in m:
            msg["tool_call_id"] = m["tool_call_id"]
        if isinstance(m.get("name"), str):
            msg["name"] = m["name"]
        if role == "developer":
            msg["tools"] = m.get("tools")
        out.append(msg)
    for msg in out:
        if msg["role"] == "assistant" and "tool_calls" in msg:
            if len(msg["tool_calls"]) == 0:
                msg.pop("tool_calls")
                continue
            for item in msg["tool_calls"]:
                args = item["function"].get("arguments")
                if args:
                    if not isinstance(args, (dict, list)):
                        item["function"]["arguments"] = json.loads(args)
                else:
                    item["function"]["arguments"] = {}
    return out


def dump_tool(tool):
    fn = tool["function"]
    function = {"name": fn["name"], "description": fn.get("description"), "parameters": fn.get("parameters")}
    function.update({k: v for k, v in fn.items() if k not in function})
    out = {"type": "function", "function": function}
    out.update({k: v for k, v in tool.items() if k not in out})
    return out


def render(env, case):
    request = json.loads(case["request"])
    tools = None
    if request.get("tools") is not None:
        tools = [dump_tool(t) for t in request["tools"]]
    if request.get("tool_choice") == "none" and case.get("exclude_tools_when_none"):
        tools = None
    kwargs = {k: v for k, v in (request.get("chat_template_kwargs") or {}).items() if k not in ("chat_template", "tokenize")}
    ctx = dict(case["special_tokens"])
    ctx.update(kwargs)
    add_generation_prompt = request.get("add_generation_prompt", True)
    continue_final_message = request.get("continue_final_message", False)
    if continue_final_message and add_generation_prompt:
        raise ValueError("continue_final_message and add_generation_prompt are not compatible")
    messages = conversation(request["messages"], case["content_format"])
    ctx.update(messages=messages, tools=tools, documents=request.get("documents"), add_generation_prompt=add_generation_prompt)
    effort = request.get("reasoning_effort")
    if effort is not None:
        ctx["reasoning_effort"] = effort
        if "enable_thinking" not in (request.get("chat_template_kwargs") or {}):
            ctx["enable_thinking"] = effort != "none"
    rendered = env.from_string(case["template"]).render(**ctx)
    if continue_final_message:
        rendered = cut_after_final_message(rendered, messages[-1]["content"])
    return rendered


def cut_after_final_message(rendered, final):
    """transformers' continue_final_message trimming, as its apply_chat_template does it."""
    if isinstance(final, (list, tuple)):
        for block in reversed(final):
            if "text" in block:
                final = block["text"]
                break
        else:
            raise ValueError("continue_final_message is set but we could not find any text to continue")
    if final.strip() not in rendered:
        raise ValueError("continue_final_message is set but the final message does not appear in the chat")
    loc = rendered.rindex(final.strip())
    if rendered[loc : loc + len(final.lstrip())] == final:
        return rendered[: loc + len(final.lstrip())]
    return rendered[: loc + len(final.strip())]


def main():
    env = environment()
    results = []
    for case in json.load(sys.stdin):
        try:
            results.append({"text": render(env, case)})
        except Exception as err:  # the template's raise_exception, or any Jinja2 error: compared as "both fail"
            results.append({"error": f"{type(err).__name__}: {err}"})
    json.dump(results, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()

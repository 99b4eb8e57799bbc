import { invalid } from './errors.js';

/** One image content part, as the caller sent it (validated shape; bytes not yet decoded). */
export interface ImagePartRef {
  /** Path of the part's image_url in the request, used in every error about this image. */
  field: string;
  url: string;
  uuid: string | null;
  identifier: string | null;
  width: number | null;
  height: number | null;
}

export type NormalizedPart = { type: 'text'; text: string } | { type: 'image'; image: ImagePartRef };

/** A chat message after validation: content as parts (a string content becomes one text part). */
export interface NormalizedMessage {
  role: string;
  parts: NormalizedPart[];
  /** Fields passed through to the template as vLLM does (tool_calls with parsed arguments, tool_call_id, name…). */
  extra: Record<string, unknown>;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function optionalDimension(value: unknown, field: string): number | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) throw invalid(field, 'must be a positive integer');
  return value;
}

/** Longest image uuid/identifier: it is hashed into every block the image covers. */
export const MAX_IDENTIFIER_LENGTH = 512;

function optionalIdentifier(value: unknown, field: string): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string' || value.length === 0) throw invalid(field, 'must be a non-empty string');
  if (value.length > MAX_IDENTIFIER_LENGTH) throw invalid(field, `is longer than ${MAX_IDENTIFIER_LENGTH} characters`);
  return value;
}

function imagePart(part: Record<string, unknown>, field: string): ImagePartRef {
  const raw = part.image_url;
  const urlField = `${field}.image_url`;
  let url: unknown;
  let inner: Record<string, unknown> = {};
  if (typeof raw === 'string') url = raw;
  else if (isObject(raw)) {
    inner = raw;
    url = raw.url;
  } else throw invalid(urlField, 'image_url must be an object with a url');
  if (typeof url !== 'string' || url.length === 0) throw invalid(urlField, 'image_url.url must be a non-empty string');
  return {
    field: urlField,
    url,
    uuid: optionalIdentifier(part.uuid, `${field}.uuid`),
    identifier: optionalIdentifier(part.identifier, `${field}.identifier`),
    width: optionalDimension(part.width ?? inner.width, `${field}.width`),
    height: optionalDimension(part.height ?? inner.height, `${field}.height`),
  };
}

function toolCalls(value: unknown, field: string): Record<string, unknown>[] {
  if (!Array.isArray(value)) throw invalid(field, 'tool_calls must be an array');
  return value.map((call, k) => {
    const f = `${field}[${k}]`;
    if (!isObject(call) || !isObject(call.function)) throw invalid(f, 'a tool call needs a function object');
    const fn = call.function;
    if (typeof fn.name !== 'string' || fn.name.length === 0) throw invalid(`${f}.function.name`, 'must be a non-empty string');
    // vLLM parses JSON-string arguments into objects before rendering (templates expect dicts); empty → {}.
    let args: unknown = fn.arguments || {};
    if (typeof args === 'string') {
      try {
        args = JSON.parse(args);
      } catch {
        throw invalid(`${f}.function.arguments`, 'must be a JSON object string');
      }
    }
    return { ...call, function: { ...fn, arguments: args } };
  });
}

/** Validates OpenAI chat-completions messages; errors name the message and part (`messages[2].content[1].text`). */
export function normalizeMessages(value: unknown): NormalizedMessage[] {
  if (!Array.isArray(value) || value.length === 0) throw invalid('messages', 'must be a non-empty array of messages');
  return value.map((msg, i) => {
    const field = `messages[${i}]`;
    if (!isObject(msg)) throw invalid(field, 'a message must be an object');
    const role = msg.role;
    if (typeof role !== 'string' || role.length === 0) throw invalid(`${field}.role`, 'must be a non-empty string');
    const extra: Record<string, unknown> = {};
    if (msg.tool_calls !== undefined && msg.tool_calls !== null) {
      if (role !== 'assistant') throw invalid(`${field}.tool_calls`, 'only assistant messages carry tool calls');
      const calls = toolCalls(msg.tool_calls, `${field}.tool_calls`);
      if (calls.length > 0) extra.tool_calls = calls; // vLLM drops an empty list
    }
    for (const key of ['tool_call_id', 'name', 'reasoning'] as const) {
      if (msg[key] !== undefined && msg[key] !== null) {
        if (typeof msg[key] !== 'string') throw invalid(`${field}.${key}`, 'must be a string');
      }
    }
    // What vLLM's ConversationMessage carries besides role and content.
    if (role === 'tool' && typeof msg.tool_call_id === 'string') extra.tool_call_id = msg.tool_call_id;
    if (typeof msg.name === 'string') extra.name = msg.name;
    if (role === 'assistant' && typeof msg.reasoning === 'string') {
      extra.reasoning = msg.reasoning;
      extra.reasoning_content = msg.reasoning;
    }
    if (role === 'developer') extra.tools = msg.tools ?? null;
    const content = msg.content;
    let parts: NormalizedPart[];
    if (content === undefined || content === null) {
      if (role !== 'assistant') throw invalid(`${field}.content`, 'missing content');
      parts = [];
    } else if (typeof content === 'string') {
      parts = [{ type: 'text', text: content }];
    } else if (Array.isArray(content)) {
      parts = content.map((part, j): NormalizedPart => {
        const pf = `${field}.content[${j}]`;
        if (!isObject(part)) throw invalid(pf, 'a content part must be an object');
        if (part.type === 'text' || part.type === 'input_text' || part.type === 'output_text' || part.type === 'refusal') {
          const key = part.type === 'refusal' ? 'refusal' : 'text';
          if (typeof part[key] !== 'string') throw invalid(`${pf}.${key}`, 'must be a string');
          return { type: 'text', text: part[key] as string };
        }
        if (part.type === 'image_url' || part.type === 'input_image') return { type: 'image', image: imagePart(part, pf) };
        throw invalid(`${pf}.type`, `unknown content part type ${JSON.stringify(part.type)} (supported: text, image_url)`);
      });
    } else {
      throw invalid(`${field}.content`, 'content must be a string, an array of parts, or null');
    }
    return { role, parts, extra };
  });
}

/** Images of all messages, in order. */
export function imageParts(messages: readonly NormalizedMessage[]): ImagePartRef[] {
  return messages.flatMap((m) => m.parts.flatMap((p) => (p.type === 'image' ? [p.image] : [])));
}

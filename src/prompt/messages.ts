import { invalid } from './errors.js';
import { asRecord, numberOf, parsePyJson, PyJsonError, type PyDict } from './py-json.js';

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

function optionalDimension(raw: unknown, field: string): number | null {
  if (raw === undefined || raw === null) return null;
  const value = numberOf(raw) ?? raw;
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0)
    throw invalid(field, 'must be a positive integer');
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
  const rawRecord = asRecord(raw);
  if (typeof raw === 'string') url = raw;
  else if (rawRecord) {
    inner = rawRecord;
    url = rawRecord.url;
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

/** A copy of a JSON object (Map or plain object) with one key's value replaced in place (key order kept). */
function withKey(obj: unknown, key: string, value: unknown): unknown {
  if (obj instanceof Map) return new Map(obj).set(key, value);
  return { ...(obj as Record<string, unknown>), [key]: value };
}

/**
 * vLLM's _postprocess_messages (vllm-project/vllm vllm/entrypoints/chat_utils.py): each call's `arguments` JSON string
 * is parsed with json.loads (here parsePyJson: same number kinds and key order) into what the template sees; an
 * empty or missing value becomes {}; a dict or list is kept as given.
 */
function toolCalls(value: unknown, field: string): unknown[] {
  if (!Array.isArray(value)) throw invalid(field, 'tool_calls must be an array');
  return value.map((call, k) => {
    const f = `${field}[${k}]`;
    const rec = asRecord(call);
    const fn = rec ? asRecord(rec.function) : null;
    if (!rec || !fn) throw invalid(f, 'a tool call needs a function object');
    if (typeof fn.name !== 'string' || fn.name.length === 0)
      throw invalid(`${f}.function.name`, 'must be a non-empty string');
    const raw = fn.arguments;
    let args: unknown;
    if (raw === undefined || raw === null || raw === '') args = new Map() as PyDict;
    else if (typeof raw === 'string') {
      try {
        args = parsePyJson(raw);
      } catch (err) {
        throw invalid(`${f}.function.arguments`, `is not valid JSON: ${(err as PyJsonError).message}`);
      }
    } else if (Array.isArray(raw) || asRecord(raw)) {
      // An empty dict or list is falsy in Python: vLLM replaces it with {} too.
      const size = Array.isArray(raw) ? raw.length : raw instanceof Map ? raw.size : Object.keys(raw as object).length;
      args = size === 0 ? (new Map() as PyDict) : raw;
    } else throw invalid(`${f}.function.arguments`, 'must be a JSON string (or an object)');
    return withKey(call, 'function', withKey(rec.function, 'arguments', args));
  });
}

/** Validates OpenAI chat-completions messages; errors name the message and part (`messages[2].content[1].text`). */
export function normalizeMessages(value: unknown): NormalizedMessage[] {
  if (!Array.isArray(value) || value.length === 0) throw invalid('messages', 'must be a non-empty array of messages');
  return value.map((raw, i) => {
    const field = `messages[${i}]`;
    const msg = asRecord(raw);
    if (!msg) throw invalid(field, 'a message must be an object');
    const role = msg.role;
    if (typeof role !== 'string' || role.length === 0) throw invalid(`${field}.role`, 'must be a non-empty string');
    for (const key of ['tool_call_id', 'name', 'reasoning', 'reasoning_content'] as const) {
      if (msg[key] !== undefined && msg[key] !== null) {
        if (typeof msg[key] !== 'string') throw invalid(`${field}.${key}`, 'must be a string');
      }
    }
    // What vLLM's ConversationMessage carries besides role and content, in its order (chat_utils.py
    // _parse_chat_message_content): assistant tool_calls, reasoning, reasoning_content; tool_call_id; name; tools.
    const extra: Record<string, unknown> = {};
    if (msg.tool_calls !== undefined && msg.tool_calls !== null) {
      if (role !== 'assistant') throw invalid(`${field}.tool_calls`, 'only assistant messages carry tool calls');
      const calls = toolCalls(msg.tool_calls, `${field}.tool_calls`);
      if (calls.length > 0) extra.tool_calls = calls; // vLLM drops an empty list
    }
    // Newer vLLM renames a message's deprecated `reasoning_content` to `reasoning` before validation.
    const reasoning = typeof msg.reasoning === 'string' ? msg.reasoning : msg.reasoning_content;
    if (role === 'assistant' && typeof reasoning === 'string') {
      extra.reasoning = reasoning;
      extra.reasoning_content = reasoning;
    }
    if (role === 'tool' && typeof msg.tool_call_id === 'string') extra.tool_call_id = msg.tool_call_id;
    if (typeof msg.name === 'string') extra.name = msg.name;
    if (role === 'developer') extra.tools = msg.tools ?? null;
    const content = msg.content;
    let parts: NormalizedPart[];
    if (content === undefined || content === null) {
      if (role !== 'assistant') throw invalid(`${field}.content`, 'missing content');
      parts = [];
    } else if (typeof content === 'string') {
      parts = [{ type: 'text', text: content }];
    } else if (Array.isArray(content)) {
      parts = content.map((rawPart, j): NormalizedPart => {
        const pf = `${field}.content[${j}]`;
        const part = asRecord(rawPart);
        if (!part) throw invalid(pf, 'a content part must be an object');
        if (
          part.type === 'text' ||
          part.type === 'input_text' ||
          part.type === 'output_text' ||
          part.type === 'refusal'
        ) {
          const key = part.type === 'refusal' ? 'refusal' : 'text';
          if (typeof part[key] !== 'string') throw invalid(`${pf}.${key}`, 'must be a string');
          return { type: 'text', text: part[key] as string };
        }
        if (part.type === 'image_url' || part.type === 'input_image')
          return { type: 'image', image: imagePart(part, pf) };
        throw invalid(
          `${pf}.type`,
          `unknown content part type ${JSON.stringify(part.type)} (supported: text, image_url)`,
        );
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

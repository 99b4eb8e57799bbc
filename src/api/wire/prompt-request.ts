/**
 * Chat and prompt text checked for UTF-8 on the wire, before the generic decoder would replace bad bytes with U+FFFD:
 * ChatInput's text fields (inside Score, ComputeBlockKeys, Render and Select) and the prompt of ComputeBlockKeys, Render and
 * Select.
 */

import { CHAT_INPUT, COMPUTE_BLOCK_KEYS_REQUEST, RENDER_REQUEST, SELECT_REQUEST, WIRE_LEN } from './fields.js';
import { Reader, WireFormatError } from './reader.js';
import { decodeGeneric, UndecodableRequest } from './undecodable.js';

/** ChatInput's text fields by field number (`chat.<name>` for error messages); its other fields are varints. */
const CHAT_TEXT_FIELDS: Record<number, string> = {};
for (const [name, f] of Object.entries(CHAT_INPUT)) {
  if (f.wire === WIRE_LEN) CHAT_TEXT_FIELDS[f.number] = `chat.${name}`;
}

/** ChatInput's text fields must be UTF-8 (checked on the wire, before the generic decoder replaces bad bytes). */
export function checkChatText(r: Reader): void {
  const end = r.lengthEnd();
  const outer = r.end;
  r.end = end;
  while (r.pos < end) {
    r.field = 'chat';
    const tag = r.tag();
    const field = tag >>> 3;
    const name = CHAT_TEXT_FIELDS[field] ?? null;
    if (name !== null && (tag & 7) === WIRE_LEN) {
      r.field = name;
      r.utf8String();
    } else r.skip(tag);
  }
  r.end = outer;
}

/** Methods with chat/prompt text besides Score, by gRPC path: the field numbers of their chat and prompt inputs. */
export const PROMPT_FIELDS: Readonly<Record<string, { chat: number; prompt: number }>> = {
  '/kvindexer.v1.KvIndexer/ComputeBlockKeys': {
    chat: COMPUTE_BLOCK_KEYS_REQUEST.chat.number,
    prompt: COMPUTE_BLOCK_KEYS_REQUEST.prompt.number,
  },
  '/kvindexer.v1.KvIndexer/Render': { chat: RENDER_REQUEST.chat.number, prompt: RENDER_REQUEST.prompt.number },
  '/kvindexer.v1.KvIndexer/Select': { chat: SELECT_REQUEST.chat.number, prompt: SELECT_REQUEST.prompt.number },
};

/**
 * A request with a chat or prompt input other than Score (ComputeBlockKeys, Render): its text fields are checked for
 * UTF-8 on the wire, then the generic decoder decodes it. `fields`: the field numbers of its chat and prompt inputs.
 */
export function decodePromptRequest<T>(
  buf: Buffer,
  generic: (buf: Buffer) => T,
  name: string,
  fields: { chat: number; prompt: number },
): T | UndecodableRequest {
  try {
    const r = new Reader(buf, buf.length);
    while (r.pos < r.end) {
      r.field = 'request';
      const tag = r.tag();
      const field = tag >>> 3;
      if ((tag & 7) === WIRE_LEN && field === fields.chat) checkChatText(r);
      else if ((tag & 7) === WIRE_LEN && field === fields.prompt) {
        r.field = 'prompt';
        r.utf8String();
      } else r.skip(tag);
    }
  } catch (err) {
    if (err instanceof WireFormatError) return new UndecodableRequest(`malformed ${name}: ${err.message}`);
    throw err;
  }
  return decodeGeneric(buf, generic, name);
}

/**
 * llm-d's topic convention `kv@<pod-ip>:<port>@<model>` (spec/vllm-kv-events.md §1). Exactly three parts separated by
 * `@`; anything else is a configuration error to report, never to guess. The endpoint identity is `<ip>:<port>`
 * (plus `@dp<rank>` for data-parallel ranks > 0) — the same string the picker passes as a candidate.
 */
import { parseHostPort } from '../../common/index.js';

/** Re-exported: the rank identity is defined once, in src/common/. */
export { rankIdentity } from '../../common/index.js';

export const TOPIC_PREFIX = 'kv@';

export interface ParsedTopic {
  /** `<ip>:<port>`, as published. */
  endpoint: string;
  model: string;
}

export type TopicResult = { ok: true; topic: ParsedTopic } | { ok: false; reason: string };

export function parseTopic(topic: string): TopicResult {
  const parts = topic.split('@');
  if (parts.length !== 3) {
    return {
      ok: false,
      reason: `topic "${topic}" must have exactly 3 '@'-separated parts (kv@<ip>:<port>@<model>), has ${parts.length}`,
    };
  }
  const [prefix, endpoint, model] = parts;
  if (prefix !== 'kv') return { ok: false, reason: `topic "${topic}" must start with "kv@"` };
  // One spelling per endpoint: `:080` would be another identity than the picker's `:80`; 65536+ is no port.
  const hostPort = parseHostPort(endpoint);
  if (!hostPort.ok) {
    const why = hostPort.problem === 'port' ? hostPort.message : `endpoint "${endpoint}" is not <host>:<port>`;
    return { ok: false, reason: `topic "${topic}": ${why}` };
  }
  if (model.length === 0) return { ok: false, reason: `topic "${topic}" has an empty model name` };
  return { ok: true, topic: { endpoint, model } };
}

/**
 * llm-d's topic convention `kv@<pod-ip>:<port>@<model>` (spec/vllm-kv-events.md §1). Exactly three parts separated by
 * `@`; anything else is a configuration error to report, never to guess. The endpoint identity is `<ip>:<port>`
 * (plus `@dp<rank>` for data-parallel ranks > 0) — the same string the picker passes as a candidate.
 */

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
    return { ok: false, reason: `topic "${topic}" must have exactly 3 '@'-separated parts (kv@<ip>:<port>@<model>), has ${parts.length}` };
  }
  const [prefix, endpoint, model] = parts;
  if (prefix !== 'kv') return { ok: false, reason: `topic "${topic}" must start with "kv@"` };
  const hostPort = /^(\[[0-9a-fA-F:.]+\]|[^:\s\[\]]+):(\d{1,5})$/.exec(endpoint);
  if (!hostPort) return { ok: false, reason: `topic "${topic}": endpoint "${endpoint}" is not <host>:<port>` };
  // One spelling per endpoint: `:080` would be another identity than the picker's `:80`; 65536+ is no port.
  const port = hostPort[2];
  if (port.startsWith('0') || Number(port) > 65535) {
    return { ok: false, reason: `topic "${topic}": port "${port}" is not a port number (1-65535, no leading zero)` };
  }
  if (model.length === 0) return { ok: false, reason: `topic "${topic}" has an empty model name` };
  return { ok: true, topic: { endpoint, model } };
}

/** The scoring identity of one data-parallel rank of an endpoint: rank 0 is the endpoint itself. */
export function rankIdentity(endpoint: string, rank: number | null): string {
  return rank === null || rank === 0 ? endpoint : `${endpoint}@dp${rank}`;
}

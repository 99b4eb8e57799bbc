import { describe, expect, it } from 'vitest';
import { parseTopic } from '../../../src/events/wire/topic.js';

/**
 * Issue 17, bug 8: `kv@10.0.0.1:65536@m`, `:99999` and `:080` were accepted. The topic's `<ip>:<port>` is llm-d's
 * pod identity (spec/vllm-kv-events.md §1; llm-d/llm-d-kv-cache-manager pkg/kvcache/kvevents/pool.go: the
 * `PodIdentifier` is extracted from the topic and keys the index entries), matched as a string against the picker's
 * candidates, so it must be one valid spelling: a port 1-65535 without leading zeros.
 */
describe('topic ports', () => {
  it.each(['65536', '99999', '080', '0', '00080'])('refuses port %s, naming it', (port) => {
    const topic = `kv@10.0.0.1:${port}@m`;
    expect(parseTopic(topic)).toEqual({
      ok: false,
      reason: `topic "${topic}": port "${port}" is not a port number (1-65535, no leading zero)`,
    });
  });

  it.each([
    ['10.0.0.1:1', '10.0.0.1:1'],
    ['10.0.0.1:80', '10.0.0.1:80'],
    ['10.0.0.1:65535', '10.0.0.1:65535'],
    ['[fd00::1]:8000', '[fd00::1]:8000'],
    ['pod-a.svc:8000', 'pod-a.svc:8000'],
  ])('accepts %s', (endpoint, identity) => {
    expect(parseTopic(`kv@${endpoint}@Qwen/Qwen3-8B`)).toEqual({
      ok: true,
      topic: { endpoint: identity, model: 'Qwen/Qwen3-8B' },
    });
  });
});

import { describe, expect, it } from 'vitest';
import { parseEventSources, sourcesUrl } from '../../../src/events/discovery-sources.js';

/**
 * The answer of vLLM's `GET /kv_event_sources` (vLLM #55844): per data-parallel rank `{data_parallel_rank, endpoint,
 * replay_endpoint, topic}`, as a bare array (vllm/entrypoints/serve/kv_events/api_router.py and
 * tests/entrypoints/serve/kv_events/test_api_router.py) or wrapped in `{"sources": [...]}` (the PR revision in
 * tests/entrypoints/serve/test_kv_events_router.py, whose sample answer is used below).
 */
const BASE = 'http://10.0.0.1:8000';
const VLLM_SAMPLE = [
  { data_parallel_rank: 1, endpoint: 'tcp://0.0.0.0:41002', replay_endpoint: null, topic: 'kv-events' },
  {
    data_parallel_rank: 0,
    endpoint: 'tcp://0.0.0.0:41001',
    replay_endpoint: 'tcp://0.0.0.0:41003',
    topic: 'kv-events',
  },
];
const reason = (f: () => unknown) => {
  try {
    f();
  } catch (err) {
    return (err as Error).message;
  }
  return 'accepted';
};

describe("vLLM's /kv_event_sources answer", () => {
  it('reads the bare array and the {"sources"} envelope; a wildcard host becomes the URL host', () => {
    const expected = [
      { rank: 1, endpoint: 'tcp://10.0.0.1:41002', replay: null, topic: 'kv-events' },
      { rank: 0, endpoint: 'tcp://10.0.0.1:41001', replay: 'tcp://10.0.0.1:41003', topic: 'kv-events' },
    ];
    expect(parseEventSources(JSON.stringify(VLLM_SAMPLE), BASE, 64)).toEqual(expected);
    expect(parseEventSources(JSON.stringify({ sources: VLLM_SAMPLE }), BASE, 64)).toEqual(expected);
    // vLLM's own single-rank sample: a resolved node IP is kept, an empty topic is fine.
    expect(
      parseEventSources(
        '[{"data_parallel_rank":0,"endpoint":"tcp://10.0.0.1:5557","replay_endpoint":null,"topic":""}]',
        BASE,
        64,
      ),
    ).toEqual([{ rank: 0, endpoint: 'tcp://10.0.0.1:5557', replay: null, topic: '' }]);
    expect(parseEventSources('[{"endpoint":"tcp://*:5557"}]', 'http://[fd00::7]:8000', 64)).toEqual([
      { rank: 0, endpoint: 'tcp://[fd00::7]:5557', replay: null, topic: '' },
    ]);
    expect(parseEventSources('{"sources":[]}', BASE, 64)).toEqual([]);
    expect(sourcesUrl('http://h:8000/')).toBe('http://h:8000/kv_event_sources');
    expect(sourcesUrl('https://h/proxy')).toBe('https://h/proxy/kv_event_sources');
  });

  it('refuses a bad answer whole, with a named reason', () => {
    const one = (o: object) => JSON.stringify([{ data_parallel_rank: 0, endpoint: 'tcp://h:1', ...o }]);
    expect(reason(() => parseEventSources('<html>oops', BASE, 64))).toMatch(/^bad_json: /);
    expect(reason(() => parseEventSources('{"endpoints": []}', BASE, 64))).toBe(
      'bad_shape: expected a JSON array of sources or {"sources": [...]}',
    );
    expect(reason(() => parseEventSources('"tcp://h:1"', BASE, 64))).toBe(
      'bad_shape: expected a JSON array of sources or {"sources": [...]}',
    );
    expect(reason(() => parseEventSources('[7]', BASE, 64))).toBe('bad_field: sources[0] is not an object');
    expect(reason(() => parseEventSources(one({ data_parallel_rank: '0' }), BASE, 64))).toBe(
      'bad_field: sources[0].data_parallel_rank "0" is not an integer 0..63',
    );
    expect(reason(() => parseEventSources(one({ data_parallel_rank: 64 }), BASE, 64))).toBe(
      'bad_field: sources[0].data_parallel_rank 64 is not an integer 0..63',
    );
    expect(reason(() => parseEventSources(one({ endpoint: 5557 }), BASE, 64))).toBe(
      'bad_field: sources[0].endpoint 5557 is not tcp://<host>:<port 1..65535>',
    );
    expect(reason(() => parseEventSources(one({ endpoint: 'tcp://*:0' }), BASE, 64))).toBe(
      'bad_field: sources[0].endpoint "tcp://*:0" is not tcp://<host>:<port 1..65535>',
    );
    expect(reason(() => parseEventSources(one({ endpoint: 'ipc:///tmp/kv' }), BASE, 64))).toBe(
      'bad_field: sources[0].endpoint "ipc:///tmp/kv" is not tcp://<host>:<port 1..65535>',
    );
    expect(reason(() => parseEventSources(one({ replay_endpoint: true }), BASE, 64))).toBe(
      'bad_field: sources[0].replay_endpoint true is not tcp://<host>:<port 1..65535>',
    );
    expect(reason(() => parseEventSources(one({ topic: 3 }), BASE, 64))).toBe(
      'bad_field: sources[0].topic 3 is not a string',
    );
    const twice = JSON.stringify([VLLM_SAMPLE[0], VLLM_SAMPLE[0]]);
    expect(reason(() => parseEventSources(twice, BASE, 64))).toBe(
      'duplicate_rank: sources[1]: data_parallel_rank 1 listed twice',
    );
    const many = JSON.stringify(
      Array.from({ length: 10_000 }, (_, r) => ({ data_parallel_rank: r, endpoint: `tcp://h:${1000 + r}` })),
    );
    expect(reason(() => parseEventSources(many, BASE, 64))).toBe(
      'too_many_sources: 10000 sources listed, at most 64 (discovery.maxSources)',
    );
  });
});

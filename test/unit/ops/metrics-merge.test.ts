import { Registry, Counter, Gauge, Histogram } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { mergeExpositions } from '../../../src/ops/metrics-merge.js';

/** A registry as a serving process has one: a labelled counter, an unlabelled gauge, a histogram. */
async function processText(stored: number, entries: number): Promise<string> {
  const registry = new Registry();
  new Counter({ name: 'kv_blocks_total', help: 'Blocks', labelNames: ['op'], registers: [registry] }).inc(
    { op: 'stored' },
    stored,
  );
  new Gauge({ name: 'kv_entries', help: 'Entries', registers: [registry] }).set(entries);
  new Histogram({ name: 'kv_seconds', help: 'Latency', buckets: [0.1], registers: [registry] }).observe(0.05);
  return registry.metrics();
}

describe('mergeExpositions', () => {
  it('writes each family once and labels every sample of a labelled source', async () => {
    const own = '# HELP process_up Up\n# TYPE process_up gauge\nprocess_up 1\n';
    const merged = mergeExpositions([
      { text: own },
      { text: await processText(4, 7), label: { name: 'worker', value: '0' } },
      { text: await processText(3, 3), label: { name: 'worker', value: '1' } },
    ]);
    expect(merged).toBe(
      [
        '# HELP process_up Up',
        '# TYPE process_up gauge',
        'process_up 1',
        '# HELP kv_blocks_total Blocks',
        '# TYPE kv_blocks_total counter',
        'kv_blocks_total{worker="0",op="stored"} 4',
        'kv_blocks_total{worker="1",op="stored"} 3',
        '# HELP kv_entries Entries',
        '# TYPE kv_entries gauge',
        'kv_entries{worker="0"} 7',
        'kv_entries{worker="1"} 3',
        '# HELP kv_seconds Latency',
        '# TYPE kv_seconds histogram',
        'kv_seconds_bucket{worker="0",le="0.1"} 1',
        'kv_seconds_bucket{worker="0",le="+Inf"} 1',
        'kv_seconds_sum{worker="0"} 0.05',
        'kv_seconds_count{worker="0"} 1',
        'kv_seconds_bucket{worker="1",le="0.1"} 1',
        'kv_seconds_bucket{worker="1",le="+Inf"} 1',
        'kv_seconds_sum{worker="1"} 0.05',
        'kv_seconds_count{worker="1"} 1',
        '',
      ].join('\n'),
    );
  });

  it('keeps a family that only one source has, escapes label values, and leaves empty input empty', () => {
    expect(
      mergeExpositions([
        { text: 'a_total{x="1"} 2\n', label: { name: 'w', value: 'q"\\' } },
        { text: '# HELP b B\n# TYPE b gauge\nb{} 5\n' },
      ]),
    ).toBe('a_total{w="q\\"\\\\",x="1"} 2\n# HELP b B\n# TYPE b gauge\nb{} 5\n');
    expect(mergeExpositions([{ text: '' }, { text: '\n', label: { name: 'w', value: '0' } }])).toBe('');
  });
});

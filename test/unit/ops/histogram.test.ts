import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { LabelledHistogram } from '../../../src/ops/histogram.js';
import { Metrics } from '../../../src/ops/metrics.js';

const BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];
/** Values on, between, below and above the bounds, in several series, first seen in a mixed order. */
const OBSERVATIONS: [string, number][] = [
  ['tokens', 0.00003],
  ['chat', 0.0123],
  ['tokens', 0.0001],
  ['tokens', 0.00025000001],
  ['block_keys', 0],
  ['tokens', 1],
  ['chat', 7.5],
  ['prompt', 0.1],
  ['tokens', 0.000047],
  ['chat', 1e-9],
  ['with "quote" \\ and\nnewline', 0.3],
];

/** The same observations through prom-client's Histogram and through LabelledHistogram, each in its registry. */
function both(help = 'Score latency by input kind (chat, prompt, tokens, block_keys)') {
  const reference = new Registry();
  const ours = new Registry();
  const promClient = new Histogram({
    name: 'x_seconds',
    help,
    labelNames: ['input'],
    buckets: BUCKETS,
    registers: [reference],
  });
  const labelled = new LabelledHistogram({
    name: 'x_seconds',
    help,
    label: 'input',
    buckets: BUCKETS,
    registers: [ours],
  });
  return { reference, ours, promClient, labelled };
}

describe('LabelledHistogram', () => {
  it('writes the /metrics text prom-client writes for the same observations', async () => {
    const { reference, ours, promClient, labelled } = both();
    expect(await ours.metrics()).toBe(await reference.metrics()); // no observation yet: HELP and TYPE only
    for (const [input, v] of OBSERVATIONS) {
      promClient.observe({ input }, v);
      labelled.observe(input, v);
      expect(await ours.metrics()).toBe(await reference.metrics());
    }
    expect(await ours.getMetricsAsJSON()).toEqual(await reference.getMetricsAsJSON());
  });

  it('writes exactly these lines (prom-client 15 text format)', async () => {
    const { ours, labelled } = both('help');
    labelled.observe('tokens', 0.0002);
    labelled.observe('tokens', 2);
    labelled.child('chat').observe(0.001);
    expect(await ours.metrics()).toBe(
      [
        '# HELP x_seconds help',
        '# TYPE x_seconds histogram',
        ...BUCKETS.map((le, i) => `x_seconds_bucket{le="${le}",input="tokens"} ${i === 0 ? 0 : 1}`),
        'x_seconds_bucket{le="+Inf",input="tokens"} 2',
        'x_seconds_sum{input="tokens"} 2.0002',
        'x_seconds_count{input="tokens"} 2',
        ...BUCKETS.map((le) => `x_seconds_bucket{le="${le}",input="chat"} ${le >= 0.001 ? 1 : 0}`),
        'x_seconds_bucket{le="+Inf",input="chat"} 1',
        'x_seconds_sum{input="chat"} 0.001',
        'x_seconds_count{input="chat"} 1',
        '',
      ].join('\n'),
    );
    expect(BUCKETS.map(String).slice(0, 2)).toEqual(['0.0001', '0.00025']);
  });

  it('resets as prom-client does, and refuses a value that is not a finite number', async () => {
    const { reference, ours, promClient, labelled } = both();
    for (const [input, v] of OBSERVATIONS) {
      promClient.observe({ input }, v);
      labelled.observe(input, v);
    }
    reference.resetMetrics();
    ours.resetMetrics();
    expect(await ours.metrics()).toBe(await reference.metrics());
    promClient.observe({ input: 'prompt' }, 0.02);
    labelled.observe('prompt', 0.02);
    promClient.observe({ input: 'tokens' }, 0.0004);
    labelled.observe('tokens', 0.0004);
    expect(await ours.metrics()).toBe(await reference.metrics());
    expect(() => promClient.observe({ input: 'tokens' }, NaN)).toThrow('Value is not a valid number: NaN');
    expect(() => labelled.observe('tokens', NaN)).toThrow('Value is not a valid number: NaN');
    expect(() => labelled.observe('tokens', Infinity)).toThrow(TypeError);
  });
});

describe('Metrics: the Score histograms', () => {
  it("keep prom-client's families, help, buckets and label on /metrics", async () => {
    const m = new Metrics('t_');
    const reference = new Registry();
    const ref = (name: string, help: string, buckets: number[]) =>
      new Histogram({ name, help, labelNames: ['input'], buckets, registers: [reference] });
    const score = ref('t_score_seconds', 'Score latency by input kind (chat, prompt, tokens, block_keys)', BUCKETS);
    const hit = ref(
      't_score_hit_ratio',
      'Best candidate matched blocks / total blocks per Score call',
      [0, 0.1, 0.25, 0.5, 0.75, 0.9, 1],
    );
    const prepare = ref(
      't_prompt_prepare_seconds',
      'Time to turn a Score request into block keys (chat: render + tokenize + expand images + hash)',
      [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    );
    const calls: [string, number, number, number][] = [
      ['tokens', 0.00004, 64, 64],
      ['chat', 0.004, 10, 3],
      ['tokens', 0.0002, 0, 0],
      ['block_keys', 0.03, 8, 0],
    ];
    for (const [input, seconds, total, best] of calls) {
      m.observePrepare(input, seconds / 2);
      prepare.observe({ input }, seconds / 2);
      m.observeScore(input, seconds, total, best);
      score.observe({ input }, seconds);
      if (total > 0) hit.observe({ input }, best / total);
    }
    const text = await m.registry.metrics();
    // Registered where the prom-client histograms were: the families keep their place on /metrics.
    expect(
      m.registry
        .getMetricsAsArray()
        .map((metric) => metric.name)
        .filter((name) => !/^t_(process|nodejs)_/.test(name)),
    ).toEqual([
      't_score_seconds',
      't_score_hit_ratio',
      't_prompt_prepare_seconds',
      't_image_identifiers_total',
      't_image_url_fetches_total',
      't_load_scrape_seconds',
      't_score_degraded_total',
    ]);
    for (const name of ['t_score_seconds', 't_score_hit_ratio', 't_prompt_prepare_seconds']) {
      expect(familyOf(text, name)).toBe(familyOf(await reference.metrics(), name));
      expect(familyOf(text, name)).toContain(`${name}_count{input="chat"} 1`);
    }
  });
});

/** One family's block of /metrics text (HELP, TYPE and samples). */
function familyOf(text: string, name: string): string {
  return text
    .split('\n\n')
    .filter((block) => block.startsWith(`# HELP ${name} `))
    .map((block) => block.replace(/\n$/, '')) // the registry's last family ends the text with a newline
    .join('\n\n');
}

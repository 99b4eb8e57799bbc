import { describe, expect, it } from 'vitest';
import { Metrics } from '../../../src/ops/metrics.js';

/** Families read from their owners at scrape time: gauges and counters, and what a failed read shows. */
describe('Metrics snapshot families', () => {
  const family = (text: string, name: string) =>
    text
      .split('\n')
      .filter((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`) || l.startsWith(`# TYPE ${name} `));

  it('exports counts as counters and levels as gauges', async () => {
    const m = new Metrics('t_');
    let drops = { full: 3, bad: 0 };
    m.counter('t_drops_total', 'drops', 'reason', () => drops);
    m.gauge('t_depth', 'depth', null, () => ({ '': 7 }));
    expect(family(await m.registry.metrics(), 't_drops_total')).toEqual([
      '# TYPE t_drops_total counter',
      't_drops_total{reason="full"} 3',
      't_drops_total{reason="bad"} 0',
    ]);
    expect(family(await m.registry.metrics(), 't_depth')).toEqual(['# TYPE t_depth gauge', 't_depth 7']);
    drops = { full: 5, bad: 1 };
    expect(family(await m.registry.metrics(), 't_drops_total')).toEqual([
      '# TYPE t_drops_total counter',
      't_drops_total{reason="full"} 5',
      't_drops_total{reason="bad"} 1',
    ]);
  });

  it('keeps a counter at its last figure and shows a gauge as unknown when the owner cannot be read', async () => {
    const m = new Metrics('t_');
    let up = true;
    const read = () => {
      if (!up) throw new Error('backend down');
      return { '': 42 };
    };
    m.counter('t_evictions_total', 'evictions', null, read);
    m.gauge('t_entries', 'entries', null, read);
    await m.registry.metrics();
    up = false;
    const text = await m.registry.metrics();
    expect(family(text, 't_evictions_total')).toEqual(['# TYPE t_evictions_total counter', 't_evictions_total 42']);
    expect(family(text, 't_entries')).toEqual([
      '# TYPE t_entries gauge',
      't_entries Nan' /* prom-client's spelling of NaN */,
    ]);
  });

  it('refuses a *_total gauge and a counter not named *_total', () => {
    const m = new Metrics('t_');
    expect(() => m.gauge('t_x_total', 'x', null, () => ({}))).toThrow(
      't_x_total: a *_total family only grows: register it with counter()',
    );
    expect(() => m.counter('t_x', 'x', null, () => ({}))).toThrow("t_x: a counter family's name ends in _total");
  });
});

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MAX_LINE_CHARS, PromTextParser, parsePromText, parseValue } from '../../../src/scoring/load/prom-text.js';
import { LOAD_METRICS, PageLoads } from '../../../src/scoring/load/vllm-load.js';
import { metricsUrlFromTemplate } from '../../../src/scoring/load/metrics-url.js';

const FIXTURE = readFileSync(new URL('../../../fixtures/vllm-metrics/vllm-0.11-dp2.prom', import.meta.url), 'utf8');

describe('Prometheus text format 0.0.4 parser', () => {
  it('parses names, labels, values and timestamps exactly', () => {
    const page = [
      '# HELP up Whether the target is up.',
      '# TYPE up gauge',
      'up 1',
      'up{job="a",instance="x:1"} 0.5 1700000000123',
      'rate_total{le="0.1",} -3e-2',
      '',
    ].join('\n');
    const { samples, stats, types, help } = parsePromText(page);
    expect(samples).toEqual([
      { name: 'up', labels: {}, value: 1, timestampMs: null },
      { name: 'up', labels: { job: 'a', instance: 'x:1' }, value: 0.5, timestampMs: 1700000000123 },
      { name: 'rate_total', labels: { le: '0.1' }, value: -0.03, timestampMs: null },
    ]);
    expect(stats).toEqual({ lines: 5, samples: 3, skipped: 0 }); // the final newline ends line 5: no sixth line
    expect(types.get('up')).toBe('gauge');
    expect(help.get('up')).toBe('Whether the target is up.');
  });

  it('resolves the label-value escapes \\\\, \\" and \\n, and HELP escapes', () => {
    const page = 'm{path="C:\\\\dir\\\\f",q="say \\"hi\\"",multi="a\\nb"} 2\n# HELP m first\\nsecond \\\\ back\n';
    const { samples, help, stats } = parsePromText(page);
    expect(samples[0].labels).toEqual({ path: 'C:\\dir\\f', q: 'say "hi"', multi: 'a\nb' });
    expect(help.get('m')).toBe('first\nsecond \\ back');
    expect(stats.skipped).toBe(0);
  });

  it('reads NaN, +Inf, -Inf (any case) and refuses other words', () => {
    const { samples } = parsePromText('a NaN\nb +Inf\nc -Inf\nd inf\ne 1.5E3\nf .5\n');
    expect(samples.map((s) => s.value)).toEqual([NaN, Infinity, -Infinity, Infinity, 1500, 0.5]);
    expect(parseValue('one')).toBeNull();
    expect(parseValue('0x10')).toBeNull();
    expect(parseValue('')).toBeNull();
  });

  it('handles CRLF, blank lines, indented comments and a last line without newline', () => {
    const { samples, stats } = parsePromText('# TYPE x gauge\r\n\r\n   \r\n  # a free comment\r\nx{a="1"} 7\r\ny 8');
    expect(samples).toEqual([
      { name: 'x', labels: { a: '1' }, value: 7, timestampMs: null },
      { name: 'y', labels: {}, value: 8, timestampMs: null },
    ]);
    expect(stats).toEqual({ lines: 6, samples: 2, skipped: 0 });
  });

  it('counts and skips garbage lines, never throws, and keeps the valid ones around them', () => {
    const garbage = [
      'ok 1',
      'this is not a metric line',
      '{a="b"} 1',
      'm{a="unterminated} 1',
      'm{a="x"',
      'm{a="bad \\t escape"} 1',
      'm{a="1",a="2"} 1',
      'm{1a="x"} 1',
      'm 1 2 3',
      'm 1 notatimestamp',
      'm',
      'm{} one',
      '# TYPE m nonsense',
      '# TYPE 9bad gauge',
      '\u0000\u0001binary',
      'ok 2',
    ].join('\n');
    const { samples, stats } = parsePromText(garbage);
    expect(samples.map((s) => [s.name, s.value])).toEqual([
      ['ok', 1],
      ['ok', 2],
    ]);
    expect(stats).toEqual({ lines: 16, samples: 2, skipped: 14 });
  });

  it('reads histogram and summary lines as samples of their family, typed by it', () => {
    const page = [
      '# TYPE lat histogram',
      'lat_bucket{le="0.5"} 3',
      'lat_bucket{le="+Inf"} 4',
      'lat_sum 1.25',
      'lat_count 4',
      '# TYPE q summary',
      'q{quantile="0.99"} 0.2',
      'q_sum 9',
      'q_count 10',
    ].join('\n');
    const parsed = parsePromText(page);
    expect(parsed.stats.skipped).toBe(0);
    expect(parsed.samples.map((s) => `${s.name}${JSON.stringify(s.labels)}=${s.value}`)).toEqual([
      'lat_bucket{"le":"0.5"}=3',
      'lat_bucket{"le":"+Inf"}=4',
      'lat_sum{}=1.25',
      'lat_count{}=4',
      'q{"quantile":"0.99"}=0.2',
      'q_sum{}=9',
      'q_count{}=10',
    ]);
    expect(['lat_bucket', 'lat_sum', 'lat_count', 'q', 'q_count', 'other'].map((n) => parsed.typeOf(n))).toEqual([
      'histogram',
      'histogram',
      'histogram',
      'summary',
      'summary',
      undefined,
    ]);
  });

  it('gives the same result whatever the chunking (split mid-line, mid-escape, mid-CRLF)', () => {
    const page = FIXTURE.replaceAll('\n', '\r\n');
    const whole = parsePromText(page);
    for (const size of [1, 7, 64, 4096]) {
      const samples: unknown[] = [];
      const parser = new PromTextParser((s) => samples.push(s));
      for (let i = 0; i < page.length; i += size) parser.push(page.slice(i, i + size));
      expect(parser.end()).toEqual(whole.stats);
      expect(samples).toEqual(whole.samples);
    }
    expect(whole.stats).toEqual({ lines: 338, samples: 278, skipped: 0 }); // 338 lines, 60 of them HELP/TYPE
  });

  it('skips a line longer than MAX_LINE_CHARS without buffering it, and goes on after its newline', () => {
    const samples: string[] = [];
    const parser = new PromTextParser((s) => samples.push(`${s.name}=${s.value}`));
    parser.push('a 1\nhuge{x="');
    for (let i = 0; i < 40; i++) parser.push('y'.repeat(16 * 1024)); // 640 KiB of one line, in chunks
    parser.push('"} 2\nb 3\nlast');
    parser.push('line{x="');
    parser.push('z'.repeat(MAX_LINE_CHARS + 1));
    expect(parser.end()).toEqual({ lines: 4, samples: 2, skipped: 2 });
    expect(samples).toEqual(['a=1', 'b=3']);
  });

  it('with a wanted filter, reports only those names and checks other lines only up to their name', () => {
    const { samples, stats } = parsePromText('a 1\nb{x="unterminated} 2\nc 3\n9bad 4\n', {
      wanted: (n) => n === 'a' || n === 'c',
    });
    expect(samples.map((s) => s.name)).toEqual(['a', 'c']);
    expect(stats).toEqual({ lines: 4, samples: 2, skipped: 1 });
  });
});

describe('vLLM load figures of a page', () => {
  function loads(page: string) {
    const out = new PageLoads();
    parsePromText(page, { wanted: (n) => LOAD_METRICS.has(n) }).samples.forEach((s) => out.add(s));
    return out;
  }

  it('reads each data-parallel engine of a vLLM 0.11 page by its engine label', () => {
    const page = loads(FIXTURE);
    expect(page.figures(0, 'Qwen/Qwen3-0.6B')).toEqual({ running: 3, waiting: 1, kvUsage: 0.25 });
    expect(page.figures(1, null)).toEqual({ running: 5, waiting: 7, kvUsage: 0.625 });
    expect(page.figures(2, null)).toBe('no vLLM load series for engine "2"');
  });

  it('sums a page without engine labels, prefers the endpoint model, and falls back to gpu_cache_usage_perc', () => {
    const page = loads(
      [
        'vllm:num_requests_running{model_name="a"} 2',
        'vllm:num_requests_running{model_name="a",extra="x"} 1',
        'vllm:num_requests_running{model_name="b"} 10',
        'vllm:num_requests_waiting{model_name="a"} 4',
        'vllm:num_requests_waiting{model_name="b"} 40',
        'vllm:gpu_cache_usage_perc{model_name="a"} 0.5',
        'vllm:gpu_cache_usage_perc{model_name="b"} 0.75',
      ].join('\n'),
    );
    expect(page.figures(0, 'b')).toEqual({ running: 10, waiting: 40, kvUsage: 0.75 });
    expect(page.figures(0, null)).toEqual({ running: 3, waiting: 4, kvUsage: 0.5 });
    expect(page.figures(0, 'unknown')).toEqual({ running: 3, waiting: 4, kvUsage: 0.5 });
  });

  it('prefers kv_cache_usage_perc over the older name when both are served', () => {
    const page = loads(
      'vllm:num_requests_running 1\nvllm:num_requests_waiting 0\nvllm:gpu_cache_usage_perc 0.9\nvllm:kv_cache_usage_perc 0.1\n',
    );
    expect(page.figures(0, null)).toEqual({ running: 1, waiting: 0, kvUsage: 0.1 });
  });

  it('names what is missing or not a number', () => {
    expect(loads('vllm:num_requests_running 1\n').figures(0, null)).toBe(
      'missing vllm:num_requests_waiting, vllm:kv_cache_usage_perc',
    );
    expect(loads('garbage\n').figures(0, null)).toBe('no vLLM load series on the page');
    expect(
      loads('vllm:num_requests_running NaN\nvllm:num_requests_waiting 0\nvllm:kv_cache_usage_perc 0\n').figures(
        0,
        null,
      ),
    ).toBe('vllm:num_requests_running is NaN');
    expect(
      loads('vllm:num_requests_running 1\nvllm:num_requests_waiting -1\nvllm:kv_cache_usage_perc 0\n').figures(0, null),
    ).toBe('vllm:num_requests_waiting is -1');
  });
});

describe('metrics URL of an endpoint identity', () => {
  it('fills the template from <host>:<port>, the same page for every @dp rank; host names only when allowed', () => {
    const t = 'http://{host}:{port}/metrics';
    expect(metricsUrlFromTemplate(t, '10.0.0.5:8000')).toBe('http://10.0.0.5:8000/metrics');
    expect(metricsUrlFromTemplate(t, '10.0.0.5:8000@dp3')).toBe('http://10.0.0.5:8000/metrics');
    expect(metricsUrlFromTemplate(t, '[fd00::5]:8000')).toBe('http://[fd00::5]:8000/metrics');
    expect(metricsUrlFromTemplate('https://{host}:9{port}/m', '10.0.0.5:80')).toBe('https://10.0.0.5:980/m');
    expect(metricsUrlFromTemplate(t, 'vllm-0.internal:8000')).toBeNull();
    expect(metricsUrlFromTemplate(t, 'vllm-0.internal:8000', true)).toBe('http://vllm-0.internal:8000/metrics');
    expect(metricsUrlFromTemplate(t, 'not an identity')).toBeNull();
  });
});

describe('pushBytes (the scraper: lines checked by byte, only wanted ones decoded)', () => {
  function byBytes(page: Buffer, chunk: number, wanted: ReadonlySet<string>) {
    const samples: string[] = [];
    const parser = new PromTextParser((s) => samples.push(`${s.name}${JSON.stringify(s.labels)}=${s.value}`), {
      wanted,
    });
    for (let i = 0; i < page.length; i += chunk) parser.pushBytes(page.subarray(i, i + chunk));
    return { samples, stats: { ...parser.end() }, types: [...parser.types] };
  }

  it('finds exactly the samples the string path finds, however the page is split (mid-line, mid-CRLF, mid-character)', () => {
    const page = Buffer.from(
      `${FIXTURE.replaceAll('\n', '\r\n')}vllm:num_requests_waiting{model_name="ü→名",engine="9"} 4`,
    );
    const { samples: expected } = parsePromText(page.toString('utf8'), { wanted: LOAD_METRICS });
    const want = expected.map((s) => `${s.name}${JSON.stringify(s.labels)}=${s.value}`);
    expect(want).toHaveLength(7); // running, waiting, KV usage of engines 0 and 1; the last line
    expect(want.at(-1)).toBe('vllm:num_requests_waiting{"model_name":"ü→名","engine":"9"}=4');
    for (const chunk of [1, 2, 3, 7, 64, 1000, page.length]) {
      const got = byBytes(page, chunk, LOAD_METRICS);
      expect(got.samples, `chunks of ${chunk}`).toEqual(want);
      expect(got.stats).toEqual({ lines: 339, samples: 7, skipped: 0 });
      // TYPE lines are read for the wanted families only (the string path reads all 30 of this page).
      expect(got.types.map(([name]) => name).sort()).toEqual([
        'vllm:kv_cache_usage_perc',
        'vllm:num_requests_running',
        'vllm:num_requests_waiting',
      ]);
    }
  });

  it('counts invalid lines as the string path does, checking other families (and their HELP/TYPE) up to their name', () => {
    const page = Buffer.from(
      [
        'not a metric', // another name, then a blank: valid up to its name
        '{}', // no name: invalid
        '=1', // no name: invalid
        'm-x 1', // a name ended by `-`: invalid
        '# TYPE other bogus', // another family's TYPE: checked up to its name only
        '# TYPE vllm:num_requests_running bogus', // a wanted family's TYPE: read whole, invalid type
        '# TYPE', // no name: invalid
        '# just a comment',
        'vllm:num_requests_running{x="unterminated} 1', // wanted: parsed whole, invalid
        'vllm:num_requests_running{engine="0"} 2',
        '',
      ].join('\n'),
    );
    for (const chunk of [1, 5, page.length]) {
      const got = byBytes(page, chunk, LOAD_METRICS);
      expect(got.samples).toEqual(['vllm:num_requests_running{"engine":"0"}=2']);
      expect(got.stats).toEqual({ lines: 10, samples: 1, skipped: 6 });
    }
  });

  it('drops an over-long line without buffering it and goes on with the next', () => {
    const parser = new PromTextParser(() => {}, { wanted: LOAD_METRICS });
    parser.pushBytes(Buffer.from('vllm:num_requests_running{x="'));
    for (let i = 0; i < 40; i++) parser.pushBytes(Buffer.alloc(16 * 1024, 'y'));
    parser.pushBytes(Buffer.from('"} 2\nvllm:num_requests_running 3\n'));
    expect(parser.end()).toEqual({ lines: 2, samples: 1, skipped: 1 });
  });
});

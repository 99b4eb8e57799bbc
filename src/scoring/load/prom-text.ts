/**
 * A streaming parser of the Prometheus text exposition format 0.0.4 (what vLLM's /metrics serves through
 * prometheus_client): `# HELP` / `# TYPE` / other comments, blank lines, CRLF, samples
 * `name{label="value",...} value [timestamp]` with the label-value escapes `\\`, `\"` and `\n`, values NaN / +Inf / -Inf.
 *
 * Chunks are pushed as they arrive, so a page is never held whole: only the current unfinished line is buffered.
 * A line that is not valid is counted in `skipped` and ignored (never a throw). With a `wanted` filter, lines of other
 * metric names are checked only up to their name (that is what keeps scraping 256 pages five times a second cheap);
 * wanted lines are parsed completely.
 */

export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
  /** Milliseconds since the epoch when the line carries one, else null. */
  timestampMs: number | null;
}

export type PromType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
const TYPES = new Set<string>(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

export interface PromParseStats {
  /** Lines seen (blank and comment lines included). */
  lines: number;
  /** Samples handed to the callback (wanted ones only, with a filter). */
  samples: number;
  /** Invalid lines, ignored. */
  skipped: number;
}

export interface PromParserOptions {
  /** Only samples whose metric name passes are parsed in full and reported. */
  wanted?: (name: string) => boolean;
}

const NAME_START = /[a-zA-Z_:]/;
const NAME_CHAR = /[a-zA-Z0-9_:]/;
const LABEL_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const METRIC_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const FLOAT_RE = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const INT_RE = /^[+-]?\d+$/;
/** Suffixes of a histogram's or summary's sample lines: they belong to the family without the suffix. */
const FAMILY_SUFFIXES = ['_bucket', '_sum', '_count', '_created'];

export class PromTextParser {
  readonly stats: PromParseStats = { lines: 0, samples: 0, skipped: 0 };
  /** `# TYPE` per family name. */
  readonly types = new Map<string, PromType>();
  /** `# HELP` per family name (escapes resolved). */
  readonly help = new Map<string, string>();
  private rest = '';

  constructor(
    private readonly onSample: (sample: PromSample) => void,
    private readonly options: PromParserOptions = {},
  ) {}

  /** Feeds the next piece of the page (any split: mid-line, mid-CRLF). */
  push(chunk: string): void {
    let text = this.rest + chunk;
    let start = 0;
    for (let nl = text.indexOf('\n', start); nl >= 0; nl = text.indexOf('\n', start)) {
      this.line(text.slice(start, nl));
      start = nl + 1;
    }
    text = text.slice(start);
    this.rest = text;
  }

  /** The page is complete: its last line may lack a newline. */
  end(): PromParseStats {
    if (this.rest !== '') this.line(this.rest);
    this.rest = '';
    return this.stats;
  }

  /** The TYPE of the family a sample name belongs to (`x_bucket` → x's histogram), or undefined if not declared. */
  typeOf(sampleName: string): PromType | undefined {
    const own = this.types.get(sampleName);
    if (own) return own;
    for (const suffix of FAMILY_SUFFIXES) {
      if (!sampleName.endsWith(suffix)) continue;
      const family = this.types.get(sampleName.slice(0, -suffix.length));
      if (family === 'histogram' || family === 'summary' || (family === 'counter' && suffix === '_created')) return family;
    }
    return undefined;
  }

  private line(raw: string): void {
    this.stats.lines++;
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    const first = firstNonBlank(line);
    if (first === line.length) return; // blank
    if (line[first] === '#') {
      if (!this.comment(line.slice(first + 1))) this.stats.skipped++;
      return;
    }
    const sample = this.sample(line, first);
    if (sample === 'unwanted') return;
    if (sample === null) {
      this.stats.skipped++;
      return;
    }
    this.stats.samples++;
    this.onSample(sample);
  }

  /** HELP and TYPE are checked; any other comment is free text. False for a malformed HELP/TYPE. */
  private comment(body: string): boolean {
    const words = body.trimStart();
    const keyword = /^(HELP|TYPE)[ \t]+/.exec(words);
    if (!keyword) return true;
    const rest = words.slice(keyword[0].length);
    const nameEnd = rest.search(/[ \t]|$/);
    const name = rest.slice(0, nameEnd);
    if (!METRIC_RE.test(name)) return false;
    const tail = rest.slice(nameEnd).replace(/^[ \t]+/, '');
    if (keyword[1] === 'TYPE') {
      if (!TYPES.has(tail.trimEnd())) return false;
      this.types.set(name, tail.trimEnd() as PromType);
    } else {
      const text = unescapeHelp(tail);
      if (text === null) return false;
      this.help.set(name, text);
    }
    return true;
  }

  private sample(line: string, at: number): PromSample | 'unwanted' | null {
    let i = at;
    if (!NAME_START.test(line[i])) return null;
    while (i < line.length && NAME_CHAR.test(line[i])) i++;
    const name = line.slice(at, i);
    if (i < line.length && line[i] !== '{' && line[i] !== ' ' && line[i] !== '\t') return null;
    if (this.options.wanted && !this.options.wanted(name)) return 'unwanted';
    const labels: Record<string, string> = {};
    i = skipBlank(line, i);
    if (line[i] === '{') {
      const end = parseLabels(line, i + 1, labels);
      if (end < 0) return null;
      i = end;
    }
    const rest = line.slice(i).trim().split(/[ \t]+/);
    if (rest.length < 1 || rest.length > 2 || rest[0] === '') return null;
    const value = parseValue(rest[0]);
    if (value === null) return null;
    let timestampMs: number | null = null;
    if (rest.length === 2) {
      if (!INT_RE.test(rest[1])) return null;
      timestampMs = Number(rest[1]);
    }
    return { name, labels, value, timestampMs };
  }
}

/** Parses a whole page at once (tests, tools): every sample (or the wanted ones), the families' TYPE and HELP. */
export function parsePromText(text: string, options: PromParserOptions = {}) {
  const samples: PromSample[] = [];
  const parser = new PromTextParser((s) => samples.push(s), options);
  parser.push(text);
  const stats = parser.end();
  return { samples, stats, types: parser.types, help: parser.help, typeOf: (name: string) => parser.typeOf(name) };
}

/** A sample value: a decimal float (Go's ParseFloat forms) or NaN / ±Inf (case-insensitive, as Go accepts). */
export function parseValue(text: string): number | null {
  if (FLOAT_RE.test(text)) return Number(text);
  const lower = text.toLowerCase();
  if (lower === 'nan') return NaN;
  if (lower === '+inf' || lower === 'inf' || lower === '+infinity' || lower === 'infinity') return Infinity;
  if (lower === '-inf' || lower === '-infinity') return -Infinity;
  return null;
}

/**
 * `{a="x",b="y\"z"}` from just after the `{`: fills `labels`, returns the index after `}` or -1 when malformed
 * (bad name, missing quote, unknown escape, duplicate name). A trailing comma is allowed, as in the format.
 */
function parseLabels(line: string, from: number, labels: Record<string, string>): number {
  let i = skipBlank(line, from);
  while (line[i] !== '}') {
    const eq = line.indexOf('=', i);
    if (eq < 0) return -1;
    const label = line.slice(i, eq).trim();
    if (!LABEL_RE.test(label) || Object.hasOwn(labels, label)) return -1;
    i = skipBlank(line, eq + 1);
    if (line[i] !== '"') return -1;
    let value = '';
    for (i++; ; i++) {
      if (i >= line.length) return -1;
      const c = line[i];
      if (c === '"') break;
      if (c !== '\\') {
        value += c;
        continue;
      }
      const next = line[++i];
      if (next === '\\' || next === '"') value += next;
      else if (next === 'n') value += '\n';
      else return -1;
    }
    labels[label] = value;
    i = skipBlank(line, i + 1);
    if (line[i] === ',') i = skipBlank(line, i + 1);
    else if (line[i] !== '}') return -1;
  }
  return i + 1;
}

/** HELP text escapes: `\\` and `\n` (a lone backslash before anything else is kept, as Prometheus does). */
function unescapeHelp(text: string): string | null {
  return text.replace(/\\(.)?/g, (_, c: string | undefined) => (c === 'n' ? '\n' : c === '\\' ? '\\' : `\\${c ?? ''}`));
}

function firstNonBlank(line: string): number {
  return skipBlank(line, 0);
}

function skipBlank(line: string, i: number): number {
  while (i < line.length && (line[i] === ' ' || line[i] === '\t')) i++;
  return i;
}

/**
 * A streaming parser of the Prometheus text exposition format 0.0.4 (what vLLM's /metrics serves through
 * prometheus_client): `# HELP` / `# TYPE` / other comments, blank lines, CRLF, samples
 * `name{label="value",...} value [timestamp]` with the label-value escapes `\\`, `\"` and `\n`, values NaN / +Inf / -Inf.
 *
 * Chunks are pushed as they arrive, so a page is never held whole: only the current unfinished line is buffered.
 * A line that is not valid is counted in `skipped` and ignored (never a throw). With a `wanted` filter, lines of other
 * metric names are checked only up to their name (that is what keeps scraping 256 pages five times a second cheap);
 * wanted lines are parsed completely.
 *
 * `pushBytes` is the scraper's form: the page's raw bytes, split into lines and checked by byte; only a wanted line
 * (a handful of a vLLM page's ~1,000) is decoded to a string. With a set filter, `# HELP` / `# TYPE` lines of other
 * families are checked up to their name as well (their text is not read). Every byte the checks look at is ASCII, so a
 * multi-byte UTF-8 character in a skipped line is never decoded, and in a wanted line is decoded whole.
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
  /**
   * Only samples of these metric names (or whose name passes the function) are parsed in full and reported. A set is
   * the fast form: a line's name is compared in place, by length first, never copied unless wanted.
   */
  wanted?: ReadonlySet<string> | ((name: string) => boolean);
}

/** A longer line is garbage (no real label set comes near): it is skipped, not buffered. */
export const MAX_LINE_CHARS = 256 * 1024;
const CR = 13;
const NL = 10;
const HELP_BYTES = Buffer.from('HELP');
const TYPE_BYTES = Buffer.from('TYPE');
const HASH = 35;
const BRACE = 123;
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
  /** Inside a line longer than MAX_LINE_CHARS: skipping to its end. */
  private discarding = false;
  /** Wanted names by length (the set form of `wanted`). */
  private readonly byLength: Map<number, string[]> | null = null;
  private readonly wantedFn: ((name: string) => boolean) | null = null;
  /** The set filter's names as bytes, by length (pushBytes). */
  private readonly bytesByLength: Map<number, Buffer[]> | null = null;
  /** pushBytes: the current unfinished line's bytes. */
  private restBytes: Buffer | null = null;

  constructor(
    private readonly onSample: (sample: PromSample) => void,
    options: PromParserOptions = {},
  ) {
    const wanted = options.wanted;
    if (typeof wanted === 'function') this.wantedFn = wanted;
    else if (wanted) {
      this.byLength = new Map();
      this.bytesByLength = new Map();
      for (const name of wanted) {
        this.byLength.set(name.length, [...(this.byLength.get(name.length) ?? []), name]);
        const bytes = Buffer.from(name, 'latin1');
        this.bytesByLength.set(bytes.length, [...(this.bytesByLength.get(bytes.length) ?? []), bytes]);
      }
    }
  }

  /**
   * Feeds the next raw bytes of the page (UTF-8, any split). Lines are found and checked in the buffer; only the
   * current unfinished line is copied (joined with the next chunk). Do not mix with `push` on one parser.
   */
  pushBytes(chunk: Buffer): void {
    if (this.discarding) {
      const nl = chunk.indexOf(NL);
      if (nl < 0) return;
      this.endOverlong();
      chunk = chunk.subarray(nl + 1);
    }
    let buf = chunk;
    if (this.restBytes) {
      // Only the line that straddles the two chunks is joined; the rest of the chunk is read in place.
      const nl = chunk.indexOf(NL);
      if (nl < 0) {
        this.keepRest(Buffer.concat([this.restBytes, chunk]));
        return;
      }
      const joined = Buffer.concat([this.restBytes, chunk.subarray(0, nl + 1)]);
      this.restBytes = null;
      this.byteLine(joined, 0, joined.length - 1);
      buf = chunk.subarray(nl + 1);
    }
    let start = 0;
    for (let nl = buf.indexOf(NL); nl >= 0; nl = buf.indexOf(NL, start)) {
      this.byteLine(buf, start, nl);
      start = nl + 1;
    }
    // A copy: the kept rest must not pin (or alias) the socket's chunk.
    this.keepRest(start < buf.length ? Buffer.from(buf.subarray(start)) : null);
  }

  /** The unfinished line, unless it is already over-long (then dropped up to its newline). */
  private keepRest(rest: Buffer | null): void {
    this.restBytes = rest;
    if (rest && rest.length > MAX_LINE_CHARS) {
      this.restBytes = null;
      this.discarding = true;
    }
  }

  /** The line buf[start, end) checked by byte; decoded and read by `line` only when it needs more than its name. */
  private byteLine(buf: Buffer, start: number, end: number): void {
    let e = end;
    if (e > start && buf[e - 1] === CR) e--;
    let i = start;
    while (i < e && isBlank(buf[i])) i++;
    if (i === e || this.bytesByLength === null) return this.decoded(buf, start, end);
    const comment = buf[i] === HASH;
    if (comment) {
      // `# HELP name …` / `# TYPE name …`: the family's name decides; other comments are free text.
      i++;
      while (i < e && isBlank(buf[i])) i++;
      const keyword = i + 4 <= e && (isWord(buf, i, HELP_BYTES) || isWord(buf, i, TYPE_BYTES));
      if (!keyword || (i + 4 < e && !isBlank(buf[i + 4]))) {
        this.stats.lines++;
        return;
      }
      i += 4;
      while (i < e && isBlank(buf[i])) i++;
      if (i === e || !isNameStart(buf[i])) return this.decoded(buf, start, end); // malformed: the string path says so
    } else if (!isNameStart(buf[i])) {
      this.stats.lines++;
      this.stats.skipped++;
      return;
    }
    let k = i;
    while (++k < e && isNameChar(buf[k]));
    if (k < e && buf[k] !== BRACE && !isBlank(buf[k])) {
      if (comment) return this.decoded(buf, start, end);
      this.stats.lines++;
      this.stats.skipped++;
      return;
    }
    const candidates = this.bytesByLength.get(k - i);
    if (candidates && candidates.some((w) => isWord(buf, i, w))) return this.decoded(buf, start, end);
    this.stats.lines++; // another family's line: valid up to its name, not read further
  }

  private decoded(buf: Buffer, start: number, end: number): void {
    const text = buf.toString('utf8', start, end);
    this.line(text, 0, text.length);
  }

  /** Feeds the next piece of the page (any split: mid-line, mid-CRLF). Lines are read in place, not copied. */
  push(chunk: string): void {
    if (this.discarding) {
      const nl = chunk.indexOf('\n');
      if (nl < 0) return;
      this.endOverlong();
      chunk = chunk.slice(nl + 1);
    }
    // The kept rest has no newline: the search starts after it (a long line is not scanned again per chunk).
    const from = this.rest.length;
    const text = this.rest === '' ? chunk : this.rest + chunk;
    let start = 0;
    for (let nl = text.indexOf('\n', from); nl >= 0; nl = text.indexOf('\n', start)) {
      this.line(text, start, nl);
      start = nl + 1;
    }
    this.rest = start < text.length ? text.slice(start) : '';
    if (this.rest.length > MAX_LINE_CHARS) {
      this.rest = '';
      this.discarding = true; // dropped up to its newline: memory stays bounded by a line, not the page
    }
  }

  /** The page is complete: its last line may lack a newline. */
  end(): PromParseStats {
    if (this.discarding) this.endOverlong();
    if (this.rest !== '') this.line(this.rest, 0, this.rest.length);
    if (this.restBytes) this.byteLine(this.restBytes, 0, this.restBytes.length);
    this.rest = '';
    this.restBytes = null;
    return this.stats;
  }

  private endOverlong(): void {
    this.discarding = false;
    this.stats.lines++;
    this.stats.skipped++;
  }

  /** The TYPE of the family a sample name belongs to (`x_bucket` → x's histogram), or undefined if not declared. */
  typeOf(sampleName: string): PromType | undefined {
    const own = this.types.get(sampleName);
    if (own) return own;
    for (const suffix of FAMILY_SUFFIXES) {
      if (!sampleName.endsWith(suffix)) continue;
      const family = this.types.get(sampleName.slice(0, -suffix.length));
      if (family === 'histogram' || family === 'summary' || (family === 'counter' && suffix === '_created'))
        return family;
    }
    return undefined;
  }

  /** The line text[start, end): the hot path, so names are scanned by char code and only wanted lines are sliced. */
  private line(text: string, start: number, end: number): void {
    this.stats.lines++;
    if (end > start && text.charCodeAt(end - 1) === CR) end--;
    let i = start;
    while (i < end && isBlank(text.charCodeAt(i))) i++;
    if (i === end) return; // blank
    if (text.charCodeAt(i) === HASH) {
      if (!this.comment(text, i + 1, end)) this.stats.skipped++;
      return;
    }
    let k = i;
    if (!isNameStart(text.charCodeAt(k))) {
      this.stats.skipped++;
      return;
    }
    while (++k < end && isNameChar(text.charCodeAt(k)));
    if (k < end && text.charCodeAt(k) !== BRACE && !isBlank(text.charCodeAt(k))) {
      this.stats.skipped++;
      return;
    }
    if (this.byLength && !this.byLength.get(k - i)?.some((name) => text.startsWith(name, i))) return;
    if (this.wantedFn && !this.wantedFn(text.slice(i, k))) return;
    const sample = this.sample(text.slice(i, end), k - i);
    if (sample === null) {
      this.stats.skipped++;
      return;
    }
    this.stats.samples++;
    this.onSample(sample);
  }

  /** HELP and TYPE are checked; any other comment is free text (not copied). False for a malformed HELP/TYPE. */
  private comment(text: string, from: number, end: number): boolean {
    let i = from;
    while (i < end && isBlank(text.charCodeAt(i))) i++;
    const isHelp = text.startsWith('HELP', i);
    if (!isHelp && !text.startsWith('TYPE', i)) return true;
    if (i + 4 < end && !isBlank(text.charCodeAt(i + 4))) return true; // `# HELPFUL…`: a free comment
    const rest = text.slice(i + 4, end).replace(/^[ \t]+/, '');
    const nameEnd = rest.search(/[ \t]|$/);
    const name = rest.slice(0, nameEnd);
    if (!METRIC_RE.test(name)) return false;
    const tail = rest.slice(nameEnd).replace(/^[ \t]+/, '');
    if (!isHelp) {
      const type = tail.trimEnd();
      if (!TYPES.has(type)) return false;
      this.types.set(name, type as PromType);
    } else {
      this.help.set(name, unescapeHelp(tail));
    }
    return true;
  }

  /** A sample line (leading blanks removed) whose name, `nameLength` long, was checked already; null when invalid. */
  private sample(line: string, nameLength: number): PromSample | null {
    const name = line.slice(0, nameLength);
    const labels: Record<string, string> = {};
    let i = skipBlank(line, nameLength);
    if (line[i] === '{') {
      const end = parseLabels(line, i + 1, labels);
      if (end < 0) return null;
      i = end;
    }
    const rest = line
      .slice(i)
      .trim()
      .split(/[ \t]+/);
    if (rest.length > 2 || rest[0] === '') return null;
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
function unescapeHelp(text: string): string {
  return text.replace(/\\(.)?/g, (_, c: string | undefined) => (c === 'n' ? '\n' : c === '\\' ? '\\' : `\\${c ?? ''}`));
}

const isBlank = (c: number) => c === 32 || c === 9;
/** [a-zA-Z_:] */
const isNameStart = (c: number) => (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || c === 58;
/** [a-zA-Z0-9_:] */
const isNameChar = (c: number) => isNameStart(c) || (c >= 48 && c <= 57);

/** Whether buf holds `word` at `at`, byte by byte (no copy). */
function isWord(buf: Buffer, at: number, word: Buffer): boolean {
  if (at + word.length > buf.length) return false;
  for (let j = 0; j < word.length; j++) if (buf[at + j] !== word[j]) return false;
  return true;
}

function skipBlank(line: string, i: number): number {
  while (i < line.length && (line[i] === ' ' || line[i] === '\t')) i++;
  return i;
}

import { invalid } from './errors.js';

/**
 * A JSON value as Python's `json.loads` sees it, for vLLM's multimodal hash (spec/vllm-mm-hash.md §3, §5): object key
 * order is kept as written (JS objects move integer-like keys first), and a number is an int unless its literal has a
 * fraction or an exponent (`2.0` stays a float; JSON.parse would make it 2). The hash serializes ints as int64 and
 * floats as float64, so the difference changes the identifier.
 */
export type PyValue =
  | { t: 'str'; v: string }
  | { t: 'int'; v: bigint }
  | { t: 'float'; v: number }
  | { t: 'bool'; v: boolean }
  | { t: 'none' }
  | { t: 'list'; v: PyValue[] }
  | { t: 'dict'; v: [string, PyValue][] };

const MAX_DEPTH = 32;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** Parses a JSON object text into ordered Python-typed entries; errors name `field`. */
export function parsePyObject(text: string, field: string): [string, PyValue][] {
  const p = new Parser(text, field);
  p.ws();
  const value = p.value(0);
  p.ws();
  if (p.pos !== text.length) p.fail('unexpected text after the JSON value');
  if (value.t !== 'dict') throw invalid(field, 'must be a JSON object');
  return value.v;
}

/**
 * A JS value (a request object already parsed by JSON.parse) as Python would type it: integral numbers are ints.
 * Callers that have the request text should use parsePyObject, which keeps `2.0` a float.
 */
export function pyFromJs(value: unknown, field: string, depth = 0): PyValue {
  if (depth > MAX_DEPTH) throw invalid(field, `nested deeper than ${MAX_DEPTH} levels`);
  if (value === null) return { t: 'none' };
  if (typeof value === 'string') return { t: 'str', v: value };
  if (typeof value === 'boolean') return { t: 'bool', v: value };
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw invalid(field, 'must be a finite number');
    return Number.isSafeInteger(value) ? { t: 'int', v: BigInt(value) } : { t: 'float', v: value };
  }
  if (Array.isArray(value)) return { t: 'list', v: value.map((x, i) => pyFromJs(x, `${field}[${i}]`, depth + 1)) };
  if (typeof value === 'object') {
    return { t: 'dict', v: Object.entries(value as Record<string, unknown>).map(([k, x]) => [k, pyFromJs(x, `${field}.${k}`, depth + 1)]) };
  }
  throw invalid(field, `unsupported value of type ${typeof value}`);
}

class Parser {
  pos = 0;
  constructor(
    private readonly s: string,
    private readonly field: string,
  ) {}

  fail(message: string): never {
    throw invalid(this.field, `not valid JSON at character ${this.pos}: ${message}`);
  }

  ws(): void {
    while (this.pos < this.s.length && ' \t\n\r'.includes(this.s[this.pos])) this.pos++;
  }

  value(depth: number): PyValue {
    if (depth > MAX_DEPTH) this.fail(`nested deeper than ${MAX_DEPTH} levels`);
    const c = this.s[this.pos];
    if (c === '{') return this.object(depth);
    if (c === '[') return this.array(depth);
    if (c === '"') return { t: 'str', v: this.string() };
    if (c === '-' || (c >= '0' && c <= '9')) return this.number();
    for (const [word, v] of [['true', { t: 'bool', v: true }], ['false', { t: 'bool', v: false }], ['null', { t: 'none' }]] as const) {
      if (this.s.startsWith(word, this.pos)) {
        this.pos += word.length;
        return v;
      }
    }
    return this.fail('expected a value');
  }

  private object(depth: number): PyValue {
    this.pos++;
    // Python dicts keep a repeated key at its first position with its last value.
    const entries: [string, PyValue][] = [];
    const at = new Map<string, number>();
    this.ws();
    if (this.s[this.pos] === '}') {
      this.pos++;
      return { t: 'dict', v: entries };
    }
    for (;;) {
      this.ws();
      if (this.s[this.pos] !== '"') this.fail('expected a string key');
      const key = this.string();
      this.ws();
      if (this.s[this.pos++] !== ':') this.fail('expected ":"');
      this.ws();
      const v = this.value(depth + 1);
      const i = at.get(key);
      if (i === undefined) {
        at.set(key, entries.length);
        entries.push([key, v]);
      } else entries[i] = [key, v];
      this.ws();
      const c = this.s[this.pos++];
      if (c === '}') return { t: 'dict', v: entries };
      if (c !== ',') this.fail('expected "," or "}"');
    }
  }

  private array(depth: number): PyValue {
    this.pos++;
    const items: PyValue[] = [];
    this.ws();
    if (this.s[this.pos] === ']') {
      this.pos++;
      return { t: 'list', v: items };
    }
    for (;;) {
      this.ws();
      items.push(this.value(depth + 1));
      this.ws();
      const c = this.s[this.pos++];
      if (c === ']') return { t: 'list', v: items };
      if (c !== ',') this.fail('expected "," or "]"');
    }
  }

  private string(): string {
    const start = this.pos;
    this.pos++;
    for (;;) {
      const c = this.s[this.pos];
      if (c === undefined) this.fail('unterminated string');
      if (c === '"') break;
      if (c === '\\') this.pos++;
      else if (c < ' ') this.fail('control character in a string');
      this.pos++;
    }
    this.pos++;
    try {
      return JSON.parse(this.s.slice(start, this.pos)) as string;
    } catch {
      return this.fail('bad string escape');
    }
  }

  private number(): PyValue {
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(this.s.slice(this.pos, this.pos + 400));
    if (!m) this.fail('bad number');
    this.pos += m[0].length;
    if (m[2] === undefined && m[3] === undefined) {
      const v = BigInt(m[0]);
      // numpy turns ints outside int64 into an object array; vLLM's hasher would not produce int64 bytes for them.
      if (v < INT64_MIN || v > INT64_MAX) this.fail('integer outside the int64 range');
      return { t: 'int', v };
    }
    const v = Number(m[0]);
    if (!Number.isFinite(v)) this.fail('number out of the float64 range');
    return { t: 'float', v };
  }
}

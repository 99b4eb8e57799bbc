/**
 * JSON as Python's `json` module reads and writes it — the way vLLM sees a request and the way a chat template's
 * `tojson` prints it.
 *
 * JavaScript's JSON.parse loses two things Python keeps, and both change the rendered prompt:
 * - number kinds: `json.loads("2.0")` is the float 2.0 and `json.dumps` prints it back as `2.0`; JSON.parse gives the
 *   number 2, printed `2`. Integers keep all their digits in Python (`12345678901234567890`), not in a double.
 * - key order: a Python dict keeps insertion order for every key; a JS object moves integer-like keys
 *   (`"2025"`, `"10"`) first, in numeric order.
 *
 * So `parsePyJson` returns objects as `Map`s (insertion order, duplicate keys: last value in the first position, like
 * a dict), integers as `PyInt` (their decimal digits) and floats as `PyFloat` (a double, printed with Python's
 * `repr`). It accepts what `json.loads` accepts, including `NaN`, `Infinity` and `-Infinity`.
 */
import { InvalidInputError } from '../common/index.js';

/** A JSON integer as Python holds it: arbitrary precision, printed with its own digits. */
export class PyInt {
  readonly text: string;
  constructor(text: string) {
    // json.loads("-0") is the int 0.
    this.text = text === '-0' ? '0' : text;
  }
  get value(): number {
    return Number(this.text);
  }
}

/** A JSON number with a fraction or exponent: a Python float (a double), printed with `repr`. */
export class PyFloat {
  constructor(readonly value: number) {}
}

export type PyValue = null | boolean | string | PyInt | PyFloat | PyValue[] | PyDict;
export type PyDict = Map<string, PyValue>;

export class PyJsonError extends InvalidInputError {}

/** Deeper documents are refused (Python's own parser hits its recursion limit around 1000). */
export const MAX_JSON_DEPTH = 512;

/**
 * Whether a value given as plain objects and arrays nests deeper than `max` levels, found without recursion. A request
 * given as objects rather than JSON text gets the same bound as parsePyJson gives text: past it, converting and
 * rendering recurse so deep that whether the stack overflows depends on how much of it the caller already used (a
 * request was refused once and prepared on its retry). A Map is parsePyJson's output, which bounded its own nesting
 * when it was parsed: it is not walked again (the gRPC front end hands every chat field over as parsed Maps inside
 * plain arrays and objects, and walking them would repeat the parser's check on every chat request).
 */
export function nestedDeeperThan(value: unknown, max: number): boolean {
  // As parsePyJson counts: the top value is at depth 0, a container's members one deeper, and any value deeper than
  // `max` is refused.
  const pending: object[] = [];
  const depths: number[] = [];
  if (value !== null && typeof value === 'object' && !(value instanceof Map)) {
    pending.push(value);
    depths.push(0);
  }
  while (pending.length > 0) {
    const v = pending.pop()!;
    const depth = depths.pop()!;
    const children = Array.isArray(v) ? (v as unknown[]) : Object.values(v);
    if (children.length > 0 && depth + 1 > max) return true;
    for (const child of children) {
      if (child !== null && typeof child === 'object' && !(child instanceof Map)) {
        pending.push(child);
        depths.push(depth + 1);
      }
    }
  }
  return false;
}

/** Python's `repr(float)`: shortest round-trip digits; exponent form below 1e-4 and from 1e16, `.0` on integers. */
export function pyFloatRepr(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (x === Infinity) return 'inf';
  if (x === -Infinity) return '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const [mantissa, expText] = x.toExponential().split('e');
  const exp = Number(expText);
  const sign = x < 0 ? '-' : '';
  const digits = mantissa.replace('-', '').replace('.', '');
  if (exp < -4 || exp >= 16) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    return `${sign}${m}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  }
  if (exp >= 0) {
    if (digits.length <= exp + 1) return `${sign}${digits.padEnd(exp + 1, '0')}.0`;
    return `${sign}${digits.slice(0, exp + 1)}.${digits.slice(exp + 1)}`;
  }
  return `${sign}0.${'0'.repeat(-exp - 1)}${digits}`;
}

/** A float as `json.dumps` writes it (`float.__repr__`, with JavaScript-style names for the non-finite values). */
export function pyJsonFloat(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (x === Infinity) return 'Infinity';
  if (x === -Infinity) return '-Infinity';
  return pyFloatRepr(x);
}

const NUMBER = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?/y;

class Parser {
  pos = 0;
  constructor(readonly text: string) {}

  fail(message: string): never {
    throw new PyJsonError(`${message} at character ${this.pos}`);
  }

  ws(): void {
    const t = this.text;
    while (this.pos < t.length) {
      const c = t.charCodeAt(this.pos);
      if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) break;
      this.pos++;
    }
  }

  value(depth: number): PyValue {
    if (depth > MAX_JSON_DEPTH) this.fail(`nested deeper than ${MAX_JSON_DEPTH} levels`);
    this.ws();
    const t = this.text;
    const c = t[this.pos];
    if (c === '{') return this.object(depth);
    if (c === '[') return this.array(depth);
    if (c === '"') return this.string();
    for (const [word, v] of WORDS) {
      if (t.startsWith(word, this.pos)) {
        this.pos += word.length;
        return v;
      }
    }
    NUMBER.lastIndex = this.pos;
    const m = NUMBER.exec(t);
    if (m) {
      this.pos += m[0].length;
      return m[1] === undefined && m[2] === undefined ? new PyInt(m[0]) : new PyFloat(Number(m[0]));
    }
    return this.fail(this.pos >= t.length ? 'unexpected end of JSON' : 'expecting a JSON value');
  }

  object(depth: number): PyDict {
    const out: PyDict = new Map();
    this.pos++;
    this.ws();
    if (this.text[this.pos] === '}') {
      this.pos++;
      return out;
    }
    for (;;) {
      this.ws();
      if (this.text[this.pos] !== '"') this.fail('expecting a property name in double quotes');
      const key = this.string();
      this.ws();
      if (this.text[this.pos] !== ':') this.fail("expecting ':' delimiter");
      this.pos++;
      out.set(key, this.value(depth + 1));
      this.ws();
      const c = this.text[this.pos++];
      if (c === '}') return out;
      if (c !== ',') {
        this.pos--;
        this.fail("expecting ',' delimiter");
      }
    }
  }

  array(depth: number): PyValue[] {
    const out: PyValue[] = [];
    this.pos++;
    this.ws();
    if (this.text[this.pos] === ']') {
      this.pos++;
      return out;
    }
    for (;;) {
      out.push(this.value(depth + 1));
      this.ws();
      const c = this.text[this.pos++];
      if (c === ']') return out;
      if (c !== ',') {
        this.pos--;
        this.fail("expecting ',' delimiter");
      }
    }
  }

  string(): string {
    const t = this.text;
    let i = ++this.pos;
    let out = '';
    let start = i;
    for (;;) {
      if (i >= t.length) {
        this.pos = i;
        this.fail('unterminated string');
      }
      const c = t.charCodeAt(i);
      if (c === 0x22) {
        this.pos = i + 1;
        return out + t.slice(start, i);
      }
      if (c < 0x20) {
        this.pos = i;
        this.fail('invalid control character in string');
      }
      if (c !== 0x5c) {
        i++;
        continue;
      }
      out += t.slice(start, i);
      const e = t[i + 1];
      const simple = ESCAPES[e];
      if (simple !== undefined) {
        out += simple;
        i += 2;
      } else if (e === 'u') {
        const hex = t.slice(i + 2, i + 6);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) {
          this.pos = i;
          this.fail('invalid \\uXXXX escape');
        }
        out += String.fromCharCode(parseInt(hex, 16));
        i += 6;
      } else {
        this.pos = i;
        this.fail('invalid escape');
      }
      start = i;
    }
  }
}

const WORDS: [string, PyValue][] = [
  ['true', true],
  ['false', false],
  ['null', null],
  ['NaN', new PyFloat(NaN)],
  ['Infinity', new PyFloat(Infinity)],
  ['-Infinity', new PyFloat(-Infinity)],
];

const ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

/** `json.loads(text)`; throws PyJsonError with the character position. */
export function parsePyJson(text: string): PyValue {
  const p = new Parser(text);
  const v = p.value(0);
  p.ws();
  if (p.pos < text.length) p.fail('extra data after the JSON value');
  return v;
}

/** A record view of a JSON object (a parsed `Map`, or a plain object from JSON.parse); null for anything else. */
export function asRecord(v: unknown): Record<string, unknown> | null {
  if (v instanceof Map) return Object.fromEntries(v) as Record<string, unknown>;
  if (typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof PyInt) && !(v instanceof PyFloat))
    return v as Record<string, unknown>;
  return null;
}

/** A JSON number of either origin, as a JS number (PyInt/PyFloat or a plain number); null for anything else. */
export function numberOf(v: unknown): number | null {
  if (typeof v === 'number') return v;
  if (v instanceof PyInt || v instanceof PyFloat) return v.value;
  return null;
}

/** A parsed tree back to plain JS values (for callers that want ordinary objects; loses what PyJson keeps). */
export function toPlain(v: unknown): unknown {
  if (v instanceof PyInt || v instanceof PyFloat) return v.value;
  if (Array.isArray(v)) return v.map(toPlain);
  if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [k, toPlain(x)]));
  return v;
}

/** Python's `json.dumps` string escaping (`ensure_ascii` escapes everything outside printable ASCII). */
export function pyJsonString(s: string, ensureAscii: boolean): string {
  let out = '"';
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    let rep: string | null = null;
    if (c === 0x22) rep = '\\"';
    else if (c === 0x5c) rep = '\\\\';
    else if (c < 0x20 || (ensureAscii && c > 0x7e)) {
      rep = SHORT[c] ?? `\\u${c.toString(16).padStart(4, '0')}`;
    }
    if (rep !== null) {
      out += s.slice(start, i) + rep;
      start = i + 1;
    }
  }
  return `${out}${s.slice(start)}"`;
}

const SHORT: Record<number, string> = { 8: '\\b', 9: '\\t', 10: '\\n', 12: '\\f', 13: '\\r' };

/** A parsed value back to JSON text (compact, non-ASCII kept): parsing the result gives the same value again. */
export function stringifyPyJson(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'string') return pyJsonString(v, false);
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : pyJsonFloat(v);
  if (v instanceof PyInt) return v.text;
  if (v instanceof PyFloat) return pyJsonFloat(v.value);
  if (Array.isArray(v)) return `[${v.map(stringifyPyJson).join(',')}]`;
  const entries = v instanceof Map ? [...(v as Map<string, unknown>)] : Object.entries(v as object);
  return `{${entries.map(([k, x]) => `${pyJsonString(k, false)}:${stringifyPyJson(x)}`).join(',')}}`;
}

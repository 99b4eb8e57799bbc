import { Environment } from '@huggingface/jinja';
import { PyFloat, PyInt, pyFloatRepr, pyJsonFloat, pyJsonString } from './py-json.js';

/**
 * The runtime values of @huggingface/jinja as Python prints them (jinja-py.ts is the interpreter that uses them):
 * the library's value classes (found by probing, they are not exported), Python's `str`/`repr` and `json.dumps` of
 * them, the prototype patches that make the library print floats, booleans, lists and dicts as Python does (applied
 * when this module loads), and request values converted to runtime values with key order and number kinds kept.
 */

export type Runtime = { type: string; value: unknown; toString(): string };
export type RuntimeClass = new (value?: unknown) => Runtime;

// The runtime value classes are not exported; every converted value tells its class.
export const probe = new Environment();
let probes = 0;
export const classOf = (v: unknown): RuntimeClass =>
  (probe.set(`probe${probes++}`, v) as unknown as { constructor: RuntimeClass }).constructor;
export const IntegerValue = classOf(1);
export const FloatValue = classOf(1.5);
export const StringValue = classOf('');
export const BooleanValue = classOf(true);
export const NullValue = classOf(null);
export const UndefinedValue = classOf(undefined);
export const ArrayValue = classOf([]);
export const ObjectValue = classOf({});
export const FunctionValue = classOf(() => null);

/** An integer parsed from JSON: its value for arithmetic, its digits for printing (beyond 2^53 too). */
export class PyIntValue extends IntegerValue {
  constructor(
    value: number,
    readonly digits: string,
  ) {
    super(value);
  }
  override toString(): string {
    return this.digits;
  }
}

/** Python's `str()` of a runtime value (what `{{ x }}`, `|string` and `~` print). */
export function pyStr(v: Runtime): string {
  switch (v.type) {
    case 'StringValue':
      return v.value as string;
    case 'NullValue':
      return 'None';
    case 'UndefinedValue':
      return '';
    default:
      return pyRepr(v);
  }
}

/** Python's `repr()` of a runtime value (how a list or dict prints its items). */
export function pyRepr(v: Runtime): string {
  switch (v.type) {
    case 'StringValue':
      return pyStringRepr(v.value as string);
    case 'IntegerValue':
      return v instanceof PyIntValue ? v.digits : String(v.value);
    case 'FloatValue':
      return pyFloatRepr(v.value as number);
    case 'BooleanValue':
      return v.value ? 'True' : 'False';
    case 'NullValue':
      return 'None';
    case 'UndefinedValue':
      return '';
    case 'ArrayValue':
      return `[${(v.value as Runtime[]).map(pyRepr).join(', ')}]`;
    case 'TupleValue': {
      const items = (v.value as Runtime[]).map(pyRepr);
      return items.length === 1 ? `(${items[0]},)` : `(${items.join(', ')})`;
    }
    case 'ObjectValue':
    case 'KeywordArgumentsValue':
      return `{${[...(v.value as Map<string, Runtime>)].map(([k, x]) => `${pyStringRepr(k)}: ${pyRepr(x)}`).join(', ')}}`;
    default:
      return String(v.value);
  }
}

/** Python's repr of a str: single quotes unless the text has a single quote and no double quote. */
export function pyStringRepr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === quote || ch === '\\') out += `\\${ch}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return out + quote;
}

export interface DumpOptions {
  ensureAscii: boolean;
  indent: string | null;
  separators: [string, string] | null;
  sortKeys: boolean;
}

/** Python's `json.dumps` over runtime values (transformers' tojson filter). */
export function pyDumps(v: Runtime, opts: DumpOptions, level = 0): string {
  const [itemSep, keySep] = opts.separators ?? (opts.indent !== null ? [',', ': '] : [', ', ': ']);
  switch (v.type) {
    case 'NullValue':
      return 'null';
    case 'BooleanValue':
      return v.value ? 'true' : 'false';
    case 'IntegerValue':
      return v instanceof PyIntValue ? v.digits : String(v.value);
    case 'FloatValue':
      return pyJsonFloat(v.value as number);
    case 'StringValue':
      return pyJsonString(v.value as string, opts.ensureAscii);
    case 'ArrayValue':
    case 'TupleValue':
    case 'ObjectValue':
    case 'KeywordArgumentsValue': {
      const isArray = v.type === 'ArrayValue' || v.type === 'TupleValue';
      let parts: string[];
      if (isArray) parts = (v.value as Runtime[]).map((x) => pyDumps(x, opts, level + 1));
      else {
        let entries = [...(v.value as Map<string, Runtime>)];
        if (opts.sortKeys) entries = entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
        parts = entries.map(([k, x]) => `${pyJsonString(k, opts.ensureAscii)}${keySep}${pyDumps(x, opts, level + 1)}`);
      }
      const [open, close] = isArray ? ['[', ']'] : ['{', '}'];
      if (parts.length === 0) return open + close;
      if (opts.indent === null) return open + parts.join(itemSep) + close;
      const inner = `\n${opts.indent.repeat(level + 1)}`;
      return `${open}${inner}${parts.join(itemSep + inner)}\n${opts.indent.repeat(level)}${close}`;
    }
    default:
      // Jinja2's Undefined, namespaces and functions are not JSON serializable in Python either.
      throw new Error(`Object of type ${v.type.replace(/Value$/, '')} is not JSON serializable`);
  }
}

// Printing as Python prints (differences 2-4). The library's own code calls toString() for output and `|string`.
FloatValue.prototype.toString = function (this: Runtime) {
  return pyFloatRepr(this.value as number);
};
BooleanValue.prototype.toString = function (this: Runtime) {
  return this.value ? 'True' : 'False';
};
ArrayValue.prototype.toString = function (this: Runtime) {
  return pyRepr(this);
};
ObjectValue.prototype.toString = function (this: Runtime) {
  return pyRepr(this);
};

/** Converts request values (parsed with parsePyJson, or plain JS) to runtime values, keeping order and number kinds. */
export function toRuntime(v: unknown): Runtime {
  if (v === null) return new NullValue();
  if (v === undefined) return new UndefinedValue();
  if (v instanceof PyInt) return new PyIntValue(v.value, v.text);
  if (v instanceof PyFloat) return new FloatValue(v.value);
  switch (typeof v) {
    case 'string':
      return new StringValue(v);
    case 'boolean':
      return new BooleanValue(v);
    case 'number':
      return Number.isInteger(v) && !Object.is(v, -0) ? new IntegerValue(v) : new FloatValue(v);
    case 'function': {
      const fn = v as (...args: unknown[]) => unknown;
      return new FunctionValue((args: Runtime[]) => toRuntime(fn(...args.map((a) => a.value)) ?? null));
    }
    default:
      break;
  }
  if (Array.isArray(v)) return new ArrayValue(v.map(toRuntime));
  const entries = v instanceof Map ? [...(v as Map<string, unknown>)] : Object.entries(v as object);
  return new ObjectValue(new Map(entries.map(([k, x]) => [k, toRuntime(x)])));
}

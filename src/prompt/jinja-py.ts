import { Environment, Interpreter, Template } from '@huggingface/jinja';
import { pyStrip } from './py-str.js';
import { pyRange, strftimeNow } from './py-globals.js';
import {
  ArrayValue,
  type DumpOptions,
  FunctionValue,
  type Runtime,
  StringValue,
  pyDumps,
  pyStr,
  toRuntime,
} from './jinja-runtime.js';

export { strftimeNow };

/**
 * The patch layer over @huggingface/jinja: chat templates render here as Python's Jinja2 renders them in
 * transformers' `apply_chat_template` (huggingface/transformers src/transformers/utils/chat_template_utils.py,
 * `_compile_jinja_template`: ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, loopcontrols),
 * `tojson` = `json.dumps(x, ensure_ascii=False, indent, separators, sort_keys)`, globals `raise_exception` and
 * `strftime_now`). Every difference fixed here is listed in docs/models.md ("Jinja2 differences") and has a test in
 * test/unit/prompt/jinja-py.test.ts; the differential test (test/unit/prompt/jinja-parity.test.ts) renders the same
 * templates with Debian's python3-jinja2 and compares byte for byte.
 *
 * Fixed differences (the full table is in docs/models.md): `tojson` is Python's json.dumps (float `repr`, all digits
 * of an int, insertion order, Python's options); printing floats, booleans, none, dicts and lists as Python's `str`;
 * `~`, `|string`, `select`/`reject`, `str + non-str` as in Python; request values built from `parsePyJson` keep key
 * order and number kinds. The library's runtime prototypes for floats, booleans, lists and dicts are patched in
 * place when this module loads (their `toString` is what the library prints).
 */

type Node = {
  type: string;
  value?: unknown;
  operator?: { value: string };
  left?: Node;
  right?: Node;
  callee?: Node;
  args?: Node[];
  object?: Node;
  property?: Node;
  computed?: boolean;
};
type Env = InstanceType<typeof Environment>;

/** Statement nodes whose NullValue result is not printed (`{% set %}`, `{% if %}`…); any other null prints `None`. */
const STATEMENTS = new Set([
  'Program',
  'If',
  'For',
  'Break',
  'Continue',
  'Set',
  'Macro',
  'Comment',
  'CallStatement',
  'FilterStatement',
]);

/** The library's Interpreter seen without its TypeScript `private` modifiers (JavaScript methods, overridable). */
interface InterpreterMethods {
  run(program: unknown): Runtime;
  evaluate(node: Node, env: Env): Runtime;
  evaluateArguments(args: Node[], env: Env): [Runtime[], Map<string, Runtime>];
}
const BaseInterpreter = Interpreter as unknown as new (env?: Env) => InterpreterMethods;
const base = Interpreter.prototype as unknown as {
  applyFilter(this: unknown, operand: Runtime, filter: Node, env: Env): Runtime;
  evaluateBinaryExpression(this: unknown, node: Node, env: Env): Runtime;
  evaluateMemberExpression(this: unknown, node: Node, env: Env): Runtime;
};

const STRIP_SIDES = { strip: 'both', lstrip: 'left', rstrip: 'right' } as const;

/** Python's `str.strip(chars=None)` family as a template function (the library's ignore `chars`: `'\n\nx'.lstrip('\n')`). */
function pyStripMethod(s: string, side: 'both' | 'left' | 'right'): Runtime {
  return new FunctionValue((args: Runtime[]) => {
    const chars = args[0];
    if (
      args.length > 1 ||
      (chars && chars.type !== 'StringValue' && chars.type !== 'NullValue' && chars.type !== 'UndefinedValue')
    ) {
      throw new Error(`${side === 'both' ? '' : side[0]}strip arg must be None or str`);
    }
    return new StringValue(pyStrip(s, chars?.type === 'StringValue' ? (chars.value as string) : null, side));
  });
}

class PyInterpreter extends BaseInterpreter {
  // The library's methods are untyped here; their shapes are those of @huggingface/jinja 0.5.x (dist/index.js).
  applyFilter(operand: Runtime, filter: Node, env: Env): Runtime {
    const name =
      filter.type === 'Identifier'
        ? filter.value
        : filter.type === 'CallExpression' && filter.callee?.type === 'Identifier'
          ? filter.callee.value
          : null;
    const args = filter.type === 'CallExpression' ? (filter.args ?? []) : [];
    if (name === 'tojson')
      return new StringValue(pyDumps(operand, args.length ? this.dumpOptions(args, env) : DEFAULT_DUMP));
    // Jinja2's |string is str() of anything (the library refuses dicts and lists).
    if (name === 'string') return new StringValue(pyStr(operand));
    // Jinja2's trim(value, chars=None) is value.strip(chars); the library's ignores chars and trims JS whitespace.
    if (name === 'trim' && operand.type === 'StringValue') {
      const [positional, kwargs] = this.evaluateArguments(args, env);
      const chars = kwargs.get('chars') ?? positional[0];
      return new StringValue(
        pyStrip(operand.value as string, chars?.type === 'StringValue' ? (chars.value as string) : null),
      );
    }
    if ((name === 'select' || name === 'reject') && (operand.type === 'ArrayValue' || operand.type === 'TupleValue')) {
      return new ArrayValue(this.selectItems(operand.value as Runtime[], args, env, name === 'select'));
    }
    return base.applyFilter.call(this, operand, filter, env);
  }

  /** Jinja2's select/reject: keep the items a test accepts (no test: truthiness). */
  private selectItems(items: Runtime[], args: Node[], env: Env, keep: boolean): Runtime[] {
    const [positional] = this.evaluateArguments(args, env);
    const [testName, ...testArgs] = positional;
    const tests = (env as unknown as { tests: Map<string, (x: Runtime, ...a: Runtime[]) => boolean> }).tests;
    let test: (x: Runtime) => boolean = (x) => (x as unknown as { __bool__(): { value: boolean } }).__bool__().value;
    if (testName) {
      const fn = tests.get(String(testName.value));
      if (!fn) throw new Error(`no test named '${String(testName.value)}'`);
      test = (x) => fn(x, ...testArgs);
    }
    return items.filter((x) => test(x) === keep);
  }

  private dumpOptions(args: Node[], env: Env): DumpOptions {
    const [positional, kwargs] = this.evaluateArguments(args, env);
    // tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False): positional order as in Python.
    const names = ['ensure_ascii', 'indent', 'separators', 'sort_keys'];
    const get = (name: string): Runtime | undefined => kwargs.get(name) ?? positional[names.indexOf(name)];
    const indent = get('indent');
    const separators = get('separators');
    let indentText: string | null = null;
    if (indent && indent.type === 'IntegerValue') indentText = ' '.repeat(Math.max(0, indent.value as number));
    else if (indent && indent.type === 'StringValue') indentText = indent.value as string;
    let seps: [string, string] | null = null;
    if (separators && (separators.type === 'ArrayValue' || separators.type === 'TupleValue')) {
      const [a, b] = separators.value as Runtime[];
      seps = [String(a?.value ?? ''), String(b?.value ?? '')];
    }
    return {
      ensureAscii: get('ensure_ascii')?.value === true,
      indent: indentText,
      separators: seps,
      sortKeys: get('sort_keys')?.value === true,
    };
  }

  evaluateBlock(statements: Node[], env: Env): Runtime {
    let out = '';
    for (const statement of statements) {
      const v = this.evaluate(statement, env);
      if (v.type === 'UndefinedValue') continue;
      if (v.type === 'NullValue') {
        if (!STATEMENTS.has(statement.type)) out += 'None';
        continue;
      }
      out += v.toString();
    }
    return new StringValue(out);
  }

  evaluateMemberExpression(node: Node, env: Env): Runtime {
    const name = !node.computed && node.property?.type === 'Identifier' ? (node.property.value as string) : null;
    if (name === 'strip' || name === 'lstrip' || name === 'rstrip') {
      const object = this.evaluate(node.object!, env);
      if (object.type === 'StringValue') return pyStripMethod(object.value as string, STRIP_SIDES[name]);
    }
    return base.evaluateMemberExpression.call(this, node, env);
  }

  evaluateBinaryExpression(node: Node, env: Env): Runtime {
    if (node.operator?.value === '~') {
      return new StringValue(pyStr(this.evaluate(node.left!, env)) + pyStr(this.evaluate(node.right!, env)));
    }
    if (node.operator?.value === '+') {
      // Python's str + non-str is a TypeError (the library turns the other side into text).
      const left = this.evaluate(node.left!, env);
      const right = this.evaluate(node.right!, env);
      const ls = left.type === 'StringValue';
      const rs = right.type === 'StringValue';
      if (ls && rs) return new StringValue((left.value as string) + (right.value as string));
      if (ls || rs) {
        const other = ls ? right : left;
        if (other.type !== 'UndefinedValue')
          throw new Error(`can only concatenate str (not "${PY_TYPE[other.type] ?? other.type}") to str`);
      }
    }
    return base.evaluateBinaryExpression.call(this, node, env);
  }
}

const PY_TYPE: Record<string, string> = {
  IntegerValue: 'int',
  FloatValue: 'float',
  BooleanValue: 'bool',
  NullValue: 'NoneType',
  ArrayValue: 'list',
  TupleValue: 'tuple',
  ObjectValue: 'dict',
};

const DEFAULT_DUMP: DumpOptions = { ensureAscii: false, indent: null, separators: null, sortKeys: false };

/** A chat template compiled once (the library's lexer and parser), rendered with the Python-faithful interpreter. */
export class PyTemplate {
  private readonly parsed: Template['parsed'];

  /** Throws the library's syntax error when the source does not parse. */
  constructor(readonly source: string) {
    this.parsed = new Template(source).parsed;
  }

  /** Renders with `context` as the template's variables (they override the globals, as Jinja2's render does). */
  render(context: Record<string, unknown>): string {
    const env = new Environment();
    const globals: Record<string, unknown> = {
      true: true,
      false: false,
      none: null,
      True: true,
      False: false,
      None: null,
      range: pyRange,
      strftime_now: (format: string) => strftimeNow(format),
    };
    for (const [k, v] of Object.entries(globals)) env.setVariable(k, toRuntime(v) as never);
    env.setVariable(
      'raise_exception',
      new FunctionValue((args: Runtime[]) => {
        throw new Error(args.map((a) => pyStr(a)).join(' '));
      }) as never,
    );
    for (const [k, v] of Object.entries(context)) env.setVariable(k, toRuntime(v) as never);
    return new PyInterpreter(env).run(this.parsed).value as string;
  }
}

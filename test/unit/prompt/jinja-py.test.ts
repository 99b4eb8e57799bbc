import { Template } from '@huggingface/jinja';
import { describe, expect, it } from 'vitest';
import { PyTemplate, strftimeNow } from '../../../src/prompt/jinja-py.js';
import { parsePyJson } from '../../../src/prompt/py-json.js';

/**
 * The patch layer's fixes, one by one: each case shows what @huggingface/jinja 0.5.x prints on its own (so the test
 * fails without the patch) and what Python's Jinja2 prints under transformers' settings (the expected text, checked
 * against python3-jinja2 3.1.2 by hand and by the parity test).
 */
const render = (source: string, context: Record<string, unknown> = {}) => new PyTemplate(source).render(context);
const library = (source: string, context: Record<string, unknown> = {}) => new Template(source).render(context);

describe('jinja-py: @huggingface/jinja rendering as Python Jinja2 renders', () => {
  const args = parsePyJson('{"factor": 2.0, "2025": 1, "b": 2, "10": 3, "big": 12345678901234567890, "s": "é"}');

  it('tojson is json.dumps(ensure_ascii=False): float spelling, key order, big ints', () => {
    expect(render('{{ x | tojson }}', { x: args })).toBe(
      '{"factor": 2.0, "2025": 1, "b": 2, "10": 3, "big": 12345678901234567890, "s": "é"}',
    );
    // The library alone, given JSON.parse's object: 2.0 became 2, integer keys moved first, digits lost.
    expect(
      library('{{ x | tojson }}', {
        x: JSON.parse('{"factor": 2.0, "2025": 1, "b": 2, "10": 3, "big": 12345678901234567890}'),
      }),
    ).toBe('{"10": 3, "2025": 1, "factor": 2, "b": 2, "big": 12345678901234567000}');
  });

  it('tojson options: indent (int or string), separators, sort_keys, ensure_ascii, positional too', () => {
    const x = parsePyJson('{"b": [1, {"c": null}], "a": "ü", "e": []}');
    expect(render('{{ x | tojson(indent=2) }}', { x })).toBe(
      '{\n  "b": [\n    1,\n    {\n      "c": null\n    }\n  ],\n  "a": "ü",\n  "e": []\n}',
    );
    expect(render("{{ x | tojson(indent='\\t') }}", { x: parsePyJson('[1]') })).toBe('[\n\t1\n]');
    expect(render("{{ x | tojson(separators=(',', ':')) }}", { x })).toBe('{"b":[1,{"c":null}],"a":"ü","e":[]}');
    expect(render('{{ x | tojson(sort_keys=true) }}', { x })).toBe('{"a": "ü", "b": [1, {"c": null}], "e": []}');
    expect(render('{{ x | tojson(ensure_ascii=true) }}', { x })).toBe(
      '{"b": [1, {"c": null}], "a": "\\u00fc", "e": []}',
    );
    expect(render('{{ x | tojson(true) }}', { x: '😀\u007f' })).toBe('"\\ud83d\\ude00\\u007f"');
    expect(render('{{ "\\u0001\\b\\f" | tojson }}')).toBe('"\\u0001\\b\\f"');
  });

  it('tojson of an undefined value fails as in Python (the library prints null)', () => {
    expect(() => render('{{ nothing | tojson }}')).toThrow('Object of type Undefined is not JSON serializable');
    expect(library('{{ nothing | tojson }}')).toBe('null');
  });

  it("prints floats with Python's repr", () => {
    const x = parsePyJson('[2.0, 1e-5, 1e16, 0.1]');
    expect(render('{{ x[0] }} {{ x[1] }} {{ x[2] }} {{ x[3] }} {{ x[1] | string }} {{ "v" ~ x[2] }}', { x })).toBe(
      '2.0 1e-05 1e+16 0.1 1e-05 v1e+16',
    );
    // (The library's own FloatValue.toString gives 0.00001 and 10000000000000000.0; the patch replaces it in place,
    // so the library's output cannot be shown in this process.)
  });

  it('prints True/False/None, and dicts and lists as Python repr', () => {
    expect(
      render('{{ true }} {{ false }} {{ none }} {{ x }} {{ [1, "a", none] }}', {
        x: parsePyJson('{"k": [1.5, true, null, "it\'s"]}'),
      }),
    ).toBe(`True False None {'k': [1.5, True, None, "it's"]} [1, 'a', None]`);
    // (The library alone prints true, nothing, and {"k": 1}.)
  });

  it('statements print nothing; `~` uses str() on both sides', () => {
    expect(render('{% set y = 1 %}{% if y %}{% endif %}{# c #}[{{ "a" ~ none ~ true ~ 2 }}]')).toBe('[aNoneTrue2]');
  });

  it('str + non-str raises TypeError as in Python (the library concatenates)', () => {
    expect(() => render('{{ "a" + x }}', { x: [1] })).toThrow('can only concatenate str (not "list") to str');
    expect(() => render('{{ "a" + 1 }}')).toThrow('can only concatenate str (not "int") to str');
    expect(render('{{ "a" + "b" }} {{ 1 + 2 }} {{ [1] + [2] }}')).toBe('ab 3 [1, 2]');
    expect(library('{{ "a" + 1 }}')).toBe('a1');
  });

  it('|string works on dicts and lists; select/reject take a test name', () => {
    expect(render('{{ x | string }}', { x: parsePyJson('{"a": 1}') })).toBe("{'a': 1}");
    expect(
      render(
        "{{ [1, none, 2] | select('none') | list }} {{ [0, 1, 2] | select | list }} {{ [1, none] | reject('none') | list }}",
      ),
    ).toBe('[None] [1, 2] [1]');
    expect(() => library("{{ [1] | select('none') }}")).toThrow();
  });

  it('request values override globals; raise_exception and range behave as in transformers', () => {
    expect(render('{{ range(3) | list }} {{ range(1, 7, 2) | list }}')).toBe('[0, 1, 2] [1, 3, 5]');
    expect(() => render('{{ raise_exception("Roles must alternate") }}')).toThrow('Roles must alternate');
    expect(render('{{ none }}', { none: 'x' })).toBe('x');
  });

  it("str.strip/lstrip/rstrip(chars) and |trim(chars) strip only those characters, with Python's whitespace set", () => {
    // Qwen3's template: content.split('</think>')[-1].lstrip('\n') — the library ignored the argument and also ate
    // the content's leading spaces (found by the parity test's continue_final_message case). Expected texts are
    // python3-jinja2's (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks).
    const s = '\n\n  hi \n';
    const methods = "{{ s.lstrip('\\n') }}|{{ s.rstrip('\\n') }}|{{ s.strip('\\n') }}|{{ s.strip() }}|";
    expect(render(methods, { s })).toBe('  hi \n|\n\n  hi |  hi |hi|');
    expect(library(methods, { s })).toBe('hi \n|\n\n  hi|hi|hi|');
    const more =
      "{{ s.strip('\\n ') }}|{{ 'xxhixx'.strip('x') }}|{{ s | trim }}|{{ 'abca' | trim('a') }}|{{ '\\x1chi\\ufeff'.strip() | length }}";
    expect(render(more, { s })).toBe('hi|hi|hi|bc|3');
    expect(() => library("{{ 'abca' | trim('a') }}")).toThrow('Unknown StringValue filter: trim');
    expect(() => render("{{ 'a'.strip(3) }}")).toThrow('strip arg must be None or str');
    // A dict key named like the method is still the key.
    expect(render('{{ d.strip }}', { d: { strip: 'k' } })).toBe('k');
  });

  it('strftime_now follows Python strftime for the common directives', () => {
    expect(strftimeNow('%d %b %Y %H:%M:%S %A %B %y %%', new Date(2026, 0, 5, 7, 8, 9))).toBe(
      '05 Jan 2026 07:08:09 Monday January 26 %',
    );
  });
});

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigSchema, ENV_PATHS, resolveConfig } from '../../../src/ops/config.js';

/**
 * docs/configuration.md's settings table against the schema (src/ops/config.ts), which holds every default and every
 * environment variable once: each setting has a row, each row names the setting's variable (or none) and shows its
 * default. A setting added to the schema without a row, or a default changed without the docs, fails here.
 */
const rows = new Map<string, { env: string; def: string }>();
for (const line of readFileSync('docs/configuration.md', 'utf8').split('\n')) {
  const m = /^\| `([a-zA-Z][a-zA-Z0-9]*(?:\.[a-zA-Z][a-zA-Z0-9]*)+)` \| ([^|]*) \| ([^|]*) \|/.exec(line);
  if (m) rows.set(m[1], { env: m[2].trim(), def: m[3].trim() });
}

const defaults = resolveConfig() as unknown as Record<string, Record<string, unknown>>;
const envOf = new Map(Object.entries(ENV_PATHS).map(([name, { path }]) => [path.join('.'), name]));

/** Every leaf setting with its default: sections' keys, and the keys of nested sections (images.fetch, load.scrape). */
function leaves(): [string, unknown][] {
  const out: [string, unknown][] = [];
  for (const section of Object.keys(ConfigSchema.shape)) {
    for (const [key, value] of Object.entries(defaults[section])) {
      // A nested section is an object of settings; scoring.tierWeights is an object too, but one setting (a table).
      const nested = section !== 'scoring' && value !== null && typeof value === 'object' && !Array.isArray(value);
      if (nested) for (const [k, v] of Object.entries(value as object)) out.push([`${section}.${key}.${k}`, v]);
      else out.push([`${section}.${key}`, value]);
    }
  }
  return out;
}

/** How the table writes a default. */
function shown(value: unknown): string | null {
  if (typeof value === 'string') return value === '' ? '`""`' : `\`${value}\``;
  if (typeof value === 'number' || typeof value === 'boolean') return `\`${value}\``;
  if (Array.isArray(value)) return value.length === 0 ? '`[]`' : `\`${value.join(',')}\``;
  return null; // a table (scoring.tierWeights): written out in its own section
}

describe('docs/configuration.md settings table', () => {
  it('has a row for every setting, with its environment variable and its default', () => {
    const problems: string[] = [];
    for (const [path, value] of leaves()) {
      const row = rows.get(path);
      if (!row) {
        problems.push(`${path}: no row`);
        continue;
      }
      const env = envOf.get(path);
      if (env ? row.env !== `\`${env}\`` : !row.env.startsWith('—')) problems.push(`${path}: variable ${row.env}, schema ${env ?? 'none'}`);
      const def = shown(value);
      if (def !== null && !row.def.startsWith(def)) problems.push(`${path}: default ${row.def}, schema ${def}`);
    }
    expect(problems).toEqual([]);
  });

  it('has no row for a setting the schema does not know', () => {
    const known = new Set(leaves().map(([path]) => path));
    expect([...rows.keys()].filter((path) => !known.has(path) && path !== 'images.fetch' && path !== 'load.scrape')).toEqual([]);
  });

  it('reads every variable of the table into its setting', () => {
    for (const [name, { path, kind }] of Object.entries(ENV_PATHS)) {
      expect(rows.get(path.join('.'))?.env, name).toBe(`\`${name}\``);
      expect(['int', 'number', 'string', 'list', 'bool']).toContain(kind);
    }
    expect(Object.keys(ENV_PATHS)).toHaveLength(101);
  });
});

// docs/architecture.md's "## Module map" must name every file under src/ (one table row each, under a
// "### `src/<folder>/`" heading) and no file that does not exist. When you add, move or delete a src file, add,
// move or delete its row.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SECTION = '## Module map';

/** Every file under src/, as `src/<folder>/<name>` with forward slashes, sorted. */
function sourceFiles(): string[] {
  const src = `${ROOT}src/`;
  return (readdirSync(src, { recursive: true, encoding: 'utf8' }) as string[])
    .map((p) => p.split('\\').join('/'))
    .filter((p) => statSync(src + p).isFile())
    .map((p) => `src/${p}`)
    .sort();
}

interface ParsedMap {
  /** `src/<folder>/<name>` of every row, in document order. */
  files: string[];
  /** Lines of the section that look like rows or headings but cannot be read (wrong shape, row before a heading). */
  malformed: string[];
}

/** The file rows of the "## Module map" section: `### \`src/x/\`` headings, then `| \`name\` | … |` rows. */
function parseModuleMap(markdown: string): ParsedMap {
  const lines = markdown.split('\n');
  const start = lines.findIndex((l) => l.trim() === SECTION);
  if (start < 0) return { files: [], malformed: [`no "${SECTION}" heading`] };
  const files: string[] = [];
  const malformed: string[] = [];
  let folder: string | null = null;
  for (const line of lines.slice(start + 1)) {
    if (/^## /.test(line)) break; // next top-level section
    if (line.startsWith('### ')) {
      const m = /^### `(src(?:\/[\w.-]+)*)\/`\s*$/.exec(line);
      folder = m ? m[1]! : null;
      if (!m) malformed.push(line);
      continue;
    }
    if (!line.startsWith('|')) continue;
    const first = line.split('|')[1]!.trim();
    if (first === 'file' || /^:?-+:?$/.test(first)) continue; // table header and separator
    const m = /^`([^`/]+)`$/.exec(first);
    if (!m || folder === null) {
      malformed.push(line);
      continue;
    }
    files.push(`${folder}/${m[1]}`);
  }
  return { files, malformed };
}

/** What is wrong with the map against the files that exist; empty when it is complete and exact. */
function mapProblems(markdown: string, existing: readonly string[]): string[] {
  const { files, malformed } = parseModuleMap(markdown);
  const named = new Set(files);
  const have = new Set(existing);
  const missing = existing.filter((f) => !named.has(f));
  const extra = [...named].filter((f) => !have.has(f)).sort();
  const duplicated = files.filter((f, i) => files.indexOf(f) !== i);
  const problems: string[] = [];
  if (missing.length > 0) problems.push(`files without a row: ${missing.join(', ')}`);
  if (extra.length > 0) problems.push(`rows naming files that do not exist: ${extra.join(', ')}`);
  if (duplicated.length > 0) problems.push(`files with more than one row: ${duplicated.join(', ')}`);
  if (malformed.length > 0) problems.push(`unreadable lines: ${malformed.join(' / ')}`);
  return problems;
}

describe('docs/architecture.md module map', () => {
  it('names every file under src/ and no file that does not exist', () => {
    const existing = sourceFiles();
    expect(existing.length).toBeGreaterThan(100); // the walk found the tree (a wrong root would pass vacuously)
    const problems = mapProblems(readFileSync(`${ROOT}docs/architecture.md`, 'utf8'), existing);
    expect(problems, `docs/architecture.md "${SECTION}" is out of date:\n${problems.join('\n')}`).toEqual([]);
  });

  it('reports missing, extra, duplicated and unreadable rows by name', () => {
    const doc = [
      '# Architecture',
      SECTION,
      '### `src/api/`',
      '| file | what it is for |',
      '|---|---|',
      '| `errors.ts` | errors |',
      '| `gone.ts` | deleted long ago |',
      '| `errors.ts` | again |',
      '| errors.ts | no backticks |',
      '### `src/keys/`',
      '| file | what it is for |',
      '|---|---|',
      '| `fnv-chain.wat` | wasm source |',
      '## Deployment',
      '| `after.ts` | outside the section: ignored |',
    ].join('\n');
    const existing = ['src/api/errors.ts', 'src/api/fleet.ts', 'src/keys/fnv-chain.wat'];
    expect(mapProblems(doc, existing)).toEqual([
      'files without a row: src/api/fleet.ts',
      'rows naming files that do not exist: src/api/gone.ts',
      'files with more than one row: src/api/errors.ts',
      'unreadable lines: | errors.ts | no backticks |',
    ]);
    expect(mapProblems('# Architecture\n', existing)[0]).toBe('files without a row: src/api/errors.ts, src/api/fleet.ts, src/keys/fnv-chain.wat');
  });
});

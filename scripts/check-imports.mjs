// Keeps the architecture of DESIGN.md visible: folders under src/ may import only the folders the pipeline allows,
// and no module import cycle exists. Run by `npm run lint` (and so by CI).
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../src');

/** folder → folders it may import (besides itself). ops is injected, never imported upward. */
const ALLOWED = {
  // A leaf every folder may import (issue 15: endpoint identity, …); it imports nothing.
  common: [],
  keys: ['common'],
  index: ['common'],
  ops: ['common'],
  events: ['keys', 'index', 'common'],
  // ops: the image-fetch defaults are read from the configuration schema (defaults written once).
  prompt: ['keys', 'ops', 'common'],
  scoring: ['index', 'keys', 'common'],
  // prompt: the read path is api → prompt → keys → scoring.
  api: ['prompt', 'scoring', 'keys', 'index', 'common'],
  // The composition root: builds the write path, the API server, metrics, the index backend and the ownership leases
  // from a config. Everything but the command line and the simulators.
  service: ['api', 'prompt', 'scoring', 'keys', 'index', 'events', 'ops', 'common'],
  // Both simulators; the fleet simulator runs against the real service. Nothing but cli/ imports sim/.
  // index, ops: types only (the fleet simulator checks the index it is given, built from a Config).
  sim: ['events', 'keys', 'api', 'service', 'index', 'ops', 'common'],
  // Argument parsing and one file per command.
  cli: ['service', 'api', 'prompt', 'scoring', 'keys', 'index', 'events', 'ops', 'sim', 'common'],
};

function walk(dir, ext = /(?<!\.d)\.ts$/) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p, ext) : ext.test(p) ? [p] : [];
  });
}

const files = walk(SRC);
const graph = new Map();
const problems = [];
const importRe = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"](\.[^'"]+)['"]/g;

for (const file of files) {
  const text = readFileSync(file, 'utf8');
  const from = relative(SRC, file).split('/')[0];
  const deps = [];
  for (const m of text.matchAll(importRe)) {
    const target = resolve(dirname(file), m[1].replace(/\.js$/, '.ts'));
    const rel = relative(SRC, target);
    if (rel.startsWith('..')) {
      problems.push(`${relative(SRC, file)} imports outside src/: ${m[1]}`);
      continue;
    }
    const to = rel.split('/')[0];
    if (to !== from && !(ALLOWED[from] ?? []).includes(to)) {
      problems.push(`${relative(SRC, file)} (${from}/) must not import ${to}/ (${m[1]})`);
    }
    deps.push(target);
  }
  graph.set(file, deps);
}

// Outside src/, tests, benchmarks and scripts use the library (service/, sim/, …), never a command's module: a command
// is run as a process (test/support/cli.ts), so what it computes must live in the library.
const ROOT = resolve(SRC, '..');
for (const folder of ['test', 'bench', 'scripts']) {
  for (const file of walk(join(ROOT, folder), /(?<!\.d)\.(ts|mjs)$/)) {
    for (const m of readFileSync(file, 'utf8').matchAll(importRe)) {
      const rel = relative(SRC, resolve(dirname(file), m[1].replace(/\.js$/, '.ts')));
      if (rel.split('/')[0] === 'cli')
        problems.push(`${relative(ROOT, file)} imports src/cli/ (${m[1]}): use the library`);
    }
  }
}

// Cycle detection (iterative DFS with colours).
const colour = new Map();
for (const start of files) {
  if (colour.get(start)) continue;
  const stack = [[start, 0]];
  const path = [start];
  colour.set(start, 1);
  while (stack.length) {
    const top = stack[stack.length - 1];
    const deps = graph.get(top[0]) ?? [];
    if (top[1] >= deps.length) {
      colour.set(top[0], 2);
      stack.pop();
      path.pop();
      continue;
    }
    const next = deps[top[1]++];
    if (!graph.has(next)) continue;
    const c = colour.get(next);
    if (c === 1) {
      const cycle = path
        .slice(path.indexOf(next))
        .concat(next)
        .map((f) => relative(SRC, f));
      problems.push(`import cycle: ${cycle.join(' → ')}`);
    } else if (!c) {
      colour.set(next, 1);
      stack.push([next, 0]);
      path.push(next);
    }
  }
}

if (problems.length) {
  console.error(`check-imports: ${problems.length} problem(s)\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.log(`check-imports: ${files.length} modules, folder dependencies follow DESIGN.md, no cycles`);

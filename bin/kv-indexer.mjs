#!/usr/bin/env node
// The `kv-indexer` command (package.json "bin"). From a build (npm run build, the container image) it runs
// dist/cli/main.js; in a clone that was never built it runs the TypeScript sources through tsx (a devDependency),
// so `npx kv-indexer …` works right after `npm install`.
import { existsSync } from 'node:fs';

const dist = new URL('../dist/cli/main.js', import.meta.url);
if (existsSync(dist)) {
  await import(dist.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import(new URL('../src/cli/main.ts', import.meta.url).href);
}

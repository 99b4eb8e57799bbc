import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const read = (path: string) => readFileSync(new URL(`../../../${path}`, import.meta.url), 'utf8');

/** Issue 17, "Manifests and packaging": the image and the README as an operator meets them. */
describe('packaging', () => {
  const dockerfile = read('Dockerfile');

  it('every base image of the Dockerfile is pinned by digest', () => {
    const arg = /^ARG NODE_IMAGE=(\S+)$/m.exec(dockerfile)?.[1];
    expect(arg).toMatch(/^node:20-bookworm-slim@sha256:[0-9a-f]{64}$/);
    const froms = [...dockerfile.matchAll(/^FROM (\S+)/gm)].map((m) => m[1]);
    expect(froms).toEqual(['${NODE_IMAGE}', '${NODE_IMAGE}']);
  });

  it('the HEALTHCHECK probes /healthz where the configuration puts it (kv-indexer health --http), in exec form', () => {
    const check = /^HEALTHCHECK [^\n]*\\\n\s+CMD (\[.*\])$/m.exec(dockerfile);
    expect(JSON.parse(check![1])).toEqual(['node', 'dist/cli/main.js', 'health', '--http', '--timeout', '3000']);
  });

  it('the README names every runtime dependency', () => {
    const readme = read('README.md');
    const deps = Object.keys(
      (JSON.parse(read('package.json')) as { dependencies: Record<string, string> }).dependencies,
    );
    expect(deps).toContain('ioredis');
    expect(deps.filter((d) => !readme.includes(`\`${d}\``))).toEqual([]);
  });

  it('the kv-indexer bin is a committed launcher (works in a clone without a build)', () => {
    const pkg = JSON.parse(read('package.json')) as { bin: Record<string, string> };
    expect(pkg.bin).toEqual({ 'kv-indexer': 'bin/kv-indexer.mjs' });
    expect(read('bin/kv-indexer.mjs').split('\n')[0]).toBe('#!/usr/bin/env node');
  });
});

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { renderDocs, renderPerformanceTable } from '../../../scripts/perf-table.js';

describe('generated performance sections', () => {
  it('README.md and docs/simulator.md show what bench/results/ holds (run `npm run perf:readme` after a benchmark)', () => {
    const root = new URL('../../../', import.meta.url);
    expect(renderPerformanceTable(new URL('bench/results/', root)).split('\n').length).toBeGreaterThan(20);
    for (const { path, text } of renderDocs(root)) expect(readFileSync(path, 'utf8'), path.pathname).toBe(text);
  });
});

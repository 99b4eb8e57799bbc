import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { renderPerformanceTable, withTable } from '../../../scripts/perf-table.js';

describe('README performance table', () => {
  it('is the one bench/results/*.json gives (run `npm run perf:readme` after `npm run bench`)', () => {
    const root = new URL('../../../', import.meta.url);
    const readme = readFileSync(new URL('README.md', root), 'utf8');
    const table = renderPerformanceTable(new URL('bench/results/', root));
    expect(table.split('\n').length).toBeGreaterThan(20);
    expect(readme).toBe(withTable(readme, table));
  });
});

import type { PolicyResult } from './run.js';

/** One policy's row in a workload's table (`label` tells router-replica variants apart). */
export interface ReportRow extends PolicyResult {
  label: string;
}

export interface WorkloadReport {
  workload: string;
  requests: number;
  rows: ReportRow[];
}

export interface SimulationReport {
  date: string;
  seed: number;
  parameters: Record<string, unknown>;
  workloads: WorkloadReport[];
}

const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
const sec = (x: number) => `${x.toFixed(3)} s`;

/** A plain-text table per workload for the terminal. */
export function renderText(report: SimulationReport): string {
  const lines: string[] = [];
  const header = [
    'policy',
    'hit rate',
    'prefill tokens',
    'TTFT mean',
    'TTFT p50',
    'TTFT p90',
    'TTFT p99',
    'imbalance',
    'image encodes',
    'index exact',
  ];
  for (const w of report.workloads) {
    lines.push(`\n${w.workload} (${w.requests} requests)`);
    const cells = w.rows.map((r) => [
      r.label,
      pct(r.hitRate),
      r.prefillTokens.toLocaleString('en-US'),
      sec(r.ttftSeconds.mean),
      sec(r.ttftSeconds.p50),
      sec(r.ttftSeconds.p90),
      sec(r.ttftSeconds.p99),
      r.imbalance.toFixed(2),
      `${r.imageEncodes.runs} / ${r.imageEncodes.images}`,
      r.index.exact ? 'yes' : `NO (${r.index.problems.length})`,
    ]);
    const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
    const row = (c: string[]) => c.map((x, i) => (i === 0 ? x.padEnd(widths[i]) : x.padStart(widths[i]))).join('  ');
    lines.push(row(header), widths.map((n) => '-'.repeat(n)).join('  '), ...cells.map(row));
  }
  return lines.join('\n');
}

/** A Markdown table of every workload (README and docs). */
export function renderMarkdown(report: SimulationReport): string {
  const lines = [
    '| workload | policy | KV hit rate | prefill tokens | TTFT p50 | TTFT p90 | load imbalance | image encodes |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const w of report.workloads) {
    for (const r of w.rows) {
      lines.push(
        `| ${w.workload} | ${r.label} | ${pct(r.hitRate)} | ${r.prefillTokens.toLocaleString('en-US')} | ${sec(r.ttftSeconds.p50)} | ${sec(r.ttftSeconds.p90)} | ${r.imbalance.toFixed(2)} | ${r.imageEncodes.runs} / ${r.imageEncodes.images} |`,
      );
    }
  }
  return lines.join('\n');
}

const PALETTE = ['#1b6ca8', '#e07b39', '#7a7a7a', '#a5a5a5', '#5a9e4b', '#b5525c', '#8c6bb1'];

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** The smallest 1, 2, 2.5 or 5 × 10^k at or above x: an axis top with round ticks at quarters. */
export function niceCeiling(x: number): number {
  const magnitude = 10 ** Math.floor(Math.log10(x));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * magnitude >= x * (1 - 1e-12)) return step * magnitude;
  return 10 * magnitude;
}

/** One grouped bar panel: a group per workload, a bar per policy. */
function panel(
  report: SimulationReport,
  title: string,
  value: (r: ReportRow) => number,
  format: (v: number) => string,
  top: number,
  height: number,
  width: number,
): string {
  const labels = report.workloads[0]?.rows.map((r) => r.label) ?? [];
  const max = niceCeiling(Math.max(1e-9, ...report.workloads.flatMap((w) => w.rows.map(value))));
  const left = 60;
  const plotW = width - left - 20;
  const plotH = height - 60;
  const groupW = plotW / Math.max(1, report.workloads.length);
  const barW = (groupW * 0.8) / Math.max(1, labels.length);
  const out = [`<text x="${left}" y="${top + 16}" font-size="14" font-weight="bold">${escapeXml(title)}</text>`];
  const base = top + 30 + plotH;
  out.push(`<line x1="${left}" y1="${base}" x2="${left + plotW}" y2="${base}" stroke="#333"/>`);
  for (let t = 0; t <= 4; t++) {
    const y = base - (plotH * t) / 4;
    out.push(`<line x1="${left}" y1="${y}" x2="${left + plotW}" y2="${y}" stroke="#ddd"/>`);
    out.push(
      `<text x="${left - 6}" y="${y + 4}" font-size="10" text-anchor="end">${escapeXml(format((max * t) / 4))}</text>`,
    );
  }
  report.workloads.forEach((w, g) => {
    const x0 = left + g * groupW + groupW * 0.1;
    w.rows.forEach((r, i) => {
      const v = value(r);
      const h = (plotH * v) / max;
      const x = x0 + i * barW;
      out.push(
        `<rect x="${x.toFixed(1)}" y="${(base - h).toFixed(1)}" width="${(barW - 2).toFixed(1)}" height="${h.toFixed(1)}" fill="${PALETTE[i % PALETTE.length]}"><title>${escapeXml(`${w.workload} / ${r.label}: ${format(v)}`)}</title></rect>`,
      );
      out.push(
        `<text x="${(x + barW / 2 - 1).toFixed(1)}" y="${(base - h - 3).toFixed(1)}" font-size="9" text-anchor="middle">${escapeXml(format(v))}</text>`,
      );
    });
    out.push(
      `<text x="${(left + g * groupW + groupW / 2).toFixed(1)}" y="${base + 16}" font-size="12" text-anchor="middle">${escapeXml(w.workload)}</text>`,
    );
  });
  return out.join('\n');
}

/** The chart: KV-cache hit rate and TTFT p90 per workload and policy, as a standalone SVG. */
export function renderSvg(report: SimulationReport): string {
  const width = 900;
  const panelH = 260;
  const labels = report.workloads[0]?.rows.map((r) => r.label) ?? [];
  // Legend entries laid out left to right, wrapping to a new line at the right edge (≈ 7 px per character).
  const legend: string[] = [];
  let x = 60;
  let y = 2 * panelH + 20;
  labels.forEach((l, i) => {
    const w = 30 + l.length * 7;
    if (x + w > width - 10) {
      x = 60;
      y += 20;
    }
    legend.push(
      `<rect x="${x}" y="${y}" width="12" height="12" fill="${PALETTE[i % PALETTE.length]}"/><text x="${x + 18}" y="${y + 10}" font-size="12">${escapeXml(l)}</text>`,
    );
    x += w;
  });
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y + 30}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    panel(
      report,
      'KV-cache hit rate (prompt tokens served from cache)',
      (r) => r.hitRate * 100,
      (v) => `${v.toFixed(0)}%`,
      0,
      panelH,
      width,
    ),
    panel(
      report,
      'Estimated TTFT p90 (seconds, lower is better)',
      (r) => r.ttftSeconds.p90,
      (v) => v.toFixed(2),
      panelH,
      panelH,
      width,
    ),
    ...legend,
    '</svg>',
    '',
  ].join('\n');
}

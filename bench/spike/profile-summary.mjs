// Summarises a V8 .cpuprofile: self time by category (file pattern) and the top functions by self time.
// Usage: node bench/spike/profile-summary.mjs <file.cpuprofile> [top]
import { readFileSync } from 'node:fs';

const [file, topArg] = process.argv.slice(2);
const p = JSON.parse(readFileSync(file, 'utf8'));
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const self = new Map();
const dt = p.timeDeltas;
for (let i = 0; i < p.samples.length; i++) self.set(p.samples[i], (self.get(p.samples[i]) ?? 0) + (dt[i] ?? 0));
const total = [...self.values()].reduce((a, b) => a + b, 0);

const CATEGORIES = [
  ['idle', (n) => n.callFrame.functionName === '(idle)'],
  ['gc', (n) => n.callFrame.functionName === '(garbage collector)'],
  ['program (native/runtime)', (n) => n.callFrame.functionName === '(program)'],
  ['grpc-js', (n) => /@grpc\/grpc-js/.test(n.callFrame.url)],
  [
    'node http2/net/streams',
    (n) =>
      /^node:(internal\/)?(http2|net|stream|streams|internal\/http2|buffer|events|timers|internal\/streams|internal\/timers)/.test(
        n.callFrame.url,
      ) || /node:internal\/(http2|streams|stream_base|timers|process\/task_queues|async_hooks)/.test(n.callFrame.url),
  ],
  ['api/wire (decode/encode)', (n) => /src\/api\/wire\//.test(n.callFrame.url)],
  ['api (other)', (n) => /src\/api\//.test(n.callFrame.url)],
  ['keys (hashing)', (n) => /src\/keys\//.test(n.callFrame.url)],
  ['index lookup/write', (n) => /src\/index\//.test(n.callFrame.url)],
  ['scoring', (n) => /src\/scoring\//.test(n.callFrame.url)],
  ['events (ingest)', (n) => /src\/events\//.test(n.callFrame.url)],
  ['ops (metrics)', (n) => /src\/ops\/|prom-client/.test(n.callFrame.url)],
  ['bench (ingest generator)', (n) => /bench\//.test(n.callFrame.url)],
  ['node other', (n) => /^node:/.test(n.callFrame.url)],
  ['native (no url)', (n) => n.callFrame.url === ''],
  ['keys (fnv wasm)', (n) => /^wasm/.test(n.callFrame.url) || /wasm-function/.test(n.callFrame.functionName)],
  ['other', () => true],
];
const cat = new Map();
const fn = new Map();
for (const [id, t] of self) {
  const n = byId.get(id);
  const c = CATEGORIES.find(([, test]) => test(n))[0];
  cat.set(c, (cat.get(c) ?? 0) + t);
  const url = n.callFrame.url.replace(/^.*\/(node_modules|src|bench)\//, '$1/');
  const key = `${n.callFrame.functionName || '(anon)'} ${url}:${n.callFrame.lineNumber + 1}`;
  fn.set(key, (fn.get(key) ?? 0) + t);
}
const busy = total - (cat.get('idle') ?? 0);
console.log(`profile ${file}: ${(total / 1e6).toFixed(2)} s sampled, busy ${(busy / 1e6).toFixed(2)} s`);
console.log('category                          self ms   % of busy');
for (const [c, t] of [...cat].sort((a, b) => b[1] - a[1]))
  console.log(
    `${c.padEnd(32)} ${(t / 1000).toFixed(0).padStart(8)}   ${c === 'idle' ? '' : ((100 * t) / busy).toFixed(1)}`,
  );
console.log('\ntop functions by self time');
for (const [k, t] of [...fn].sort((a, b) => b[1] - a[1]).slice(0, Number(topArg ?? 40)))
  console.log(`${(t / 1000).toFixed(0).padStart(7)} ms ${((100 * t) / busy).toFixed(1).padStart(5)}%  ${k}`);

// Split by subtree: samples under the bench's ingest timer (bench/suites/grpc.ts or bench/spike/ingest-load.ts) vs
// the rest (serving), with the categories of each.
const parent = new Map();
for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const underIngest = (id) => {
  for (let x = id; x !== undefined; x = parent.get(x)) {
    const u = byId.get(x).callFrame.url;
    if (/bench\/suites\/grpc\.ts|bench\/spike\/ingest-load\.ts/.test(u)) return true;
  }
  return false;
};
const split = { ingest: new Map(), serving: new Map() };
for (const [id, t] of self) {
  const n = byId.get(id);
  const c = CATEGORIES.find(([, test]) => test(n))[0];
  if (c === 'idle') continue;
  const m = underIngest(id) ? split.ingest : split.serving;
  m.set(c, (m.get(c) ?? 0) + t);
}
for (const [name, m] of Object.entries(split)) {
  const sum = [...m.values()].reduce((a, b) => a + b, 0);
  console.log(`\n${name}: ${(sum / 1000).toFixed(0)} ms (${((100 * sum) / busy).toFixed(1)} % of busy)`);
  for (const [c, t] of [...m].sort((a, b) => b[1] - a[1]))
    console.log(`  ${c.padEnd(32)} ${(t / 1000).toFixed(0).padStart(7)} ms  ${((100 * t) / sum).toFixed(1)} %`);
}

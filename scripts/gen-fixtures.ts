/**
 * `npm run fixtures`: regenerates fixtures/recordings/ from the vLLM publisher simulator (src/sim/publisher). Each
 * scenario writes `<name>.kvrec.gz` (the recording, service format, docs/events.md) and `<name>.expected.json`
 * (per-endpoint entries by tier and sample scores, computed from the simulator's own caches). Deterministic: the
 * same code writes the same bytes.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { encodeHeader, encodeRecord } from '../src/events/recording/format.js';
import { runScenario, SCENARIOS } from '../src/sim/publisher/scenarios.js';

const dir = new URL('../fixtures/recordings/', import.meta.url);
mkdirSync(dir, { recursive: true });
for (const name of Object.keys(SCENARIOS)) {
  const s = runScenario(name);
  // Fixed createdAt so that regenerating writes identical bytes.
  const parts = [encodeHeader({ createdAt: '2026-11-21T00:00:00.000Z', ...s.header }), ...s.messages.map(encodeRecord)];
  const gz = gzipSync(Buffer.concat(parts), { level: 9 });
  writeFileSync(new URL(`${name}.kvrec.gz`, dir), gz);
  writeFileSync(new URL(`${name}.expected.json`, dir), `${JSON.stringify(s.expected, null, 1)}\n`);
  console.log(
    `${name}: ${s.messages.length} messages, ${gz.length} bytes; endpoints ${JSON.stringify(s.expected.endpoints)}`,
  );
}

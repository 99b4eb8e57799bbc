import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { decodeEventBatch } from '../../../src/events/decode/index.js';
import { encodeHeader, encodeRecord } from '../../../src/events/recording/format.js';
import { encodeBatch } from '../../../src/sim/publisher/encode.js';
import { hashToUint64 } from '../../../src/sim/publisher/engine-hash.js';
import { runScenario, SCENARIOS } from '../../../src/sim/publisher/scenarios.js';
import { SimEngine } from '../../../src/sim/publisher/sim-engine.js';
import { RECORDINGS } from '../../support/fixture-check.js';

const tokens = (n: number, from = 1) => Array.from({ length: n }, (_, i) => from + i);

describe('vLLM publisher simulator', () => {
  it('stores only full blocks, chained, and hits the cached prefix', () => {
    const e = new SimEngine({ blockSize: 4, gpuBlocks: 8, cpuBlocks: 0 });
    e.serve({ tokens: tokens(10) });
    const [first] = e.takeEvents();
    expect(first).toMatchObject({ type: 'BlockStored', parent: null, tokens: tokens(8), blockSize: 4 });
    e.serve({ tokens: tokens(14) });
    const [second] = e.takeEvents();
    expect(second.type === 'BlockStored' && second.hashes.length).toBe(1);
    expect(second.type === 'BlockStored' && hashToUint64(second.parent!)).toBe(
      e.blocksOf({ tokens: tokens(8) })[1].key,
    );
  });

  it('evicts least recently used blocks, offloading to CPU before the GPU removal', () => {
    const e = new SimEngine({ blockSize: 4, gpuBlocks: 2, cpuBlocks: 1 });
    e.serve({ tokens: tokens(8) });
    e.takeEvents();
    e.serve({ tokens: tokens(4, 100) });
    expect(e.takeEvents().map((x) => [x.type, x.type === 'AllBlocksCleared' ? null : x.medium])).toEqual([
      ['BlockStored', 'CPU'],
      ['BlockRemoved', null],
      ['BlockStored', null],
    ]);
    e.serve({ tokens: tokens(4, 200) });
    expect(e.takeEvents().map((x) => [x.type, x.type === 'AllBlocksCleared' ? null : x.medium])).toEqual([
      ['BlockRemoved', 'CPU'],
      ['BlockStored', 'CPU'],
      ['BlockRemoved', null],
      ['BlockStored', null],
    ]);
    expect([e.gpu.size, e.cpu!.size]).toEqual([2, 1]);
  });

  it('puts LoRA names and [identifier, offset] image items in extra_keys, in both encodings and hash forms', () => {
    const e = new SimEngine({ blockSize: 4, gpuBlocks: 8, cpuBlocks: 0 });
    e.serve({ tokens: tokens(12), loraName: 'ad', items: [{ identifier: 'img', offset: 2, length: 4 }] });
    const events = e.takeEvents();
    for (const encoding of ['array', 'map'] as const) {
      for (const hashes of ['int', 'bytes'] as const) {
        const batch = decodeEventBatch(encodeBatch(1.5, events, 1, { encoding, hashes }));
        expect(batch.issues).toEqual([]);
        expect(batch.dataParallelRank).toBe(1);
        const ev = batch.events[0];
        expect(ev.type).toBe('BlockStored');
        if (ev.type !== 'BlockStored') return;
        expect(ev.loraName).toBe('ad');
        expect([...ev.blockHashes]).toEqual(
          e
            .blocksOf({ tokens: tokens(12), loraName: 'ad', items: [{ identifier: 'img', offset: 2, length: 4 }] })
            .map((b) => b.key),
        );
        expect(ev.extraKeys).toEqual([
          [
            { kind: 'string', value: 'ad' },
            { kind: 'mm', identifier: 'img', offset: 2 },
          ],
          [
            { kind: 'string', value: 'ad' },
            { kind: 'mm', identifier: 'img', offset: -2 },
          ],
          [{ kind: 'string', value: 'ad' }],
        ]);
      }
    }
  });

  it('regenerates the shipped fixtures byte for byte (npm run fixtures)', () => {
    for (const name of Object.keys(SCENARIOS)) {
      const s = runScenario(name);
      const file = gunzipSync(readFileSync(new URL(`${name}.kvrec.gz`, RECORDINGS)));
      const bytes = Buffer.concat([
        encodeHeader({ createdAt: '2026-11-21T00:00:00.000Z', ...s.header }),
        ...s.messages.map(encodeRecord),
      ]);
      expect(file.equals(bytes)).toBe(true);
      const expected = JSON.parse(readFileSync(new URL(`${name}.expected.json`, RECORDINGS), 'utf8'));
      expect(expected).toEqual(JSON.parse(JSON.stringify(s.expected)));
    }
  });
});

import { describe, expect, it } from 'vitest';
import { MAX_BYTES, StringCache } from '../../../src/api/wire/string-cache.js';
import { decodeScoreRequest } from '../../../src/api/wire/score-request.js';
import { wireNames } from '../../../src/api/wire/string-cache.js';

/** `text`'s UTF-8 bytes inside a larger buffer (as a field sits inside a request), with its offsets. */
function embedded(bytes: Buffer): { buf: Buffer; start: number; end: number } {
  const buf = Buffer.concat([Buffer.from([0xaa, 0xbb, 0xcc]), bytes, Buffer.from([0xdd])]);
  return { buf, start: 3, end: 3 + bytes.length };
}

describe('StringCache', () => {
  it('gives the decode of exactly the bytes: ASCII, multi-byte UTF-8, bad bytes as U+FFFD, the empty string', () => {
    const cache = new StringCache();
    const cases = [
      Buffer.from('10.1.0.1:8000'),
      Buffer.from('Qwen/Qwen3-8B'),
      Buffer.from('modèle-日本語'),
      Buffer.from([0x61, 0xff, 0x62]), // invalid UTF-8
      Buffer.alloc(0),
    ];
    for (let round = 0; round < 2; round++) {
      for (const bytes of cases) {
        const { buf, start, end } = embedded(bytes);
        expect(cache.decode(buf, start, end)).toBe(bytes.toString('utf8'));
      }
    }
    expect(
      cache.decode(...(Object.values(embedded(Buffer.from([0x61, 0xff, 0x62]))) as [Buffer, number, number])),
    ).toBe('a\uFFFDb');
    // The second round found every string remembered.
    expect({ hits: cache.hits, misses: cache.misses }).toEqual({ hits: 6, misses: 5 });
  });

  it('stays exact when slots collide: 5,000 distinct endpoints of one length (over 1,024 slots), twice over', () => {
    const cache = new StringCache();
    const names = Array.from(
      { length: 5000 },
      (_, i) => `10.2.${String(Math.floor(i / 100)).padStart(3, '0')}.${String(i % 100).padStart(3, '0')}:8000`,
    );
    expect(new Set(names.map((n) => n.length)).size).toBe(1);
    for (let round = 0; round < 2; round++)
      for (const n of names) expect(cache.decode(Buffer.from(n), 0, n.length)).toBe(n);
    // A repeat right after its own decode is a hit, whatever came before.
    let repeatHits = 0;
    for (const n of names.slice(0, 100)) {
      cache.decode(Buffer.from(n), 0, n.length);
      const before = cache.hits;
      expect(cache.decode(Buffer.from(n), 0, n.length)).toBe(n);
      repeatHits += cache.hits - before;
    }
    expect(repeatHits).toBe(100);
  });

  it(`decodes a string longer than ${MAX_BYTES} bytes every time, without remembering it`, () => {
    const cache = new StringCache();
    const long = 'x'.repeat(MAX_BYTES + 1);
    expect(cache.decode(Buffer.from(long), 0, long.length)).toBe(long);
    expect(cache.decode(Buffer.from(long), 0, long.length)).toBe(long);
    expect({ hits: cache.hits, misses: cache.misses }).toEqual({ hits: 0, misses: 0 });
    const fits = 'y'.repeat(MAX_BYTES);
    cache.decode(Buffer.from(fits), 0, fits.length);
    expect(cache.decode(Buffer.from(fits), 0, fits.length)).toBe(fits);
    expect({ hits: cache.hits, misses: cache.misses }).toEqual({ hits: 1, misses: 1 });
  });
});

describe('the Score decoder names through the shared cache', () => {
  it('model and candidates decode as sent, and a repeated request finds them remembered', () => {
    // ScoreRequest: model (1) = "m-x", candidates (8) = "a:1", "b:2" (field numbers from src/api/wire/fields.ts).
    const field = (n: number, s: string) =>
      Buffer.concat([Buffer.from([(n << 3) | 2, Buffer.byteLength(s)]), Buffer.from(s)]);
    const generic = () => {
      throw new Error('the fast decoder takes this request');
    };
    const request = Buffer.concat([field(1, 'm-x'), field(8, 'a:1'), field(8, 'b:2')]);
    const first = decodeScoreRequest(request, generic) as { model: string; candidates: string[] };
    expect({ model: first.model, candidates: first.candidates }).toEqual({ model: 'm-x', candidates: ['a:1', 'b:2'] });
    const hits = wireNames.hits;
    const second = decodeScoreRequest(request, generic) as { model: string; candidates: string[] };
    expect({ model: second.model, candidates: second.candidates }).toEqual({
      model: 'm-x',
      candidates: ['a:1', 'b:2'],
    });
    expect(wireNames.hits - hits).toBe(3);
  });
});

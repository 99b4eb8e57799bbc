import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bindReplayAddress, parseEndpointSpec, rankAddress, readEndpointFile } from '../../../src/events/endpoint-spec.js';

describe('connect-mode endpoint specs', () => {
  it('parses the text form', () => {
    expect(parseEndpointSpec('tcp://10.0.0.5:5557')).toEqual({ address: 'tcp://10.0.0.5:5557', replay: null, ranks: 1, endpoint: null });
    expect(parseEndpointSpec('tcp://10.0.0.5:5557;replay=tcp://10.0.0.5:5558;ranks=4;endpoint=10.0.0.5:8000')).toEqual({
      address: 'tcp://10.0.0.5:5557',
      replay: 'tcp://10.0.0.5:5558',
      ranks: 4,
      endpoint: '10.0.0.5:8000',
    });
  });
  it('rejects what it cannot use, saying why', () => {
    expect(() => parseEndpointSpec('10.0.0.5:5557')).toThrow(/not tcp:\/\/<host>:<port>/);
    expect(() => parseEndpointSpec('tcp://h:1;ranks=0')).toThrow(/ranks must be 1..64/);
    expect(() => parseEndpointSpec('tcp://h:1;replay')).toThrow(/not key=value/);
    expect(() => parseEndpointSpec({ address: 'tcp://h:1', rank: 2 })).toThrow(/unknown option\(s\) rank/);
    expect(() => parseEndpointSpec('tcp://h:1;endpoint=10.0.0.5')).toThrow(/is not <host>:<port>/);
  });
  it('derives data-parallel and bind-mode replay addresses', () => {
    expect(rankAddress('tcp://10.0.0.5:5557', 2)).toBe('tcp://10.0.0.5:5559');
    expect(bindReplayAddress('10.0.0.5:8000', 5558, 1)).toBe('tcp://10.0.0.5:5559');
  });
  it('reads the endpoints file (YAML list or {endpoints})', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kv-ep-'));
    const a = join(dir, 'a.yaml');
    writeFileSync(a, '- tcp://10.0.0.1:5557\n- {address: "tcp://10.0.0.2:5557", replay: "tcp://10.0.0.2:5558", ranks: 2}\n');
    expect(await readEndpointFile(a)).toEqual([
      { address: 'tcp://10.0.0.1:5557', replay: null, ranks: 1, endpoint: null },
      { address: 'tcp://10.0.0.2:5557', replay: 'tcp://10.0.0.2:5558', ranks: 2, endpoint: null },
    ]);
    const b = join(dir, 'b.json');
    writeFileSync(b, '{"endpoints": ["tcp://10.0.0.3:5557"]}');
    expect((await readEndpointFile(b)).map((s) => s.address)).toEqual(['tcp://10.0.0.3:5557']);
    writeFileSync(b, '');
    expect(await readEndpointFile(b)).toEqual([]);
  });
});

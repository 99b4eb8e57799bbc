import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  bindReplayAddress,
  parseEndpointSpec,
  rankAddress,
  rankIdentityOf,
  readEndpointFile,
  sameSpec,
} from '../../../src/events/endpoint-spec.js';

describe('connect-mode endpoint specs', () => {
  it('parses the text form', () => {
    expect(parseEndpointSpec('tcp://10.0.0.5:5557')).toEqual({
      address: 'tcp://10.0.0.5:5557',
      replay: null,
      ranks: 1,
      endpoint: null,
    });
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
    writeFileSync(
      a,
      '- tcp://10.0.0.1:5557\n- {address: "tcp://10.0.0.2:5557", replay: "tcp://10.0.0.2:5558", ranks: 2}\n',
    );
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

  it('rank identities: llm-d serving port + r, explicit per rank, or from the topic (default)', () => {
    const serving = parseEndpointSpec('tcp://10.0.0.5:5557;ranks=3;serving=10.0.0.5:8000');
    expect(serving).toEqual({
      address: 'tcp://10.0.0.5:5557',
      replay: null,
      ranks: 3,
      endpoint: null,
      identities: { kind: 'serving', endpoint: '10.0.0.5:8000' },
    });
    expect([0, 1, 2].map((r) => rankIdentityOf(serving, r))).toEqual([
      '10.0.0.5:8000',
      '10.0.0.5:8001',
      '10.0.0.5:8002',
    ]);
    const explicit = parseEndpointSpec({
      address: 'tcp://10.0.0.5:5557',
      ranks: 2,
      identities: ['a.svc:80', '[fd00::1]:80'],
    });
    expect(explicit.identities).toEqual({ kind: 'explicit', endpoints: ['a.svc:80', '[fd00::1]:80'] });
    expect([0, 1, 2].map((r) => rankIdentityOf(explicit, r))).toEqual(['a.svc:80', '[fd00::1]:80', null]);
    expect(parseEndpointSpec('tcp://h:1;ranks=2;identities=a:1, b:2').identities).toEqual({
      kind: 'explicit',
      endpoints: ['a:1', 'b:2'],
    });
    expect(rankIdentityOf(parseEndpointSpec('tcp://h:1;ranks=2'), 1)).toBeNull();
    // A parsed spec parses to itself (the transport re-validates what the API and the file give it).
    for (const spec of [serving, explicit, parseEndpointSpec('http://10.0.0.5:8000;serving=10.0.0.5:8000')]) {
      expect(parseEndpointSpec({ ...spec })).toEqual(spec);
      expect(sameSpec(parseEndpointSpec({ ...spec }), spec)).toBe(true);
    }
    expect(sameSpec(serving, { ...serving, identities: { kind: 'serving', endpoint: '10.0.0.5:9000' } })).toBe(false);
  });
  it('a vLLM HTTP base URL is a discovery spec; ranks and replay then come from it', () => {
    expect(parseEndpointSpec('http://10.0.0.5:8000;endpoint=10.0.0.5:8000')).toEqual({
      address: 'http://10.0.0.5:8000',
      replay: null,
      ranks: 1,
      endpoint: '10.0.0.5:8000',
      discovery: true,
    });
    expect(parseEndpointSpec('https://vllm.ns.svc/prefix/').discovery).toBe(true);
    expect(() => parseEndpointSpec('http://h:8000;ranks=2')).toThrow(
      'endpoint http://h:8000: ranks are listed by the discovery URL, not configured',
    );
    expect(() => parseEndpointSpec('http://h:8000;replay=tcp://h:1')).toThrow(
      'endpoint http://h:8000: replay is listed by the discovery URL, not configured',
    );
    expect(() => parseEndpointSpec('http://h:8000/x?y=1')).toThrow(
      'endpoint address "http://h:8000/x?y=1" is not http(s)://<host>[:<port>][/<path>]',
    );
  });
  it('refuses inconsistent identities, naming the option', () => {
    expect(() => parseEndpointSpec('tcp://h:1;ranks=2;identities=a:1')).toThrow(
      'endpoint tcp://h:1: 1 identities for 2 rank(s)',
    );
    expect(() => parseEndpointSpec('tcp://h:1;ranks=2;identities=a:1,a:1')).toThrow(
      'endpoint tcp://h:1: identities are not distinct',
    );
    expect(() => parseEndpointSpec('tcp://h:1;identities=a')).toThrow(
      'endpoint tcp://h:1: identities[0] "a" is not <host>:<port>',
    );
    expect(() => parseEndpointSpec('tcp://h:1;serving=a:1;identities=a:1')).toThrow(
      'endpoint tcp://h:1: give serving or identities, not both',
    );
    expect(() => parseEndpointSpec('tcp://h:1;serving=h')).toThrow(
      'endpoint tcp://h:1: serving "h" is not <host>:<port>',
    );
    expect(() => parseEndpointSpec('tcp://h:1;ranks=2;serving=h:65535')).toThrow(
      'endpoint tcp://h:1: serving port + rank passes 65535',
    );
  });
});

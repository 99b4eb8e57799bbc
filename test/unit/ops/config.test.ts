import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, loadConfigFrom, parseConfigArgs } from '../../../src/ops/index.js';

const dir = mkdtempSync(join(tmpdir(), 'kv-config-'));
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

describe('configuration', () => {
  it('has embedded defaults', () => {
    const c = loadConfig({});
    expect(c.keys).toEqual({ blockSize: 16, hashSeed: '' });
    expect(c.zmq).toMatchObject({ mode: 'bind', addresses: ['tcp://*:5557'], format: 'vllm' });
    expect(c.api).toMatchObject({ grpcAddress: '0.0.0.0:50051', failOpen: true, speculativeTtlMs: 2000 });
    expect(c.metrics).toEqual({ host: '0.0.0.0', port: 9090, maxEndpointSeries: 256 });
    expect(c.scoring).toEqual({
      tierWeights: {
        GPU: 1,
        CPU: 0.8,
        CPU_PINNED: 0.8,
        DISK: 0.25,
        STORAGE: 0.25,
        FS: 0.25,
        OBJ: 0.2,
        EXTERNAL: 0.2,
        STORAGE_REMOTE: 0.1,
        FS_REMOTE: 0.1,
        OBJ_REMOTE: 0.1,
      },
      unknownTierWeight: 0.1,
    });
  });

  it('layers file < environment < flags, key by key', () => {
    const yaml = file('c.yaml', 'keys:\n  blockSize: 32\n  hashSeed: from-file\napi:\n  maxCandidates: 8\n');
    const c = loadConfigFrom({
      file: yaml,
      env: {
        KV_INDEXER_HASH_SEED: 'from-env',
        KV_INDEXER_ZMQ_ADDRESSES: 'tcp://*:1, tcp://*:2',
        KV_INDEXER_FAIL_OPEN: 'off',
      },
      flags: ['api.maxCandidates=16', 'scoring.tierWeights={GPU: 1, CPU: 0.5, DISK: 0.2}'],
    });
    expect(c.keys).toEqual({ blockSize: 32, hashSeed: 'from-env' });
    expect(c.zmq.addresses).toEqual(['tcp://*:1', 'tcp://*:2']);
    expect(c.api.failOpen).toBe(false);
    expect(c.api.maxCandidates).toBe(16);
    expect(c.scoring.tierWeights).toEqual({ GPU: 1, CPU: 0.5, DISK: 0.2 });
  });

  it('load.scrape: a file setting and an environment variable of one nested section both hold; flags too', () => {
    const yaml = file('scrape.yaml', 'load:\n  scrape:\n    intervalMs: 800\n    concurrency: 8\n');
    const c = loadConfigFrom({
      file: yaml,
      env: { KV_INDEXER_LOAD_SCRAPE_ENABLED: 'true', KV_INDEXER_LOAD_SCRAPE_CONCURRENCY: '16' },
      flags: ['load.scrape.thread=false'],
    });
    expect(c.load.scrape).toEqual({
      enabled: true, // environment
      intervalMs: 800, // file
      concurrency: 16, // environment over file
      thread: false, // flag
      timeoutMs: 150,
      staleMs: 2_000,
      maxBytes: 4 * 1024 * 1024,
      urlTemplate: 'http://{host}:{port}/metrics',
    });
    // A whole-section flag value still merges key by key with the layers below it.
    expect(
      loadConfigFrom({
        file: yaml,
        env: {},
        flags: ["load.scrape={enabled: true, urlTemplate: 'http://{host}:9000/m'}"],
      }).load.scrape,
    ).toMatchObject({ enabled: true, intervalMs: 800, concurrency: 8, urlTemplate: 'http://{host}:9000/m' });
    let message = '';
    try {
      loadConfigFrom({ file: null, env: { KV_INDEXER_LOAD_SCRAPE_INTERVAL_MS: 'soon' }, flags: [] });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/load\.scrape\.intervalMs: .*number/i);
  });

  it('reads JSON files too', () => {
    const json = file('c.json', '{"index": {"maxEntries": 1000}}');
    expect(loadConfigFrom({ file: json, env: {}, flags: [] }).index.maxEntries).toBe(1000);
  });

  it('names every problem by path, including misspelt keys and sections', () => {
    const bad = file('bad.yaml', 'keys:\n  blocksize: 32\nkeyz: {}\n');
    let message = '';
    try {
      loadConfigFrom({ file: bad, env: { KV_INDEXER_BLOCK_SIZE: 'sixteen', KV_INDEXER_ZMQ_MODE: 'both' }, flags: [] });
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      message = (err as Error).message;
    }
    expect(message).toContain('keys.blocksize: unknown setting (known: blockSize, hashSeed)');
    expect(message).toMatch(/\(top level\): Unrecognized key.*keyz/);
    expect(message).toMatch(/keys\.blockSize: .*number/i);
    expect(message).toMatch(/zmq\.mode: /);
  });

  it('images.fetch: off by default; nested keys validated and named by path', () => {
    expect(loadConfig({}).images.fetch).toMatchObject({
      enabled: false,
      allowHosts: [],
      allowPrivateAddresses: false,
      maxBytes: 20 * 1024 * 1024,
    });
    const ok = file('fetch.yaml', 'images:\n  fetch:\n    enabled: true\n    allowHosts: [img.example.com]\n');
    expect(loadConfigFrom({ file: ok, env: {}, flags: [] }).images.fetch).toMatchObject({
      enabled: true,
      allowHosts: ['img.example.com'],
      timeoutMs: 5000,
    });
    const bad = file('fetch-bad.yaml', 'images:\n  fetch:\n    maxBytes: -1\n    allowHost: [x]\n');
    let message = '';
    try {
      loadConfigFrom({ file: bad, env: {}, flags: [] });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/images\.fetch\.maxBytes: /);
    expect(message).toMatch(/images\.fetch: Unrecognized key.*allowHost/);
  });

  it('explains unreadable files and malformed flags', () => {
    expect(() => loadConfigFrom({ file: join(dir, 'missing.yaml'), env: {}, flags: [] })).toThrow(
      /cannot read config file/,
    );
    expect(() => loadConfigFrom({ file: file('list.yaml', '- 1\n'), env: {}, flags: [] })).toThrow(
      /must hold an object/,
    );
    expect(() => loadConfigFrom({ file: null, env: {}, flags: ['blockSize=16'] })).toThrow(
      /expected section.key=value/,
    );
  });

  it('splits config arguments from the rest', () => {
    expect(
      parseConfigArgs([
        '--config',
        'a.yaml',
        '--set',
        'keys.blockSize=8',
        '--set=log.level=debug',
        '--print-config',
        'x',
      ]),
    ).toEqual({
      file: 'a.yaml',
      flags: ['keys.blockSize=8', 'log.level=debug'],
      print: true,
      rest: ['x'],
    });
    expect(() => parseConfigArgs(['--config'])).toThrow(/--config needs a value/);
  });
});

describe('docs/configuration.md', () => {
  it('documents every setting and every environment variable', async () => {
    const { readFileSync } = await import('node:fs');
    const { ConfigSchema, ENV_PATHS } = await import('../../../src/ops/config.js');
    const doc = readFileSync(new URL('../../../docs/configuration.md', import.meta.url), 'utf8');
    const missing: string[] = [];
    for (const [section, schema] of Object.entries(ConfigSchema.shape)) {
      for (const key of Object.keys(schema.unwrap().shape))
        if (!doc.includes(`\`${section}.${key}\``)) missing.push(`${section}.${key}`);
    }
    for (const name of Object.keys(ENV_PATHS)) if (!doc.includes(`\`${name}\``)) missing.push(name);
    expect(missing).toEqual([]);
  });
});

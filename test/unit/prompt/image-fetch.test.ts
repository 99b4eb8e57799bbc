import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_FETCH_OPTIONS,
  ImageFetcher,
  isPrivateAddress,
  PromptService,
  type ImageFetchOptions,
} from '../../../src/prompt/index.js';
import { SHARED_DIR } from '../../support/golden.js';
import { QWEN2_VL, imagePart, textPart } from './helpers.js';

/** Opt-in image URL fetching against a real HTTP server on 127.0.0.1 (ephemeral port). */

const png = readFileSync(`${SHARED_DIR}golden/images/coco-000000039769.png`);
const GOLDEN_ID = 'f9a38a66df90291515d7ea4de3175b262c1da7668ad1cc32e3dbb98be86388ac';
const hits: Record<string, number> = {};
let inFlight = 0;
let maxInFlight = 0;
let server: Server;
let base: string;

function route(req: IncomingMessage, res: ServerResponse): void {
  const path = req.url ?? '';
  hits[path] = (hits[path] ?? 0) + 1;
  inFlight++;
  maxInFlight = Math.max(maxInFlight, inFlight);
  res.on('close', () => inFlight--);
  const port = (server.address() as AddressInfo).port;
  if (path.startsWith('/ok')) {
    res.writeHead(200, { 'content-type': 'image/png', 'content-length': png.length });
    res.end(png);
  } else if (path.startsWith('/slow-ok.png')) {
    setTimeout(() => {
      res.writeHead(200, { 'content-type': 'image/png' });
      res.end(png);
    }, 60);
  } else if (path === '/slow.png') {
    res.writeHead(200, { 'content-type': 'image/png' });
    res.write(png.subarray(0, 100)); // and never ends
  } else if (path === '/huge.png') {
    res.writeHead(200, { 'content-type': 'image/png' }); // chunked: no Content-Length to refuse early
    const chunk = Buffer.alloc(256 * 1024, 1);
    let sent = 0;
    const pump = (): void => {
      while (sent < 64 && res.write(chunk)) sent++;
      if (sent < 64) res.once('drain', pump);
      else res.end();
    };
    pump();
  } else if (path === '/huge-declared.png') {
    res.writeHead(200, { 'content-type': 'image/png', 'content-length': 50 * 1024 * 1024 });
    res.write(png.subarray(0, 100));
  } else if (path === '/page.html') {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end('<html></html>');
  } else if (path === '/redirect-same') {
    res.writeHead(302, { location: '/ok-after-redirect.png' });
    res.end();
  } else if (path === '/redirect-other') {
    res.writeHead(302, { location: `http://localhost:${port}/ok.png` });
    res.end();
  } else if (path === '/reset.png') {
    res.writeHead(200, { 'content-type': 'image/png', 'content-length': png.length });
    res.write(png.subarray(0, 1000), () => res.socket?.destroy());
  } else if (path === '/not-an-image.png') {
    res.writeHead(200, { 'content-type': 'image/png' });
    res.end('hello, not a picture');
  } else {
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found');
  }
}

beforeAll(async () => {
  server = createServer(route);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const options = (extra: Partial<ImageFetchOptions> = {}): ImageFetchOptions => ({
  ...DEFAULT_FETCH_OPTIONS,
  enabled: true,
  allowHosts: ['127.0.0.1'],
  allowPrivateAddresses: true,
  maxBytes: 1024 * 1024,
  timeoutMs: 400,
  ...extra,
});

describe('ImageFetcher', () => {
  it('success: the exact body, once; cached by URL only after commit', async () => {
    const f = new ImageFetcher(options());
    const pending: [string, Uint8Array][] = [];
    const before = hits['/ok.png'] ?? 0;
    const first = await f.fetch(`${base}/ok.png`, pending);
    expect(first).toMatchObject({ ok: true, outcome: 'fetched' });
    expect(Buffer.from((first as { bytes: Uint8Array }).bytes).equals(png)).toBe(true);
    // Not committed (the request failed, say): nothing cached, the next request fetches again.
    expect(f.cacheEntries).toBe(0);
    const second = await f.fetch(`${base}/ok.png`, []);
    expect(second.outcome).toBe('fetched');
    expect(hits['/ok.png']).toBe(before + 2);
    f.commit(pending);
    expect([f.cacheEntries, f.cacheBytes]).toEqual([1, png.length]);
    const third = await f.fetch(`${base}/ok.png`, []);
    expect(third.outcome).toBe('cached');
    expect(hits['/ok.png']).toBe(before + 2);
  });

  it('the same URL requested concurrently is fetched once', async () => {
    const f = new ImageFetcher(options());
    const before = hits['/slow-ok.png'] ?? 0;
    const results = await Promise.all([f.fetch(`${base}/slow-ok.png`, []), f.fetch(`${base}/slow-ok.png`, [])]);
    expect(results.map((r) => r.outcome)).toEqual(['fetched', 'fetched']);
    expect(hits['/slow-ok.png']).toBe(before + 1);
  });

  it('maxConcurrent bounds the fetches in flight', async () => {
    const f = new ImageFetcher(options({ maxConcurrent: 1 }));
    maxInFlight = 0;
    const urls = [1, 2, 3].map((i) => `${base}/slow-ok.png?${i}`);
    const results = await Promise.all(urls.map((u) => f.fetch(u, [])));
    expect(results.map((r) => r.outcome)).toEqual(['fetched', 'fetched', 'fetched']);
    expect(maxInFlight).toBe(1);
  });

  const failures: [string, string, Partial<ImageFetchOptions>?][] = [
    ['/slow.png', 'timeout'],
    ['/huge.png', 'too-large'],
    ['/huge-declared.png', 'too-large'],
    ['/page.html', 'content-type'],
    ['/redirect-other', 'redirect'],
    ['/missing.png', 'status'],
    ['/reset.png', 'network'],
    ['/ok.png', 'private-address', { allowPrivateAddresses: false }],
    ['/ok.png', 'host-not-allowed', { allowHosts: ['images.example.com'] }],
    ['/ok.png', 'disabled', { enabled: false }],
  ];
  for (const [path, outcome, extra] of failures) {
    it(`${path}${extra ? ` with ${JSON.stringify(extra)}` : ''} → ${outcome}, nothing cached`, async () => {
      const f = new ImageFetcher(options(extra));
      const pending: [string, Uint8Array][] = [];
      const r = await f.fetch(`${base}${path}`, pending);
      expect(r).toMatchObject({ ok: false, outcome });
      expect(pending).toEqual([]);
      f.commit(pending);
      expect(f.cacheEntries).toBe(0);
    });
  }

  it('a refused address is never contacted', async () => {
    const before = hits['/ok.png?private'] ?? 0;
    const r = await new ImageFetcher(options({ allowPrivateAddresses: false })).fetch(`${base}/ok.png?private`, []);
    expect(r.outcome).toBe('private-address');
    expect(hits['/ok.png?private'] ?? 0).toBe(before);
    // A name that resolves to loopback is refused the same way (checked on the resolved address).
    const named = await new ImageFetcher(options({ allowPrivateAddresses: false, allowHosts: ['localhost'] })).fetch(
      base.replace('127.0.0.1', 'localhost') + '/ok.png?private',
      [],
    );
    expect(named.outcome).toBe('private-address');
    expect(hits['/ok.png?private'] ?? 0).toBe(before);
  });

  it('a same-host redirect is followed', async () => {
    const r = await new ImageFetcher(options()).fetch(`${base}/redirect-same`, []);
    expect(r.outcome).toBe('fetched');
    expect(hits['/ok-after-redirect.png']).toBeGreaterThanOrEqual(1);
  });

  it('private ranges', () => {
    expect(
      [
        '127.0.0.1',
        '10.1.2.3',
        '172.16.0.1',
        '192.168.1.1',
        '169.254.169.254',
        '::1',
        'fd00::1',
        'fe80::1',
        '::ffff:127.0.0.1',
        '0.0.0.0',
      ].every(isPrivateAddress),
    ).toBe(true);
    expect(['8.8.8.8', '2001:4860:4860::8888', '172.32.0.1'].some(isPrivateAddress)).toBe(false);
  });

  it('allowHosts: exact names and *.suffix patterns, case-insensitive', () => {
    const f = new ImageFetcher(options({ allowHosts: ['Images.Example.com', '*.cdn.example.org'] }));
    expect(['images.example.com', 'a.cdn.example.org', 'x.y.cdn.example.org'].map((h) => f.hostAllowed(h))).toEqual([
      true,
      true,
      true,
    ]);
    expect(['example.com', 'cdn.example.org', 'evilcdn.example.org'].map((h) => f.hostAllowed(h))).toEqual([
      false,
      false,
      false,
    ]);
  });
});

describe('a chat with an image URL through the prompt service', () => {
  let svc: PromptService;
  let off: PromptService;
  beforeAll(async () => {
    const registry = {
      workers: 1,
      models: [{ ...QWEN2_VL, image: { defaultWidth: 1024, defaultHeight: 768 }, vllm: { version: '0.19.1' } }],
    };
    [svc, off] = await Promise.all([
      PromptService.create({ keys: { blockSize: 16, hashSeed: '' }, registry, fetch: options() }),
      PromptService.create({ keys: { blockSize: 16, hashSeed: '' }, registry }),
    ]);
  });
  afterAll(async () => {
    await svc?.close();
    await off?.close();
  });
  const chat = (url: string, more: unknown[] = []) => ({
    model: QWEN2_VL.name,
    messages: [{ role: 'user', content: [imagePart(url), ...more, textPart('What is in this image?')] }],
  });

  it('fetched: the same tokens, identifier (vLLM 0.19.1 golden) and block keys as the data URL; cached next time', async () => {
    const url = `${base}/ok.png?chat`;
    const viaData = await svc.keys(chat(`data:image/png;base64,${png.toString('base64')}`));
    const viaUrl = await svc.keys(chat(url));
    expect(viaUrl.items[0]).toMatchObject({
      identifier: GOLDEN_ID,
      identifierSource: 'vllm-mm-hash',
      fetchOutcome: 'fetched',
      estimated: false,
      width: 640,
      height: 480,
      offset: 15,
      length: 391,
    });
    expect([...viaUrl.tokenIds]).toEqual([...viaData.tokenIds]);
    expect([...viaUrl.blockKeys]).toEqual([...viaData.blockKeys]);
    const again = await svc.keys(chat(url));
    expect(again.items[0].fetchOutcome).toBe('cached');
    expect(hits['/ok.png?chat']).toBe(1);
  });

  it('a request that fails after fetching caches nothing', async () => {
    const url = `${base}/ok.png?failed`;
    const bad = imagePart('data:image/png;base64,not base64!');
    await expect(svc.keys(chat(url, [bad]))).rejects.toMatchObject({
      code: 'invalid_argument',
      field: 'messages[0].content[1].image_url',
    });
    expect(hits['/ok.png?failed']).toBe(1);
    expect((await svc.keys(chat(url))).items[0].fetchOutcome).toBe('fetched');
    expect(hits['/ok.png?failed']).toBe(2);
  });

  it("failing or disabled: today's estimate (default size, content hash of the URL) with the reason", async () => {
    const failed = await svc.keys(chat(`${base}/missing.png`));
    expect(failed.items[0]).toMatchObject({
      estimated: true,
      width: 1024,
      height: 768,
      identifierSource: 'content-hash',
      fetchOutcome: 'status',
    });
    const disabled = await off.keys(chat(`${base}/ok.png?off`));
    expect(disabled.items[0]).toMatchObject({
      estimated: true,
      identifierSource: 'content-hash',
      fetchOutcome: 'disabled',
    });
    expect(hits['/ok.png?off']).toBeUndefined();
    const notImage = await svc.keys(chat(`${base}/not-an-image.png`));
    expect(notImage.items[0]).toMatchObject({ estimated: true, fetchOutcome: 'bad-image' });
    expect(svc.stats().fetchCacheEntries).toBe(2); // ?chat and ?failed only
  });
});

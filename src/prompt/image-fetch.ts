import { lookup as dnsLookup } from 'node:dns';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { BlockList, isIP } from 'node:net';
import { ImageFetchSchema, type ImageFetchConfig } from '../ops/index.js';
import { ByteLru } from './byte-lru.js';

/**
 * Opt-in fetching of http(s) image URLs (config `images.fetch`), so they are sized and identified from their bytes as
 * vLLM does (its MediaConnector hashes the response body). Bounded: allow-listed hosts only, no redirect to another
 * host, private/loopback addresses refused unless allowed, size checked while the body streams, a deadline, a
 * concurrency limit. Successful bodies are cached by URL — but only once the request that fetched them succeeds
 * (`commit`), so a failed request leaves nothing behind.
 */

/** The `images.fetch` settings; defaults written once, in the configuration schema (ops/config.ts). */
export type ImageFetchOptions = ImageFetchConfig;

export const DEFAULT_FETCH_OPTIONS: ImageFetchOptions = ImageFetchSchema.parse(undefined);

/** Why a URL was not fetched (the metric label and the item's `fetch_outcome`). */
export type FetchFailure =
  | 'disabled'
  | 'host-not-allowed'
  | 'private-address'
  | 'timeout'
  | 'too-large'
  | 'content-type'
  | 'redirect'
  | 'status'
  | 'network'
  | 'bad-image';

export type FetchOutcome = 'fetched' | 'cached' | FetchFailure;

export type FetchResult =
  { ok: true; bytes: Uint8Array; outcome: 'fetched' | 'cached' } | { ok: false; outcome: FetchFailure; detail: string };

/** Successful fetches of one request, cached when it completes. */
export type PendingFetches = [url: string, bytes: Uint8Array][];

class Failure extends Error {
  constructor(
    readonly outcome: FetchFailure,
    detail: string,
  ) {
    super(detail);
  }
}

/** Ranges a fetch must not reach unless `allowPrivateAddresses` (SSRF guard). */
const PRIVATE = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 3],
] as const)
  PRIVATE.addSubnet(net, bits, 'ipv4');
for (const [net, bits] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const)
  PRIVATE.addSubnet(net, bits, 'ipv6');

export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return false;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return PRIVATE.check(mapped[1], 'ipv4');
  return PRIVATE.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

export class ImageFetcher {
  private readonly cache: ByteLru;
  private readonly inFlight = new Map<string, Promise<Uint8Array>>();
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  /** Outcomes by label, read by the metrics at scrape time. */
  readonly outcomes: Record<string, number> = {};

  constructor(readonly options: ImageFetchOptions) {
    this.cache = new ByteLru(options.cacheEntries, options.cacheBytes);
  }

  get cacheEntries(): number {
    return this.cache.size;
  }

  get cacheBytes(): number {
    return this.cache.bytes;
  }

  count(outcome: FetchOutcome): void {
    this.outcomes[outcome] = (this.outcomes[outcome] ?? 0) + 1;
  }

  /** The URL's body, from the cache or the network; a failure says why (the caller falls back to estimating). */
  async fetch(url: string, pending: PendingFetches): Promise<FetchResult> {
    if (!this.options.enabled)
      return { ok: false, outcome: 'disabled', detail: 'image URL fetching is disabled (images.fetch.enabled)' };
    const cached = this.cache.get(url) ?? pending.find(([u]) => u === url)?.[1];
    if (cached) return { ok: true, bytes: cached, outcome: 'cached' };
    try {
      let job = this.inFlight.get(url);
      if (!job) {
        // The deadline starts now: time spent waiting for a free slot counts against timeoutMs.
        const deadline = Date.now() + this.options.timeoutMs;
        job = this.limited(() => this.download(url, deadline)).finally(() => this.inFlight.delete(url));
        this.inFlight.set(url, job);
      }
      const bytes = await job;
      pending.push([url, bytes]);
      return { ok: true, bytes, outcome: 'fetched' };
    } catch (err) {
      if (err instanceof Failure) return { ok: false, outcome: err.outcome, detail: err.message };
      return { ok: false, outcome: 'network', detail: (err as Error).message };
    }
  }

  /** Caches the bodies a successful request fetched. */
  commit(pending: PendingFetches): void {
    for (const [url, bytes] of pending) this.cache.set(url, bytes);
  }

  private async limited<T>(task: () => Promise<T>): Promise<T> {
    while (this.active >= this.options.maxConcurrent) await new Promise<void>((r) => this.waiting.push(r));
    this.active++;
    try {
      return await task();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }

  hostAllowed(host: string): boolean {
    const h = host.toLowerCase().replace(/^\[|\]$/g, '');
    return this.options.allowHosts.some((pattern) => {
      const p = pattern.toLowerCase();
      return p.startsWith('*.') ? h.endsWith(p.slice(1)) : h === p;
    });
  }

  private async download(url: string, deadline: number): Promise<Uint8Array> {
    if (Date.now() >= deadline)
      throw new Failure('timeout', `waited ${this.options.timeoutMs} ms for a free fetch slot`);
    let target = new URL(url);
    const host = target.hostname;
    for (let hop = 0; ; hop++) {
      const res = await this.get(target, deadline);
      if (res.status >= 300 && res.status < 400 && res.location !== null) {
        const next = new URL(res.location, target);
        if (next.hostname !== host) throw new Failure('redirect', `redirected to another host (${next.hostname})`);
        if (hop >= this.options.maxRedirects)
          throw new Failure('redirect', `more than ${this.options.maxRedirects} redirects`);
        target = next;
        continue;
      }
      return res.body!;
    }
  }

  /** One GET: the body when 200 with an image content type, or the redirect location. */
  private get(
    url: URL,
    deadline: number,
  ): Promise<{ status: number; location: string | null; body: Uint8Array | null }> {
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      return Promise.reject(new Failure('redirect', `unsupported scheme ${url.protocol}`));
    if (!this.hostAllowed(url.hostname))
      return Promise.reject(new Failure('host-not-allowed', `host ${url.hostname} is not in images.fetch.allowHosts`));
    const literal = url.hostname.replace(/^\[|\]$/g, '');
    if (isIP(literal) && !this.options.allowPrivateAddresses && isPrivateAddress(literal)) {
      return Promise.reject(new Failure('private-address', `${literal} is a private or loopback address`));
    }
    const { maxBytes, allowPrivateAddresses } = this.options;
    return new Promise((resolve, reject) => {
      const fail = (f: Failure): void => {
        req.destroy();
        reject(f);
      };
      const remaining = deadline - Date.now();
      const timer = setTimeout(
        () => fail(new Failure('timeout', `no complete answer within ${this.options.timeoutMs} ms`)),
        Math.max(0, remaining),
      );
      const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
      const req = send(url, {
        method: 'GET',
        headers: { accept: 'image/*' },
        // Checks the address the name resolves to, and connects to that very address (no second lookup to race).
        lookup: (hostname, options, callback) => {
          dnsLookup(hostname, { ...options, all: false }, (err, address, family) => {
            if (!err && !allowPrivateAddresses && isPrivateAddress(address as string)) {
              callback(new Failure('private-address', `${hostname} resolves to a private or loopback address`), '', 0);
              return;
            }
            callback(err, address as string, family as number);
          });
        },
      });
      req.on('error', (err) => {
        clearTimeout(timer);
        reject(err instanceof Failure ? err : new Failure('network', err.message));
      });
      req.on('response', (res: IncomingMessage) => {
        const status = res.statusCode ?? 0;
        if (status >= 300 && status < 400 && typeof res.headers.location === 'string') {
          clearTimeout(timer);
          res.resume();
          resolve({ status, location: res.headers.location, body: null });
          return;
        }
        if (status !== 200) return fail(new Failure('status', `HTTP ${status}`));
        const type = String(res.headers['content-type'] ?? '');
        if (!/^image\//i.test(type))
          return fail(new Failure('content-type', `content type ${JSON.stringify(type)} is not image/*`));
        const declared = Number(res.headers['content-length']);
        if (declared > maxBytes)
          return fail(new Failure('too-large', `content-length ${declared} is more than ${maxBytes} bytes`));
        const parts: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > maxBytes) return fail(new Failure('too-large', `body is more than ${maxBytes} bytes`));
          parts.push(chunk);
        });
        res.on('end', () => {
          clearTimeout(timer);
          if (!res.complete) return reject(new Failure('network', 'connection closed before the body ended'));
          resolve({ status, location: null, body: Buffer.concat(parts, size) });
        });
        res.on('aborted', () => fail(new Failure('network', 'connection reset during the body')));
        res.on('error', (err) => fail(err instanceof Failure ? err : new Failure('network', err.message)));
      });
      req.end();
    });
  }
}

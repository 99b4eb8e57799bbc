import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';

/** Why a scrape failed, or `ok`: the label values of kv_indexer_load_scrapes_total{outcome}. */
export const SCRAPE_OUTCOMES = ['ok', 'timeout', 'http_error', 'refused', 'too_large', 'parse_error'] as const;
export type ScrapeOutcome = (typeof SCRAPE_OUTCOMES)[number];

export interface FetchResult {
  outcome: 'ok' | 'timeout' | 'http_error' | 'refused' | 'too_large';
  /** Why not `ok`, for ListEndpoints' scrape_error. */
  detail: string;
  /** Body bytes read (never much past maxBytes: the response is destroyed once the bound is passed). */
  bytes: number;
}

export interface PageFetchOptions {
  timeoutMs: number;
  maxBytes: number;
  /** Aborts the fetch (the scraper stopping, the target removed). */
  signal?: AbortSignal;
}

/**
 * GETs a metrics page and streams its body, as raw bytes, into `onChunk` chunk by chunk: nothing buffers or decodes
 * the page (the parser's pushBytes decodes only the lines it reads). Connections are kept alive between scrapes (one
 * TCP handshake per target, not five a second). The timeout covers the whole exchange; a body over `maxBytes` (by
 * Content-Length, or while streaming) is cut off.
 */
export class PageFetcher {
  private readonly http = new HttpAgent({ keepAlive: true, maxFreeSockets: 1024 });
  private readonly https = new HttpsAgent({ keepAlive: true, maxFreeSockets: 1024 });

  fetch(url: string, onChunk: (chunk: Buffer) => void, options: PageFetchOptions): Promise<FetchResult> {
    return new Promise((resolve) => {
      let bytes = 0;
      let settled = false;
      let req: ReturnType<typeof httpRequest> | null = null;
      const finish = (outcome: FetchResult['outcome'], detail: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        if (outcome !== 'ok') req?.destroy(); // no AbortController per scrape: the request is destroyed directly
        resolve({ outcome, detail, bytes });
      };
      const timer = setTimeout(
        () => finish('timeout', `no complete answer within ${options.timeoutMs} ms`),
        options.timeoutMs,
      );
      const onAbort = () => finish('timeout', 'scrape stopped');
      options.signal?.addEventListener('abort', onAbort, { once: true });
      try {
        const secure = url.startsWith('https:');
        req = (secure ? httpsRequest : httpRequest)(url, {
          method: 'GET',
          agent: secure ? this.https : this.http,
          headers: { accept: 'text/plain;version=0.0.4' },
        });
      } catch (err) {
        finish('refused', (err as Error).message);
        return;
      }
      req.on('error', (err: NodeJS.ErrnoException) =>
        finish('refused', err.code ? `${err.code}: ${err.message}` : err.message),
      );
      req.on('response', (res: IncomingMessage) => {
        if (res.statusCode !== 200) {
          finish('http_error', `HTTP ${res.statusCode}`);
          res.destroy();
          return;
        }
        const declared = Number(res.headers['content-length']);
        if (Number.isFinite(declared) && declared > options.maxBytes) {
          finish('too_large', `Content-Length ${declared} > ${options.maxBytes} bytes`);
          res.destroy();
          return;
        }
        res.on('data', (chunk: Buffer) => {
          if (settled) return;
          bytes += chunk.length;
          if (bytes > options.maxBytes) {
            finish('too_large', `page longer than ${options.maxBytes} bytes`);
            res.destroy();
            return;
          }
          onChunk(chunk);
        });
        res.on('end', () => {
          finish('ok', '');
        });
        res.on('error', (err) => finish('refused', `body: ${err.message}`));
        res.on('aborted', () => finish('refused', 'connection closed mid-body'));
      });
      req.end();
    });
  }

  /** Closes the kept-alive connections. */
  close(): void {
    this.http.destroy();
    this.https.destroy();
  }
}

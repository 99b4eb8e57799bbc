import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { StringDecoder } from 'node:string_decoder';

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
 * GETs a metrics page and streams its body, as UTF-8 text, into `onText` chunk by chunk: nothing buffers the page.
 * Connections are kept alive between scrapes (one TCP handshake per target, not five a second). The timeout covers
 * the whole exchange; a body over `maxBytes` (by Content-Length, or while streaming) is cut off.
 */
export class PageFetcher {
  private readonly http = new HttpAgent({ keepAlive: true, maxFreeSockets: 1024 });
  private readonly https = new HttpsAgent({ keepAlive: true, maxFreeSockets: 1024 });

  fetch(url: string, onText: (text: string) => void, options: PageFetchOptions): Promise<FetchResult> {
    return new Promise((resolve) => {
      let bytes = 0;
      let settled = false;
      const controller = new AbortController();
      const finish = (outcome: FetchResult['outcome'], detail: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        if (outcome !== 'ok') controller.abort();
        resolve({ outcome, detail, bytes });
      };
      const timer = setTimeout(
        () => finish('timeout', `no complete answer within ${options.timeoutMs} ms`),
        options.timeoutMs,
      );
      const onAbort = () => finish('timeout', 'scrape stopped');
      options.signal?.addEventListener('abort', onAbort, { once: true });
      let req;
      try {
        const secure = url.startsWith('https:');
        req = (secure ? httpsRequest : httpRequest)(url, {
          method: 'GET',
          agent: secure ? this.https : this.http,
          signal: controller.signal,
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
        const decoder = new StringDecoder('utf8'); // a character split across two chunks is joined, not garbled
        res.on('data', (chunk: Buffer) => {
          if (settled) return;
          bytes += chunk.length;
          if (bytes > options.maxBytes) {
            finish('too_large', `page longer than ${options.maxBytes} bytes`);
            res.destroy();
            return;
          }
          onText(decoder.write(chunk));
        });
        res.on('end', () => {
          if (!settled) onText(decoder.end());
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

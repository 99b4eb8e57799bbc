import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { formatTcpAddress, parseTcpAddress, IndexerError } from '../common/index.js';

/**
 * vLLM's KV-event source discovery (vLLM #55844): publishers configured on port 0 bind an ephemeral port each, and
 * the engine's HTTP server lists what each data-parallel rank really bound at `GET /kv_event_sources`
 * (vllm/entrypoints/serve/kv_events/api_router.py). One element per rank:
 *   `{"data_parallel_rank": 0, "endpoint": "tcp://10.0.0.1:41001", "replay_endpoint": "tcp://10.0.0.1:41003" | null,
 *     "topic": "…"}`
 * The merged route answers the bare JSON array (tests/entrypoints/serve/kv_events/test_api_router.py: "a bare JSON
 * array (not wrapped in an envelope object)"); a revision of the same PR wrapped it as `{"sources": [...]}`
 * (tests/entrypoints/serve/test_kv_events_router.py), so both are accepted. Endpoints are reported as the publisher
 * configured them (vLLM #50033): an explicit wildcard bind (`tcp://*:5557`, `tcp://0.0.0.0:…`) names no host, so the
 * discovery URL's host is used.
 *
 * This module fetches and validates one answer; a bad answer is refused whole with a named reason (nothing of it is
 * used), the poller (discovery.ts) counts it and keeps the sockets it has.
 */

export interface DiscoveredSource {
  rank: number;
  /** `tcp://<host>:<port>` of the rank's PUB socket (wildcard host replaced by the discovery URL's). */
  endpoint: string;
  replay: string | null;
  /** The topic the publisher is configured with (informational: the subscriber filters on `kv@`). */
  topic: string;
}

/** Why a discovery answer was refused (metric label and ListEndpoints text). */
export type DiscoveryFailure =
  | 'connect_error'
  | 'timeout'
  | 'http_status'
  | 'too_large'
  | 'bad_json'
  | 'bad_shape'
  | 'bad_field'
  | 'too_many_sources'
  | 'duplicate_rank'
  | 'unknown_rank'
  | 'apply_failed';

export const DISCOVERY_FAILURES: readonly DiscoveryFailure[] = [
  'connect_error',
  'timeout',
  'http_status',
  'too_large',
  'bad_json',
  'bad_shape',
  'bad_field',
  'too_many_sources',
  'duplicate_rank',
  'unknown_rank',
  'apply_failed',
];

/** A discovery answer refused (the endpoint's URL is the field); `reason` is the counted outcome. */
export class DiscoveryError extends IndexerError {
  constructor(
    readonly reason: DiscoveryFailure,
    detail: string,
  ) {
    super('unavailable', '', `${reason}: ${detail}`);
  }
}

export interface DiscoveryLimits {
  /** The whole request (connect, headers and body) must finish within this (ms). */
  timeoutMs: number;
  /** A longer body is refused (`too_large`) without being parsed. */
  maxBodyBytes: number;
  /** More listed sources are refused (`too_many_sources`). */
  maxSources: number;
}

/** The URL polled for a vLLM HTTP base URL (a trailing slash or a proxy path prefix kept). */
export function sourcesUrl(baseUrl: string): string {
  return `${baseUrl.replace(/\/+$/, '')}/kv_event_sources`;
}

const WILDCARD_HOSTS = new Set(['*', '0.0.0.0', '[::]', '::', '[::0]']);

/** Validates one answer's text; throws DiscoveryError naming the first problem. */
export function parseEventSources(text: string, baseUrl: string, maxSources: number): DiscoveredSource[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new DiscoveryError('bad_json', err instanceof Error ? err.message : String(err));
  }
  const list = Array.isArray(doc) ? doc : isObject(doc) && Array.isArray(doc.sources) ? doc.sources : null;
  if (list === null) throw new DiscoveryError('bad_shape', 'expected a JSON array of sources or {"sources": [...]}');
  if (list.length > maxSources)
    throw new DiscoveryError(
      'too_many_sources',
      `${list.length} sources listed, at most ${maxSources} (discovery.maxSources)`,
    );
  const host = new URL(baseUrl).hostname; // IPv6 comes bracketed
  const seen = new Set<number>();
  return list.map((item: unknown, i: number) => {
    if (!isObject(item)) throw new DiscoveryError('bad_field', `sources[${i}] is not an object`);
    const rank = item.data_parallel_rank ?? 0;
    if (typeof rank !== 'number' || !Number.isInteger(rank) || rank < 0 || rank > 63) {
      throw new DiscoveryError(
        'bad_field',
        `sources[${i}].data_parallel_rank ${JSON.stringify(rank)} is not an integer 0..63`,
      );
    }
    if (seen.has(rank))
      throw new DiscoveryError('duplicate_rank', `sources[${i}]: data_parallel_rank ${rank} listed twice`);
    seen.add(rank);
    const endpoint = tcpAddress(item.endpoint, `sources[${i}].endpoint`, host);
    const replay =
      item.replay_endpoint === undefined || item.replay_endpoint === null
        ? null
        : tcpAddress(item.replay_endpoint, `sources[${i}].replay_endpoint`, host);
    const topic = item.topic ?? '';
    if (typeof topic !== 'string')
      throw new DiscoveryError('bad_field', `sources[${i}].topic ${JSON.stringify(topic)} is not a string`);
    return { rank, endpoint, replay, topic };
  });
}

function tcpAddress(value: unknown, field: string, host: string): string {
  const parsed = parseTcpAddress(value as string);
  if (!parsed.ok)
    throw new DiscoveryError(
      'bad_field',
      `${field} ${JSON.stringify(value)?.slice(0, 100)} is not tcp://<host>:<port 1..65535>`,
    );
  return WILDCARD_HOSTS.has(parsed.value.host)
    ? formatTcpAddress({ host, port: parsed.value.port })
    : (value as string);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * GET <base>/kv_event_sources within `timeoutMs` (all of it: a server that answers slowly, byte by byte, times out
 * too), reading at most `maxBodyBytes`. Throws DiscoveryError.
 */
export function fetchEventSources(baseUrl: string, limits: DiscoveryLimits): Promise<DiscoveredSource[]> {
  const url = new URL(sourcesUrl(baseUrl));
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise<DiscoveredSource[]>((resolve, reject) => {
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = (error: DiscoveryError | null, sources?: DiscoveredSource[]) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      if (error) reject(error);
      else resolve(sources!);
    };
    const req = request(url, { method: 'GET', agent: false, headers: { accept: 'application/json' } }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        finish(new DiscoveryError('http_status', `GET ${url.pathname} answered HTTP ${res.statusCode}`));
        return;
      }
      const declared = Number(res.headers['content-length'] ?? -1);
      if (declared > limits.maxBodyBytes) {
        finish(
          new DiscoveryError(
            'too_large',
            `body of ${declared} bytes, at most ${limits.maxBodyBytes} (discovery.maxBodyBytes)`,
          ),
        );
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > limits.maxBodyBytes) {
          finish(
            new DiscoveryError('too_large', `body longer than ${limits.maxBodyBytes} bytes (discovery.maxBodyBytes)`),
          );
          return;
        }
        chunks.push(chunk);
      });
      res.on('end', () => {
        if (settled) return;
        try {
          finish(null, parseEventSources(Buffer.concat(chunks).toString('utf8'), baseUrl, limits.maxSources));
        } catch (err) {
          finish(err instanceof DiscoveryError ? err : new DiscoveryError('bad_json', String(err)));
        }
      });
      res.on('error', (err) => finish(new DiscoveryError('connect_error', err.message)));
    });
    timer = setTimeout(
      () =>
        finish(new DiscoveryError('timeout', `no complete answer within ${limits.timeoutMs} ms (discovery.timeoutMs)`)),
      limits.timeoutMs,
    );
    req.on('error', (err) => finish(new DiscoveryError('connect_error', err.message)));
    req.end();
  });
}

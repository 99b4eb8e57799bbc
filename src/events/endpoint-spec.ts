import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';

/**
 * A connect-mode endpoint: the pod's PUB address, optionally its replay ROUTER, and its data-parallel rank count
 * (rank r publishes on port + r and replays on replay port + r, spec/vllm-kv-events.md §1).
 *
 * Text form (config lists, env, the endpoints file):
 *   `tcp://10.0.0.5:5557[;replay=tcp://10.0.0.5:5558][;ranks=2][;endpoint=10.0.0.5:8000][;max_blocks=N][;ttl=S]`.
 * Object form (endpoints file, API): `{address, replay?, ranks?, endpoint?, maxBlocks?, ttlSeconds?}`.
 * `max_blocks`/`ttl` bound what ingest keeps for a store-only publisher (events/ingest/store-bound.ts); they need
 * `endpoint` (the identity the bound applies to, and to its data-parallel ranks).
 */
export interface EndpointSpec {
  address: string;
  replay: string | null;
  ranks: number;
  /** The identity `<ip>:<port>` its topic must name (optional): a mismatch is counted, logged and listed. */
  endpoint: string | null;
  /** Store bound of the endpoint's identities (null or absent: the service default, `ingest.storeBound`). */
  storeBound?: { maxBlocks: number | null; ttlMs: number | null } | null;
}

export class EndpointSpecError extends Error {}

const IDENTITY = /^(\[[0-9a-fA-F:.]+\]|[^:\s\[\]@]+):\d{1,5}$/;
const ADDRESS = /^(tcp:\/\/)(\[[0-9a-fA-F:.]+\]|[^:\s/\[\]]+):(\d{1,5})$/;

export function parseEndpointSpec(value: unknown): EndpointSpec {
  if (typeof value === 'string') {
    const [address, ...options] = value.split(';').map((s) => s.trim());
    const spec: Record<string, unknown> = { address };
    for (const option of options) {
      const eq = option.indexOf('=');
      if (eq < 0) throw new EndpointSpecError(`endpoint "${value}": option "${option}" is not key=value`);
      spec[option.slice(0, eq)] = option.slice(eq + 1);
    }
    return parseEndpointSpec(spec);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new EndpointSpecError(`endpoint must be a string or {address, replay?, ranks?, endpoint?}, got ${JSON.stringify(value)}`);
  }
  const { address, replay, ranks, endpoint, max_blocks, maxBlocks, ttl, ttlSeconds, storeBound: parsed, ...rest } = value as Record<string, unknown>;
  const unknownKeys = Object.keys(rest);
  if (unknownKeys.length) throw new EndpointSpecError(`endpoint ${JSON.stringify(value)}: unknown option(s) ${unknownKeys.join(', ')}`);
  if (typeof address !== 'string' || !ADDRESS.test(address)) {
    throw new EndpointSpecError(`endpoint address ${JSON.stringify(address)} is not tcp://<host>:<port>`);
  }
  if (replay !== undefined && replay !== null && (typeof replay !== 'string' || !ADDRESS.test(replay))) {
    throw new EndpointSpecError(`endpoint ${address}: replay ${JSON.stringify(replay)} is not tcp://<host>:<port>`);
  }
  const n = ranks === undefined ? 1 : Number(ranks);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new EndpointSpecError(`endpoint ${address}: ranks must be 1..64, got ${String(ranks)}`);
  if (endpoint !== undefined && endpoint !== null && (typeof endpoint !== 'string' || !IDENTITY.test(endpoint))) {
    throw new EndpointSpecError(`endpoint ${address}: endpoint ${JSON.stringify(endpoint)} is not <host>:<port>`);
  }
  // An already parsed spec (re-validated by the transport) carries its bound as `storeBound`.
  const given = typeof parsed === 'object' && parsed !== null ? (parsed as { maxBlocks?: unknown; ttlMs?: unknown }) : null;
  const storeBound = given
    ? parseStoreBound(address, given.maxBlocks, typeof given.ttlMs === 'number' ? given.ttlMs / 1000 : given.ttlMs)
    : parseStoreBound(address, maxBlocks ?? max_blocks, ttlSeconds ?? ttl);
  if (storeBound && typeof endpoint !== 'string') throw new EndpointSpecError(`endpoint ${address}: max_blocks/ttl need endpoint=<host>:<port> (the identity they bound)`);
  return { address, replay: typeof replay === 'string' ? replay : null, ranks: n, endpoint: typeof endpoint === 'string' ? endpoint : null, ...(storeBound ? { storeBound } : {}) };
}

/** `max_blocks` (1..10^9 engine blocks) and `ttl` (seconds, > 0, ≤ 30 days); both absent = null. */
function parseStoreBound(address: string, maxBlocks: unknown, ttl: unknown): EndpointSpec['storeBound'] {
  if ((maxBlocks === undefined || maxBlocks === null) && (ttl === undefined || ttl === null)) return null;
  let max: number | null = null;
  if (maxBlocks !== undefined && maxBlocks !== null) {
    max = Number(maxBlocks);
    if (!Number.isInteger(max) || max < 1 || max > 1e9) throw new EndpointSpecError(`endpoint ${address}: max_blocks must be an integer 1..1000000000, got ${String(maxBlocks)}`);
  }
  let ttlMs: number | null = null;
  if (ttl !== undefined && ttl !== null) {
    const seconds = Number(ttl);
    if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 30 * 86400) throw new EndpointSpecError(`endpoint ${address}: ttl must be seconds in (0, 2592000], got ${String(ttl)}`);
    ttlMs = Math.round(seconds * 1000);
  }
  return { maxBlocks: max, ttlMs };
}

/** The address of data-parallel rank r: same host, port + r. */
export function rankAddress(address: string, rank: number): string {
  const m = ADDRESS.exec(address);
  if (!m) throw new EndpointSpecError(`address ${address} is not tcp://<host>:<port>`);
  return `${m[1]}${m[2]}:${Number(m[3]) + rank}`;
}

/** The replay address of a bind-mode endpoint whose topic says `<host>:<port>`: `tcp://<host>:<replayPort + rank>`. */
export function bindReplayAddress(endpoint: string, replayPort: number, rank: number): string {
  const host = endpoint.slice(0, endpoint.lastIndexOf(':'));
  return `tcp://${host}:${replayPort + rank}`;
}

/** The endpoints file: a YAML (or JSON) list of specs, or `{endpoints: [...]}`. */
export async function readEndpointFile(path: string): Promise<EndpointSpec[]> {
  const text = await readFile(path, 'utf8');
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new EndpointSpecError(`${path}: not YAML/JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (doc === null || doc === undefined) return [];
  const list = Array.isArray(doc) ? doc : (doc as { endpoints?: unknown }).endpoints;
  if (!Array.isArray(list)) throw new EndpointSpecError(`${path}: expected a list of endpoints or {endpoints: [...]}`);
  return list.map(parseEndpointSpec);
}

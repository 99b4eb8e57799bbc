import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import {
  formatHostPort,
  formatTcpAddress,
  parseHostPort,
  parseTcpAddress,
  rankHostPort,
  InvalidInputError,
} from '../common/index.js';

/**
 * A connect-mode endpoint: the pod's PUB address, optionally its replay ROUTER, and its data-parallel rank count
 * (rank r publishes on port + r and replays on replay port + r, spec/vllm-kv-events.md §1) — or, instead of ZMQ
 * addresses, the vLLM HTTP base URL whose `GET /kv_event_sources` lists each rank's sockets (discovery.ts).
 *
 * Text form (config lists, env, the endpoints file):
 *   `tcp://10.0.0.5:5557[;replay=tcp://10.0.0.5:5558][;ranks=2][;endpoint=10.0.0.5:8000][;serving=10.0.0.5:8000][;max_blocks=N][;ttl=S]`
 *   `tcp://10.0.0.5:5557;ranks=2;identities=10.0.0.5:8000,10.0.0.5:8001`
 *   `http://10.0.0.5:8000[;endpoint=…][;serving=…|identities=…]` (discovery)
 * Object form (endpoints file, API): `{address, replay?, ranks?, endpoint?, serving?, identities?, maxBlocks?, ttlSeconds?}`.
 * `max_blocks`/`ttl` bound what ingest keeps for a store-only publisher (events/ingest/store-bound.ts); they need
 * `endpoint` (the identity the bound applies to, and to its data-parallel ranks).
 */
export interface EndpointSpec {
  /** `tcp://<host>:<port>` of rank 0's PUB, or (discovery) the vLLM HTTP base URL. */
  address: string;
  replay: string | null;
  ranks: number;
  /** The identity `<ip>:<port>` its topic must name (optional): a mismatch is counted, logged and listed. */
  endpoint: string | null;
  /**
   * How each rank's scoring identity is formed. Absent: from the topic, `<ip>:<port>` for rank 0 and
   * `<ip>:<port>@dp<r>` above (the default). `serving`: llm-d's rule, rank r is its own serving endpoint
   * `<host>:<port + r>` (llm-d-router #2233); `explicit`: one identity per rank.
   */
  identities?: RankIdentities;
  /** True when `address` is a vLLM HTTP base URL to discover the ranks' sockets from (ranks/replay then come from it). */
  discovery?: true;
  /** Store bound of the endpoint's identities (null or absent: the service default, `ingest.storeBound`). */
  storeBound?: { maxBlocks: number | null; ttlMs: number | null } | null;
}

export type RankIdentities = { kind: 'serving'; endpoint: string } | { kind: 'explicit'; endpoints: string[] };

export class EndpointSpecError extends InvalidInputError {}

/** `<host>:<port>` and `tcp://<host>:<port>` are checked by src/common/ (ports 1-65535, no leading zero). */
const isIdentity = (v: unknown): v is string => typeof v === 'string' && parseHostPort(v).ok;
const isAddress = (v: unknown): v is string => typeof v === 'string' && parseTcpAddress(v).ok;
/** An HTTP(S) base URL without query or fragment (a path prefix is allowed: a proxy in front of vLLM). */
const BASE_URL = /^https?:\/\/(\[[0-9a-fA-F:.]+\]|[^:\s/[\]?#@]+)(:\d{1,5})?(\/[^\s?#]*)?$/;

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
    throw new EndpointSpecError(
      `endpoint must be a string or {address, replay?, ranks?, endpoint?, serving?, identities?}, got ${JSON.stringify(value)}`,
    );
  }
  const {
    address,
    replay,
    ranks,
    endpoint,
    discovery: _parsed,
    max_blocks,
    maxBlocks,
    ttl,
    ttlSeconds,
    storeBound: parsedBound,
    ...more
  } = value as Record<string, unknown>;
  // A parsed spec (its `identities` object, `discovery` flag and `storeBound`) parses to itself.
  const { serving, identities, ...rest } = unparsedIdentities(more);
  const unknownKeys = Object.keys(rest);
  if (unknownKeys.length)
    throw new EndpointSpecError(`endpoint ${JSON.stringify(value)}: unknown option(s) ${unknownKeys.join(', ')}`);
  const discovery = typeof address === 'string' && /^https?:\/\//.test(address);
  if (discovery) {
    if (!BASE_URL.test(address as string))
      throw new EndpointSpecError(
        `endpoint address ${JSON.stringify(address)} is not http(s)://<host>[:<port>][/<path>]`,
      );
    if (replay !== undefined && replay !== null)
      throw new EndpointSpecError(`endpoint ${address}: replay is listed by the discovery URL, not configured`);
    // (a parsed discovery spec carries ranks: 1, its placeholder)
    if (ranks !== undefined && ranks !== null && Number(ranks) !== 1)
      throw new EndpointSpecError(`endpoint ${address}: ranks are listed by the discovery URL, not configured`);
  } else if (!isAddress(address)) {
    throw new EndpointSpecError(
      `endpoint address ${JSON.stringify(address)} is not tcp://<host>:<port> or http(s)://<host>:<port>`,
    );
  }
  if (replay !== undefined && replay !== null && !isAddress(replay)) {
    throw new EndpointSpecError(`endpoint ${address}: replay ${JSON.stringify(replay)} is not tcp://<host>:<port>`);
  }
  const n = ranks === undefined || ranks === null ? 1 : Number(ranks);
  if (!Number.isInteger(n) || n < 1 || n > 64)
    throw new EndpointSpecError(`endpoint ${address}: ranks must be 1..64, got ${String(ranks)}`);
  if (endpoint !== undefined && endpoint !== null && !isIdentity(endpoint)) {
    throw new EndpointSpecError(`endpoint ${address}: endpoint ${JSON.stringify(endpoint)} is not <host>:<port>`);
  }
  const spec: EndpointSpec = {
    address: address as string,
    replay: typeof replay === 'string' ? replay : null,
    ranks: n,
    endpoint: typeof endpoint === 'string' ? endpoint : null,
  };
  const rankIds = parseRankIdentities(address as string, serving, identities, discovery ? null : n);
  if (rankIds) spec.identities = rankIds;
  if (discovery) spec.discovery = true;
  // An already parsed spec (re-validated by the transport) carries its bound as `storeBound`.
  const given =
    typeof parsedBound === 'object' && parsedBound !== null
      ? (parsedBound as { maxBlocks?: unknown; ttlMs?: unknown })
      : null;
  const storeBound = given
    ? parseStoreBound(address, given.maxBlocks, typeof given.ttlMs === 'number' ? given.ttlMs / 1000 : given.ttlMs)
    : parseStoreBound(address, maxBlocks ?? max_blocks, ttlSeconds ?? ttl);
  if (storeBound && typeof endpoint !== 'string')
    throw new EndpointSpecError(
      `endpoint ${address}: max_blocks/ttl need endpoint=<host>:<port> (the identity they bound)`,
    );
  if (storeBound) spec.storeBound = storeBound;
  return spec;
}

function unparsedIdentities(options: Record<string, unknown>): Record<string, unknown> {
  const ids = options.identities as Partial<Record<string, unknown>> | undefined;
  if (typeof ids !== 'object' || ids === null || Array.isArray(ids)) return options;
  if (ids.kind === 'serving') return { ...options, identities: undefined, serving: ids.endpoint };
  if (ids.kind === 'explicit') return { ...options, identities: ids.endpoints };
  return options;
}

/** `serving=<host>:<port>` (llm-d: rank r is `<host>:<port + r>`) or `identities=<id0>,<id1>,…` (one per rank). */
function parseRankIdentities(
  address: string,
  serving: unknown,
  identities: unknown,
  ranks: number | null,
): RankIdentities | undefined {
  const hasServing = serving !== undefined && serving !== null;
  const hasList = identities !== undefined && identities !== null;
  if (hasServing && hasList) throw new EndpointSpecError(`endpoint ${address}: give serving or identities, not both`);
  if (hasServing) {
    const m = typeof serving === 'string' ? parseHostPort(serving) : null;
    if (!m?.ok)
      throw new EndpointSpecError(`endpoint ${address}: serving ${JSON.stringify(serving)} is not <host>:<port>`);
    if (rankHostPort(m.value, (ranks ?? 1) - 1) === null)
      throw new EndpointSpecError(`endpoint ${address}: serving port + rank passes 65535`);
    return { kind: 'serving', endpoint: serving as string };
  }
  if (!hasList) return undefined;
  const list = typeof identities === 'string' ? identities.split(',').map((s) => s.trim()) : identities;
  if (!Array.isArray(list) || list.length === 0 || list.length > 64) {
    throw new EndpointSpecError(
      `endpoint ${address}: identities must be a list of 1..64 <host>:<port>, got ${JSON.stringify(identities)}`,
    );
  }
  list.forEach((id, r) => {
    if (!isIdentity(id))
      throw new EndpointSpecError(`endpoint ${address}: identities[${r}] ${JSON.stringify(id)} is not <host>:<port>`);
  });
  if (new Set(list).size !== list.length)
    throw new EndpointSpecError(`endpoint ${address}: identities are not distinct`);
  if (ranks !== null && list.length !== ranks)
    throw new EndpointSpecError(`endpoint ${address}: ${list.length} identities for ${ranks} rank(s)`);
  return { kind: 'explicit', endpoints: [...(list as string[])] };
}

/**
 * The scoring identity a connection gives rank r, or null when it comes from the topic (the default). Null too for an
 * explicit list that names no identity for r (a discovery list with more ranks than configured identities).
 */
export function rankIdentityOf(spec: Pick<EndpointSpec, 'identities'>, rank: number): string | null {
  const ids = spec.identities;
  if (!ids) return null;
  if (ids.kind === 'explicit') return ids.endpoints[rank] ?? null;
  const serving = parseHostPort(ids.endpoint);
  const ofRank = serving.ok ? rankHostPort(serving.value, rank) : null;
  return ofRank === null ? null : formatHostPort(ofRank);
}

/** Whether two specs ask for the same connection. */
export function sameSpec(a: EndpointSpec, b: EndpointSpec): boolean {
  return (
    a.address === b.address &&
    a.replay === b.replay &&
    a.ranks === b.ranks &&
    a.endpoint === b.endpoint &&
    !!a.discovery === !!b.discovery &&
    JSON.stringify(a.identities ?? null) === JSON.stringify(b.identities ?? null) &&
    a.storeBound?.maxBlocks === b.storeBound?.maxBlocks &&
    a.storeBound?.ttlMs === b.storeBound?.ttlMs
  );
}

/** `max_blocks` (1..10^9 engine blocks) and `ttl` (seconds, > 0, ≤ 30 days); both absent = null. */
function parseStoreBound(address: string, maxBlocks: unknown, ttl: unknown): EndpointSpec['storeBound'] {
  if ((maxBlocks === undefined || maxBlocks === null) && (ttl === undefined || ttl === null)) return null;
  let max: number | null = null;
  if (maxBlocks !== undefined && maxBlocks !== null) {
    max = Number(maxBlocks);
    if (!Number.isInteger(max) || max < 1 || max > 1e9)
      throw new EndpointSpecError(
        `endpoint ${address}: max_blocks must be an integer 1..1000000000, got ${String(maxBlocks)}`,
      );
  }
  let ttlMs: number | null = null;
  if (ttl !== undefined && ttl !== null) {
    const seconds = Number(ttl);
    if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 30 * 86400)
      throw new EndpointSpecError(`endpoint ${address}: ttl must be seconds in (0, 2592000], got ${String(ttl)}`);
    ttlMs = Math.round(seconds * 1000);
  }
  return { maxBlocks: max, ttlMs };
}

/** The address of data-parallel rank r: same host, port + r. */
export function rankAddress(address: string, rank: number): string {
  const m = parseTcpAddress(address);
  if (!m.ok) throw new EndpointSpecError(`address ${address} is not tcp://<host>:<port>`);
  const ofRank = rankHostPort(m.value, rank);
  if (ofRank === null) throw new EndpointSpecError(`address ${address}: port + rank ${rank} passes 65535`);
  return formatTcpAddress(ofRank);
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

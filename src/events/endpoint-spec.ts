import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';

/**
 * A connect-mode endpoint: the pod's PUB address, optionally its replay ROUTER, and its data-parallel rank count
 * (rank r publishes on port + r and replays on replay port + r, spec/vllm-kv-events.md §1).
 *
 * Text form (config lists, env, the endpoints file):
 *   `tcp://10.0.0.5:5557[;replay=tcp://10.0.0.5:5558][;ranks=2][;endpoint=10.0.0.5:8000]`.
 * Object form (endpoints file, API): `{address, replay?, ranks?, endpoint?}`.
 */
export interface EndpointSpec {
  address: string;
  replay: string | null;
  ranks: number;
  /** The identity `<ip>:<port>` its topic must name (optional): a mismatch is counted, logged and listed. */
  endpoint: string | null;
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
  const { address, replay, ranks, endpoint, ...rest } = value as Record<string, unknown>;
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
  return { address, replay: typeof replay === 'string' ? replay : null, ranks: n, endpoint: typeof endpoint === 'string' ? endpoint : null };
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

/**
 * The one definition of an endpoint identity and a ZeroMQ tcp address, used by the API's validation, the topic parser,
 * the endpoint specs and vLLM discovery (before: five regular expressions that disagreed on ports and hosts).
 *
 * - host: a name or IPv4 literal `[A-Za-z0-9._-]+`, or an IPv6 literal in brackets `[fd00::5]`;
 * - port: 1..65535 written without a leading zero (`:080` would be a second spelling of the picker's `:80`);
 * - identity: `<host>:<port>`, and `<host>:<port>@dp<r>` for data-parallel rank r > 0 (rank 0 is the bare endpoint,
 *   so `@dp0` is refused: one spelling per identity);
 * - tcp address: `tcp://<host>:<port>`, where host may also be `*` (vLLM's bind-all, `tcp://*:5557`);
 * - rank arithmetic (llm-d / vLLM data parallelism): rank r's socket and serving identity are port + r.
 *
 * A leaf: imports nothing. Parsers return typed results; callers turn a failure into their own error type.
 */

export const MIN_PORT = 1;
export const MAX_PORT = 65_535;
/** `@dp<r>`: at most five digits, as the API accepted before (ranks come from publishers' events). */
const RANK_RE = /^[1-9]\d{0,4}$/;
const PORT_RE = /^[1-9]\d{0,4}$/;
const NAME_RE = /^[A-Za-z0-9._-]+$/;
const IPV6_RE = /^\[[0-9a-fA-F:.]+\]$/;

export interface HostPort {
  /** As written; IPv6 keeps its brackets. */
  host: string;
  port: number;
}

export interface EndpointIdentity extends HostPort {
  /** Data-parallel rank: 0 for `<host>:<port>`, r for `<host>:<port>@dp<r>`. */
  rank: number;
}

/** Why a text is not what was asked: its shape (`syntax`), its port, or its `@dp` rank. */
export type IdentityProblem = 'syntax' | 'port' | 'rank';
export type Parsed<T> = { ok: true; value: T } | { ok: false; problem: IdentityProblem; message: string };

function fail<T>(problem: IdentityProblem, message: string): Parsed<T> {
  return { ok: false, problem, message };
}

/** A port number 1..65535 written without a leading zero, or null. */
export function parsePort(text: string): number | null {
  if (!PORT_RE.test(text)) return null;
  const port = Number(text);
  return port <= MAX_PORT ? port : null;
}

const IPV4_OCTET = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const IPV4_RE = new RegExp(`^${IPV4_OCTET}(?:\\.${IPV4_OCTET}){3}$`);

/** A dotted IPv4 literal without leading zeros (`10.0.0.5`) or a bracketed IPv6 literal (`[fd00::5]`): no name lookup. */
export function isIpLiteral(host: string): boolean {
  return IPV4_RE.test(host) || IPV6_RE.test(host);
}

export function isHost(text: string): boolean {
  return NAME_RE.test(text) || IPV6_RE.test(text);
}

/** `<host>:<port>` (no rank). */
export function parseHostPort(text: string): Parsed<HostPort> {
  if (typeof text !== 'string') return fail('syntax', `${JSON.stringify(text)} is not <host>:<port>`);
  const colon = text.lastIndexOf(':');
  const host = text.slice(0, colon);
  const portText = text.slice(colon + 1);
  if (colon < 0 || !isHost(host) || !/^\d+$/.test(portText)) return fail('syntax', `"${text}" is not <host>:<port>`);
  const port = parsePort(portText);
  if (port === null) return fail('port', `port "${portText}" is not a port number (1-65535, no leading zero)`);
  return { ok: true, value: { host, port } };
}

/** `<host>:<port>` or `<host>:<port>@dp<r>` (r ≥ 1). */
export function parseEndpointIdentity(text: string): Parsed<EndpointIdentity> {
  if (typeof text !== 'string') return fail('syntax', `${JSON.stringify(text)} is not <host>:<port>[@dp<rank>]`);
  const at = text.indexOf('@');
  const hostPort = parseHostPort(at < 0 ? text : text.slice(0, at));
  if (!hostPort.ok) return hostPort;
  if (at < 0) return { ok: true, value: { ...hostPort.value, rank: 0 } };
  const suffix = text.slice(at + 1);
  if (!suffix.startsWith('dp') || !RANK_RE.test(suffix.slice(2))) {
    return fail(
      'rank',
      `"${text}": "@${suffix}" is not @dp<rank> (rank 1-99999, no leading zero; rank 0 has no suffix)`,
    );
  }
  return { ok: true, value: { ...hostPort.value, rank: Number(suffix.slice(2)) } };
}

/** `tcp://<host>:<port>`; host may be `*` (bind on all interfaces). */
export function parseTcpAddress(text: string): Parsed<HostPort> {
  if (typeof text !== 'string' || !text.startsWith('tcp://'))
    return fail('syntax', `${JSON.stringify(text)} is not tcp://<host>:<port>`);
  const rest = text.slice('tcp://'.length);
  const parsed = parseHostPort(rest.startsWith('*:') ? `0.0.0.0${rest.slice(1)}` : rest);
  if (!parsed.ok) return parsed.problem === 'syntax' ? fail('syntax', `"${text}" is not tcp://<host>:<port>`) : parsed;
  return { ok: true, value: { host: rest.startsWith('*:') ? '*' : parsed.value.host, port: parsed.value.port } };
}

export function formatHostPort(hp: HostPort): string {
  return `${hp.host}:${hp.port}`;
}

export function formatEndpointIdentity(id: EndpointIdentity): string {
  return rankIdentity(formatHostPort(id), id.rank);
}

export function formatTcpAddress(hp: HostPort): string {
  return `tcp://${hp.host}:${hp.port}`;
}

/** The scoring identity of one data-parallel rank of an endpoint: rank 0 (or none) is the endpoint itself. */
export function rankIdentity(endpoint: string, rank: number | null): string {
  return rank === null || rank === 0 ? endpoint : `${endpoint}@dp${rank}`;
}

/** Rank r's port (port + r), or null when it passes 65535. */
export function rankPort(port: number, rank: number): number | null {
  const p = port + rank;
  return p <= MAX_PORT ? p : null;
}

/** Rank r's `<host>:<port + r>` (llm-d's serving identity of rank r), or null when the port passes 65535. */
export function rankHostPort(hp: HostPort, rank: number): HostPort | null {
  const port = rankPort(hp.port, rank);
  return port === null ? null : { host: hp.host, port };
}

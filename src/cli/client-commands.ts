import { parseArgs } from 'node:util';
import { parseKey } from '../keys/index.js';
import { loadConfigFrom } from '../ops/index.js';
import { ApiClient, clientAddress, describeCallError, DEFAULT_CLIENT_ADDRESS } from './api-client.js';

/**
 * Small clients of a running indexer, for operators without grpcurl: `health`, `info`, `endpoints`, `lookup`. Each
 * prints JSON on stdout (one object) and exits 0, or prints the gRPC error on stderr and exits 1 (health: 1 when not
 * SERVING too). The address is --address, else KV_INDEXER_GRPC_ADDRESS, else localhost:50051.
 */
const COMMON = `  --address HOST:PORT   the indexer's gRPC address (default: KV_INDEXER_GRPC_ADDRESS, else ${DEFAULT_CLIENT_ADDRESS})
  --timeout MS          deadline of the call (default 5000)`;

export const CLIENT_USAGE: Record<string, string> = {
  health: `usage: kv-indexer health [--service NAME] [--address HOST:PORT]
       kv-indexer health --http [--config FILE] [--address HOST:PORT]

grpc.health.v1 Check; prints {"service","status"} and exits 0 when SERVING, 1 otherwise (a probe for scripts).
With --http: GET /healthz (readiness) on the metrics listener the configuration names (metrics.host:metrics.port from
--config, KV_INDEXER_* as serve reads them; a wildcard host means the loopback): the container HEALTHCHECK.
  --service NAME        '' (default, overall), liveness, readiness, kvindexer.v1.KvIndexer
${COMMON}`,
  info: `usage: kv-indexer info [--stats] [--address HOST:PORT]

GetInfo (version, key fingerprint, tier weights, backend, models); with --stats, GetStats as well.
${COMMON}`,
  endpoints: `usage: kv-indexer endpoints [--address HOST:PORT]

ListEndpoints: every endpoint identity with its state, models, blocks by tier, last sequence, gaps and replays.
${COMMON}`,
  lookup: `usage: kv-indexer lookup KEY... [--candidates ip:port,...] [--max-blocks N] [--address HOST:PORT]

Lookup of request block keys (decimal or 0x-hex uint64, in prompt order, or comma-separated): matched prefix blocks
per endpoint. Block keys of a request come from "kv-indexer keys REQUEST.json".
${COMMON}`,
};

export async function clientCommand(
  command: 'health' | 'info' | 'endpoints' | 'lookup',
  argv: string[],
  env: NodeJS.ProcessEnv,
): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: command === 'lookup',
      options: {
        address: { type: 'string' },
        timeout: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        ...(command === 'health'
          ? { service: { type: 'string' }, http: { type: 'boolean' }, config: { type: 'string' } }
          : {}),
        ...(command === 'info' ? { stats: { type: 'boolean' } } : {}),
        ...(command === 'lookup' ? { candidates: { type: 'string' }, 'max-blocks': { type: 'string' } } : {}),
      },
    });
  } catch (err) {
    console.error(`${(err as Error).message}\n\n${CLIENT_USAGE[command]}`);
    return 2;
  }
  const v = parsed.values as Record<string, string | boolean | undefined>;
  if (v.help) {
    console.log(CLIENT_USAGE[command]);
    return 0;
  }
  const timeout = v.timeout === undefined ? 5_000 : Number(v.timeout);
  if (!Number.isInteger(timeout) || timeout < 1) {
    console.error(`--timeout: expected a positive integer of milliseconds, got "${String(v.timeout)}"`);
    return 2;
  }
  let request: object = {};
  if (command === 'lookup') {
    const raw = parsed.positionals
      .flatMap((p) => p.split(','))
      .map((s) => s.trim())
      .filter(Boolean);
    if (raw.length === 0) {
      console.error(`lookup needs at least one block key\n\n${CLIENT_USAGE.lookup}`);
      return 2;
    }
    let keys: string[];
    try {
      keys = raw.map((k) => parseKey(k).toString());
    } catch (err) {
      console.error(`lookup: ${(err as Error).message}`);
      return 2;
    }
    const maxBlocks = v['max-blocks'] === undefined ? 0 : Number(v['max-blocks']);
    if (!Number.isInteger(maxBlocks) || maxBlocks < 0) {
      console.error(`--max-blocks: expected a non-negative integer, got "${String(v['max-blocks'])}"`);
      return 2;
    }
    const candidates =
      typeof v.candidates === 'string'
        ? v.candidates
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean)
        : [];
    request = { blockKeys: keys, candidates, maxBlocks };
  }
  if (command === 'health' && v.http)
    return httpHealth(
      typeof v.address === 'string' ? v.address : null,
      typeof v.config === 'string' ? v.config : null,
      env,
      timeout,
    );
  const address = clientAddress(typeof v.address === 'string' ? v.address : undefined, env);
  const health = command === 'health';
  const client = health
    ? new ApiClient(address, 'grpc/health/v1/health.proto', 'grpc.health.v1.Health', timeout)
    : new ApiClient(address, undefined, undefined, timeout);
  try {
    if (health) {
      const service = typeof v.service === 'string' ? v.service : '';
      const res = await client.call<{ status: string }>('Check', { service });
      console.log(JSON.stringify({ service, status: res.status }));
      return res.status === 'SERVING' ? 0 : 1;
    }
    if (command === 'info') {
      const info = await client.call<object>('GetInfo');
      const out = v.stats ? { ...info, stats: await client.call<object>('GetStats') } : info;
      console.log(JSON.stringify(out, null, 2));
    } else if (command === 'endpoints') {
      console.log(JSON.stringify(await client.call<object>('ListEndpoints'), null, 2));
    } else {
      console.log(JSON.stringify(await client.call<object>('Lookup', request), null, 2));
    }
    return 0;
  } catch (err) {
    console.error(`${command} (${address}): ${describeCallError(err)}`);
    return 1;
  } finally {
    client.close();
  }
}

/** `health --http`: /healthz of the metrics listener serve would open with this configuration. */
async function httpHealth(
  address: string | null,
  configFile: string | null,
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<number> {
  let target = address;
  if (target === null) {
    const { metrics } = loadConfigFrom({ file: configFile, env, flags: [] });
    const host = ['0.0.0.0', '::', '*', ''].includes(metrics.host) ? '127.0.0.1' : metrics.host;
    target = `${host.includes(':') ? `[${host}]` : host}:${metrics.port}`;
  }
  const url = `http://${target}/healthz`;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    console.log(JSON.stringify({ url, status: res.status, ready: res.ok }));
    return res.ok ? 0 : 1;
  } catch (err) {
    console.error(`health (${url}): ${(err as Error).message}`);
    return 1;
  }
}

import { createHash, timingSafeEqual } from 'node:crypto';
import type { IndexerApi } from './indexer-api.js';
import type { Cancellation } from './prompt-frontend.js';
import type { SelectApi } from './select.js';

/**
 * One unary RPC as the gRPC front end calls it: the decoded request (or, across the index thread, its bytes), the
 * call's cancellation, the caller's address. Resolves with the response; rejects with an error toStatus maps.
 */
export type Operation = (req: never, cancellation: Cancellation, caller: string) => Promise<unknown>;

/** Every unary RPC of kvindexer.v1 and indexer.v1 by its gRPC path (`/package.Service/Method`). */
export type Operations = Record<string, Operation>;

const kv = (method: string) => `/kvindexer.v1.KvIndexer/${method}`;

/** The paths of every unary RPC served (GrpcServer and WireOperations refuse to start if the protos have another). */
export const OPERATION_PATHS = [
  ...[
    'Score',
    'ComputeBlockKeys',
    'Render',
    'Lookup',
    'Reserve',
    'Release',
    'ListEndpoints',
    'AddEndpoint',
    'RemoveEndpoint',
    'ClearEndpoint',
    'GetInfo',
    'GetStats',
    'Select',
    'PrefillComplete',
    'ReleaseReservation',
    'LookupImages',
  ].map(kv),
  '/indexer.v1.IndexerService/GetPodScores',
];

/** Every operation handed to `forward` with its path (the index thread's host: bytes in, bytes out). */
export function forwardOperations(
  forward: (path: string, req: Buffer, cancellation: Cancellation, caller: string) => Promise<Buffer>,
): Operations {
  const out: Operations = {};
  for (const path of OPERATION_PATHS)
    out[path] = ((req: Buffer, cancellation: Cancellation, caller: string) =>
      forward(path, req, cancellation, caller)) as Operation;
  return out;
}

/** The admin RPCs: they change what is followed or indexed, so they need the admin token (api.adminTokenFile). */
export const ADMIN_PATHS = new Set([
  '/kvindexer.v1.KvIndexer/AddEndpoint',
  '/kvindexer.v1.KvIndexer/RemoveEndpoint',
  '/kvindexer.v1.KvIndexer/ClearEndpoint',
]);

/** What a caller without the admin token is told (UNAUTHENTICATED). */
export const ADMIN_DENIED = 'admin RPCs need the header authorization: Bearer <token>';

/**
 * Whether an `authorization` header value carries the admin token (`Bearer <token>`), compared in constant time on
 * fixed-length digests, so that tokens of different lengths leak nothing through timing. For both gRPC servers.
 */
export function adminAuthorizer(token: string): (authorization: unknown) => boolean {
  const digest = (t: string) => createHash('sha256').update(t).digest();
  const expected = digest(token);
  return (authorization) =>
    typeof authorization === 'string' &&
    authorization.startsWith('Bearer ') &&
    timingSafeEqual(digest(authorization.slice(7)), expected);
}

type Req<F extends (...args: never[]) => unknown> = Parameters<F>[0];

/** The operations of this thread's IndexerApi and SelectApi (GetStats merges both). */
export function localOperations(api: IndexerApi, select: SelectApi): Operations {
  return {
    [kv('Score')]: (req: Req<IndexerApi['score']>, signal, caller) => api.score(req, signal, caller),
    [kv('ComputeBlockKeys')]: (req: Req<IndexerApi['computeBlockKeys']>, signal) => api.computeBlockKeys(req, signal),
    [kv('Render')]: (req: Req<IndexerApi['render']>, signal) => api.render(req, signal),
    [kv('Lookup')]: (req: Req<IndexerApi['lookup']>) => api.lookup(req),
    [kv('Reserve')]: (req: Req<IndexerApi['reserve']>, _signal, caller) => api.reserve(req, caller),
    [kv('Release')]: (req: Req<IndexerApi['release']>, _signal, caller) => api.release(req, caller),
    [kv('ListEndpoints')]: () => api.listEndpoints(),
    [kv('AddEndpoint')]: (req: Req<IndexerApi['addEndpoint']>) => api.addEndpoint(req),
    [kv('RemoveEndpoint')]: (req: Req<IndexerApi['removeEndpoint']>) => api.removeEndpoint(req),
    [kv('ClearEndpoint')]: (req: Req<IndexerApi['clearEndpoint']>) => api.clearEndpoint(req),
    [kv('GetInfo')]: () => api.getInfo(),
    [kv('GetStats')]: async () => ({ ...(await api.getStats()), ...select.stats() }),
    [kv('Select')]: (req: Req<SelectApi['select']>, signal, caller) => select.select(req, signal, caller),
    [kv('PrefillComplete')]: (req: Req<SelectApi['prefillComplete']>) => select.prefillComplete(req),
    [kv('ReleaseReservation')]: (req: Req<SelectApi['releaseReservation']>) => select.releaseReservation(req),
    [kv('LookupImages')]: (req: Req<IndexerApi['lookupImages']>) => api.lookupImages(req),
    '/indexer.v1.IndexerService/GetPodScores': (req: Req<IndexerApi['getPodScores']>, signal) =>
      api.getPodScores(req, signal),
  };
}

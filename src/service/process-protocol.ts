import type { StartFailure } from './startup-error.js';

/**
 * What passes between the primary (serving-processes.ts) and a serving process (serving-worker.ts) over the cluster's
 * IPC channel (advanced serialization: request bytes travel as Uint8Array). Calls do not: each process terminates its
 * own gRPC connections. Only start-up, health, /metrics scrapes, replicated writes and stop do.
 */

/** primary → serving process */
export type ToServingProcess =
  /** The whole fleet's health: every process reports it, so that a probe on any connection sees every part. */
  | { t: 'fleet'; ready: boolean; alive: boolean }
  | { t: 'metrics'; id: number }
  /** Apply a write another process served (or, to a replacement, one from the endpoint log). */
  | { t: 'apply'; id: number; path: string; bytes: Uint8Array; caller: string }
  /** The write this process asked to replicate is applied everywhere. */
  | { t: 'replicated'; id: number }
  | { t: 'stop' };

/** serving process → primary */
export type FromServingProcess =
  | { t: 'started'; grpcPort: number }
  | { t: 'failed'; failure: StartFailure }
  | { t: 'metrics'; id: number; text: string }
  /** `caller`: the client's address, so that per-caller bounds (Reserve's quota) count the same on every replica. */
  | { t: 'replicate'; id: number; path: string; bytes: Uint8Array; caller: string }
  | { t: 'applied'; id: number };

const kv = (method: string) => `/kvindexer.v1.KvIndexer/${method}`;

/**
 * The writes every replica must see, whichever process served the call: what is followed (endpoints added, removed,
 * cleared) and the speculative entries (Reserve, Release). Select's ledger (Select, PrefillComplete,
 * ReleaseReservation) stays per process: a reservation is answered by the process that made it (docs/operations.md).
 */
export const REPLICATED_PATHS = new Set([
  kv('AddEndpoint'),
  kv('RemoveEndpoint'),
  kv('ClearEndpoint'),
  kv('Reserve'),
  kv('Release'),
]);

/** The replicated writes a replacement process replays at start: what is followed, in order (not one-off clears). */
export const LOGGED_PATHS = new Set([kv('AddEndpoint'), kv('RemoveEndpoint')]);

/** The label that tells the serving processes' series apart on the primary's /metrics. */
export const WORKER_LABEL = 'worker';

/** The environment variable (JSON) that gives a serving process its slot (0 … api.processes − 1) and the relay address; outside KV_INDEXER_*, which is configuration. */
export const SERVING_PROCESS_ENV = 'KVINDEXER_SERVING_PROCESS_SETUP';

export interface ServingProcessSetup {
  slot: number;
  /** The primary's relay of the bind-mode socket (zmq.mode bind), or null. */
  relay: string | null;
}

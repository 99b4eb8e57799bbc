import { ApiError, STATUS_OF, type ApiErrorCode } from '../api/index.js';
import { ConfigError, type Config } from '../ops/index.js';
import type { LedgerAnswer, LedgerCall } from './shared-ledger.js';
import type { StartFailure } from './startup-error.js';

/**
 * What passes between the primary (serving-processes.ts) and a serving process (serving-worker.ts) over the cluster's
 * IPC channel (advanced serialization: request bytes travel as Uint8Array). Calls do not: each process terminates its
 * own gRPC connections. Only start-up, health, /metrics scrapes, replicated writes, Select's ledger calls (the
 * primary holds the service's one ledger, shared-ledger.ts) and stop do.
 */

/** A write's outcome as it crosses: the response bytes, or the status it failed with (api/wire-operations.ts). */
export type ReplicatedReply = { bytes: Uint8Array } | { code: number; details: string };

/** primary → serving process */
export type ToServingProcess =
  /**
   * The whole fleet's health: every process reports it, so that a probe on any connection sees every part.
   * `caughtUp`: this process has every replicated write so far and may take new ones.
   */
  | { t: 'fleet'; ready: boolean; alive: boolean; caughtUp: boolean }
  | { t: 'metrics'; id: number }
  /** Apply a replicated write (every serving process gets it, the one that received the call included). */
  | { t: 'apply'; id: number; path: string; bytes: Uint8Array; caller: string }
  /** The write this process asked to replicate is applied everywhere; `reply` is its outcome here. */
  | { t: 'replicated'; id: number; reply: ReplicatedReply }
  /** The primary's in-flight ledger answered this process's call `id`. */
  | { t: 'ledger-reply'; id: number; answer: LedgerAnswer }
  | { t: 'stop' };

/** serving process → primary */
export type FromServingProcess =
  /** Its message handler is attached: what the primary sent before waited (a message to no listener is lost). */
  | { t: 'hello' }
  | { t: 'started'; grpcPort: number }
  | { t: 'failed'; failure: StartFailure }
  | { t: 'metrics'; id: number; text: string }
  /**
   * A replicated write this process received: the primary orders it among the others and sends it to every serving
   * process, this one included. `caller`: the client's address, so that per-caller bounds (Reserve's quota) count
   * the same everywhere.
   */
  | { t: 'replicate'; id: number; path: string; bytes: Uint8Array; caller: string }
  | { t: 'applied'; id: number; reply: ReplicatedReply }
  /** A call on Select's in-flight ledger, which the primary holds for every serving process. */
  | { t: 'ledger'; id: number; call: LedgerCall };

const kv = (method: string) => `/kvindexer.v1.KvIndexer/${method}`;

/**
 * The writes every replica must see, whichever process served the call: what is followed (endpoints added, removed,
 * cleared) and the speculative entries (Reserve, Release). Select's ledger is not replicated: there is one, the
 * primary's, which every process calls (shared-ledger.ts).
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

/**
 * Field 1 (`string endpoint`) of an AddEndpointRequest or RemoveEndpointRequest, read from its protobuf bytes; null
 * when absent or unreadable. The primary keeps the latest change per endpoint for replacements.
 */
export function endpointField(bytes: Uint8Array): string | null {
  let at = 0;
  const varint = (): number => {
    let value = 0;
    for (let shift = 0; shift < 35 && at < bytes.length; shift += 7) {
      const b = bytes[at++];
      value += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return value;
    }
    return -1;
  };
  while (at < bytes.length) {
    const tag = varint();
    if (tag < 0) return null;
    const type = tag & 7;
    if (type === 0) {
      if (varint() < 0) return null;
    } else if (type === 1 || type === 5) at += type === 1 ? 8 : 4;
    else if (type === 2) {
      const length = varint();
      if (length < 0 || at + length > bytes.length) return null;
      if (tag >>> 3 === 1) return Buffer.from(bytes.buffer, bytes.byteOffset + at, length).toString('utf8');
      at += length;
    } else return null;
  }
  return null;
}

/** A status code back as the API's error code. */
const API_CODE = new Map(Object.entries(STATUS_OF).map(([code, value]) => [value as number, code as ApiErrorCode]));

/**
 * The refusal of the Reserve that carried a Select's or a Score's speculative entries to every replica, as the API
 * error the call would have given with the entries written here: the same code, and the caller's own field named
 * (`reserve`, `speculate`) where Reserve names its `block_keys`.
 */
export function speculationRefused(reply: { code: number; details: string }, field: string): ApiError {
  const prefix = 'block_keys: ';
  const message = reply.details.startsWith(prefix) ? reply.details.slice(prefix.length) : reply.details;
  return new ApiError(API_CODE.get(reply.code) ?? 'internal', reply.details.startsWith(prefix) ? field : '', message);
}

/** The label that tells the serving processes' series apart on the primary's /metrics. */
export const WORKER_LABEL = 'worker';

/** The environment variable (JSON) that gives a serving process its slot (0 … api.processes − 1) and the relay address; outside KV_INDEXER_*, which is configuration. */
export const SERVING_PROCESS_ENV = 'KVINDEXER_SERVING_PROCESS_SETUP';

export interface ServingProcessSetup {
  slot: number;
  /** The primary's relay of the bind-mode socket (zmq.mode bind), or null. */
  relay: string | null;
}

/** Refuses the shapes api.processes cannot serve, naming the setting. */
export function checkProcessesConfig(config: Config): void {
  if (config.api.processes <= 1) return;
  if (config.index.backend !== 'memory')
    throw new ConfigError(
      `api.processes: ${config.api.processes} needs index.backend memory (one replica per process); with Redis every ` +
        'replica shares one index: run more replicas of the service instead',
    );
  if (config.api.indexThread)
    throw new ConfigError('api.processes and api.indexThread: choose one (each process would start an index thread)');
}

import { status } from '@grpc/grpc-js';
import {
  CallStatus,
  forwardOperations,
  loadProtos,
  WireOperations,
  type Operations,
  type Speculate,
} from '../api/index.js';
import type { Cancellation } from '../api/prompt-frontend.js';
import type { Config, Logger } from '../ops/index.js';
import { SERVICE_NAMES } from './api-front.js';
import {
  REPLICATED_PATHS,
  SERVING_PROCESS_ENV,
  speculationRefused,
  type FromServingProcess,
  type ReplicatedReply,
  type ServingProcessSetup,
  type ToServingProcess,
} from './process-protocol.js';
import { loadConfiguredModels, type PromptServiceFrontend } from './prompt-frontend.js';
import { startApi, type RunningApi } from './start-api.js';
import { startService, type RunningService } from './start-service.js';
import { PendingReplies } from './pending-replies.js';
import { ProcessLedger } from './shared-ledger.js';
import { describeStartFailure } from './startup-error.js';

/** A replicated write not confirmed in this long (the primary stuck) fails UNAVAILABLE; it may have applied somewhere. */
const REPLICATION_WAIT_MS = 10_000;
/** Replicated writes run to their end: nobody is waiting to cancel them. */
const NOT_CANCELLED: Cancellation = { aborted: false };
const RESERVE = '/kvindexer.v1.KvIndexer/Reserve';

/** The setup the primary gave this serving process (process-protocol.ts), or null outside one. */
export function servingProcessSetup(env: NodeJS.ProcessEnv): ServingProcessSetup | null {
  const raw = env[SERVING_PROCESS_ENV];
  return raw ? (JSON.parse(raw) as ServingProcessSetup) : null;
}

/** Sends to the primary; resolves once the message is handed to the channel (before an exit that follows it). */
function send(message: FromServingProcess): Promise<void> {
  return new Promise((resolve) => {
    if (!process.connected) return resolve();
    process.send!(message, undefined, {}, () => resolve());
  });
}

/**
 * One serving process of api.processes (serving-processes.ts is the primary): the whole single-loop service, its
 * write path fed by the same publishers as every other process (connect mode: its own sockets; bind mode: the
 * primary's relay), gRPC on the port the processes share (node:cluster hands each new connection to one of them), no
 * metrics server of its own (the primary asks for this registry's text). Writes that every replica must see
 * (REPLICATED_PATHS) go to the primary, which gives them one order and applies them on every serving process, this one
 * included; the caller gets this process's outcome. Ends with code 0 after a drain on `stop` or a shutdown signal
 * (node:cluster ends it at once if the primary dies).
 */
export async function runServingProcess(config: Config, baseLog: Logger, setup: ServingProcessSetup): Promise<number> {
  const log = baseLog.child({ worker: setup.slot });
  let prompts: PromptServiceFrontend | null = null;
  let service: RunningService | null = null;
  let api: RunningApi | null = null;
  let wire: WireOperations | null = null;
  let caughtUp = false;
  const replicating = new PendingReplies<ReplicatedReply>();
  /** Select's ledger is the primary's, one for every process (shared-ledger.ts). */
  const ledger = new ProcessLedger((id, call) => void send({ t: 'ledger', id, call }));
  /** A write every replica must see: ordered by the primary, applied everywhere, this process included. */
  const replicate = (path: string, bytes: Uint8Array, caller: string) =>
    !caughtUp || !process.connected
      ? Promise.resolve<ReplicatedReply>({
          code: status.UNAVAILABLE,
          details: 'this serving process is starting: retry shortly',
        })
      : replicating.ask(
          (id) => void send({ t: 'replicate', id, path, bytes, caller }),
          REPLICATION_WAIT_MS,
          () => ({
            code: status.UNAVAILABLE,
            details: `not confirmed by every serving process in ${REPLICATION_WAIT_MS} ms`,
          }),
        );
  /** Speculative entries (Select's pick, Score's `speculate`): a Reserve through the primary, held by every replica. */
  const encodeReserve = loadProtos().kvIndexer.Reserve.requestSerialize;
  const speculate: Speculate = async (caller, endpoint, keys, ttlMs, field) => {
    const bytes = encodeReserve({ endpoint, blockKeys: Array.from(keys, String), ttlMs });
    const reply = await replicate(RESERVE, bytes, caller);
    if ('code' in reply) throw speculationRefused(reply, field);
  };
  const served = (core: Operations): Operations => {
    const local = new WireOperations(core, log);
    wire = local;
    return forwardOperations(async (path, request, cancellation, caller) => {
      if (!REPLICATED_PATHS.has(path)) {
        const reply = await local.call(path, request, cancellation, caller); // Score and the rest: the encoded Buffer
        if ('code' in reply) throw new CallStatus(reply.code, reply.details);
        return reply.bytes;
      }
      const reply = await replicate(path, request, caller); // bytes back through IPC arrive as a Uint8Array
      if ('code' in reply) throw new CallStatus(reply.code, reply.details);
      return Buffer.from(reply.bytes.buffer, reply.bytes.byteOffset, reply.bytes.byteLength);
    });
  };

  // Replicated writes apply in the order the primary sent them.
  let applying = Promise.resolve();
  let fleetReady = false;
  let stopping: Promise<number> | null = null;
  const applyFleet = () => {
    if (!api || stopping) return; // a drain has taken readiness away for good
    for (const name of SERVICE_NAMES)
      if (name !== 'liveness') api.health.set(name, fleetReady ? 'SERVING' : 'NOT_SERVING');
  };
  const stop = (why: string) =>
    (stopping ??= (async () => {
      log.info({ why }, 'serving process stopping: draining gRPC, then closing sockets');
      try {
        await api?.stop();
        await service?.stop();
        await prompts?.close();
        return 0;
      } catch (err) {
        log.error({ err: String(err) }, 'serving process: shutdown failed');
        return 1;
      }
    })());
  let endedBy: (why: string) => void = () => undefined;
  const ended = new Promise<string>((resolve) => (endedBy = resolve));
  for (const name of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(name, () => endedBy(name));
  process.on('message', (message: ToServingProcess) => {
    switch (message.t) {
      case 'fleet':
        fleetReady = message.ready;
        caughtUp = message.caughtUp;
        applyFleet();
        api?.health.set('liveness', message.alive ? 'SERVING' : 'NOT_SERVING');
        return;
      case 'metrics':
        void (api?.metrics.registry.metrics() ?? Promise.resolve('')).then(
          (text) => void send({ t: 'metrics', id: message.id, text }),
          () => void send({ t: 'metrics', id: message.id, text: '' }),
        );
        return;
      case 'apply': {
        const { id, path, bytes, caller } = message;
        applying = applying.then(async () => {
          const reply: ReplicatedReply = wire
            ? await wire.call(path, Buffer.from(bytes), NOT_CANCELLED, caller)
            : { code: status.UNAVAILABLE, details: 'this serving process is starting' };
          // The process that took the call answers its caller with this; elsewhere a refusal is only told.
          if ('code' in reply)
            log.info({ path, code: reply.code, details: reply.details }, 'a replicated write was refused here');
          await send({ t: 'applied', id, reply });
        });
        return;
      }
      case 'replicated':
        replicating.settle(message.id, message.reply);
        return;
      case 'ledger-reply':
        ledger.settle(message.id, message.answer);
        return;
      case 'stop':
        endedBy('asked by the primary');
        return;
    }
  });
  // From here the primary's messages have a listener; it holds them until it hears this.
  await send({ t: 'hello' });

  try {
    prompts = await loadConfiguredModels(config, log);
    service = await startService(config, log, { relay: setup.relay });
    api = await startApi(service, config, log, prompts, {
      serveMetrics: false,
      wire: 'bytes',
      wrapOperations: served,
      ledger,
      speculate,
    });
  } catch (err) {
    // The primary reports it (the start-up line naming the setting, or its replacement error): no line of our own.
    await service?.stop().catch(() => undefined);
    await prompts?.close().catch(() => undefined);
    await send({ t: 'failed', failure: describeStartFailure(err) });
    return 1;
  }
  applyFleet(); // not ready until the primary says the fleet is
  await send({ t: 'started', grpcPort: api.grpcPort });
  return stop(await ended);
}

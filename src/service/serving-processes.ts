import cluster, { type Worker } from 'node:cluster';
import { BindRelay } from '../events/index.js';
import { Metrics, startMetricsServer, type Config, type Logger } from '../ops/index.js';
import { mergeExpositions } from '../ops/metrics-merge.js';
import { GRPC_DRAIN_MS } from './api-front.js';
import {
  checkProcessesConfig,
  LOGGED_PATHS,
  SERVING_PROCESS_ENV,
  WORKER_LABEL,
  endpointField,
  type FromServingProcess,
  type ReplicatedReply,
  type ServingProcessSetup,
  type ToServingProcess,
} from './process-protocol.js';
import { PendingReplies } from './pending-replies.js';
import { LedgerHost } from './shared-ledger.js';
import { atSetting, rebuildStartFailure } from './startup-error.js';

/** Backoff between attempts to start a replacement serving process (doubling, capped), as for the index thread. */
const RESTART_FIRST_MS = 100;
const RESTART_MAX_MS = 5_000;
/** Failed starts in a row before liveness is given up (on every process): the orchestrator should restart the pod. */
const LIVENESS_AFTER_FAILED_STARTS = 5;
/** A process that does not answer a /metrics scrape within this long is left out of it. */
const SCRAPE_WAIT_MS = 2_000;
/** A process still running this long after `stop` (its drain is GRPC_DRAIN_MS) is killed. */
const STOP_WAIT_MS = GRPC_DRAIN_MS + 10_000;
/** The signals that end `serve` (cli/serve-command.ts): from one of them on, processes that exit are not replaced. */
const SHUTDOWN_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

interface Slot {
  slot: number;
  worker: Worker | null;
  /** Started and caught up with the endpoint log: takes replicated writes. */
  serving: boolean;
  restartTimer: NodeJS.Timeout | null;
}

/** A replicated write waiting for the processes it was sent to. */
interface Replication {
  waiting: Set<Worker>;
  replies: Map<Worker, ReplicatedReply>;
  done: (replies: Map<Worker, ReplicatedReply>) => void;
}

export interface ServingProcesses {
  grpcPort: number;
  metricsPort: number;
  /** Replacements started for processes that exited unasked. */
  readonly restarts: number;
  /** The pid serving each slot now (null while it is replaced). */
  pids(): (number | null)[];
  /**
   * Every process drains its gRPC calls and closes its sockets; then the relay and the metrics server close. Rejects,
   * once all that is done, when a process did not stop cleanly (killed after STOP_WAIT_MS, or a non-zero exit).
   */
  stop(): Promise<void>;
}

/**
 * The primary of api.processes: forks the serving processes (serving-worker.ts, the same command line) that share the
 * gRPC port through node:cluster, and keeps them: one that exits unasked is replaced (its calls in flight failed
 * UNAVAILABLE with its connections), every process reports the fleet's health, /metrics and /healthz are served here,
 * the bind-mode socket is bound here and relayed, and replicated writes (REPLICATED_PATHS) are ordered here.
 */
class ProcessFleet implements ServingProcesses {
  grpcPort = 0;
  metricsPort = 0;
  restarts = 0;
  private readonly slots: Slot[] = [];
  private readonly metrics = new Metrics('kv_indexer_', { api: false });
  private relay: BindRelay | null = null;
  private relayAddress: string | null = null;
  private metricsServer: { close(): Promise<void> } | null = null;
  /** Everything started (relay bound, metrics served): readiness may be given. */
  private started = false;
  private stopping = false;
  private failedStarts = 0;
  private restartDelayMs = RESTART_FIRST_MS;
  private nextId = 1;
  private readonly replications = new Map<number, Replication>();
  private readonly scrapes = new PendingReplies<string | null>();
  /** Select's in-flight ledger, one for every serving process (shared-ledger.ts). */
  private readonly ledger: LedgerHost;
  /** The latest endpoint change per endpoint (or per request, when it names none), in the order they were made. */
  private readonly endpointLog = new Map<string, { path: string; bytes: Uint8Array; caller: string }>();
  /** Messages for a process whose handler is not attached yet (it says `hello`): sent then, in order. */
  private readonly held = new Map<Worker, ToServingProcess[]>();
  /** Processes that did not stop cleanly when asked. */
  private readonly unclean: string[] = [];
  private lastFleet = '';

  constructor(
    private readonly config: Config,
    private readonly log: Logger,
  ) {
    for (let slot = 0; slot < config.api.processes; slot++)
      this.slots.push({ slot, worker: null, serving: false, restartTimer: null });
    this.ledger = new LedgerHost(config.select.maxReservations);
    this.metrics.counter(
      'kv_indexer_serving_process_restarts_total',
      'Replacements started for serving processes that exited unasked (each starts with an empty index)',
      null,
      () => ({ '': this.restarts }),
    );
    this.metrics.gauge('kv_indexer_serving_processes', 'Serving processes ready (of api.processes)', null, () => ({
      '': this.slots.filter((s) => s.serving).length,
    }));
  }

  async start(): Promise<void> {
    const { zmq } = this.config;
    // A signal during start-up (Ctrl-C reaches every process of the group): the processes that end are not replaced.
    for (const name of SHUTDOWN_SIGNALS) process.once(name, () => (this.stopping = true));
    if (zmq.mode === 'bind' && zmq.addresses.length > 0) {
      this.relay = new BindRelay(zmq.addresses, zmq.receiveHighWaterMark);
      this.relayAddress = await this.relay.open();
    }
    cluster.setupPrimary({ serialization: 'advanced' });
    cluster.on('exit', (worker, code, signal) => this.exited(worker, code, signal));
    try {
      await Promise.all(this.slots.map((slot) => this.fork(slot)));
      // Publishers connect once every process listens to the relay: nothing is lost to a process still starting.
      // As the single process names it: the address that failed (ZmqSubscriber attaches it).
      const failed = (err: unknown) => String((err as { address?: string }).address ?? zmq.addresses.join(','));
      if (this.relay) await atSetting('zmq.addresses', failed, () => (this.relay as BindRelay).listen());
      this.metricsServer = await atSetting(
        'metrics.port',
        `${this.config.metrics.host}:${this.config.metrics.port}`,
        async () => {
          const server = await startMetricsServer(this.metrics, {
            host: this.config.metrics.host,
            port: this.config.metrics.port,
            ready: () => this.ready(),
            render: (own) => this.metricsText(own),
          });
          this.metricsPort = server.port;
          return server;
        },
      );
    } catch (err) {
      await this.stop().catch(() => undefined); // the start-up failure is what is reported
      throw err;
    }
    this.started = true;
    this.tellFleet(true);
  }

  private ready(): boolean {
    return this.started && !this.stopping && this.slots.every((s) => s.serving);
  }

  /** Every process learns the fleet's health (a probe may reach any of them) and whether it takes replicated writes. */
  private tellFleet(force = false): void {
    const ready = this.ready();
    const alive = this.failedStarts < LIVENESS_AFTER_FAILED_STARTS;
    const key = `${ready}/${alive}/${this.slots.map((s) => s.serving).join()}`;
    if (key === this.lastFleet && !force) return;
    this.lastFleet = key;
    for (const s of this.slots) if (s.worker) this.send(s.worker, { t: 'fleet', ready, alive, caughtUp: s.serving });
  }

  private send(worker: Worker, message: ToServingProcess): void {
    const held = this.held.get(worker);
    if (held) held.push(message);
    else if (worker.isConnected()) worker.send(message);
  }

  /** Starts the process of `slot`; resolves once it serves (rejects with its start-up failure, or its exit). */
  private fork(slot: Slot): Promise<void> {
    const setup: ServingProcessSetup = { slot: slot.slot, relay: this.relayAddress };
    const worker = cluster.fork({ [SERVING_PROCESS_ENV]: JSON.stringify(setup) });
    slot.worker = worker;
    this.held.set(worker, []);
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const settle = (err: Error | null) => {
        if (settled) return;
        settled = true;
        if (err) reject(err);
        else resolve();
      };
      worker.on('message', (m: FromServingProcess) => {
        if (m.t === 'hello') {
          const held = this.held.get(worker) ?? [];
          this.held.delete(worker);
          for (const message of held) this.send(worker, message);
        } else if (m.t === 'started') {
          this.grpcPort ||= m.grpcPort;
          this.log.info({ worker: slot.slot, pid: worker.process.pid }, 'serving process started');
          void this.catchUp(worker).then(() => {
            if (slot.worker === worker && !this.stopping) {
              slot.serving = true; // no await since the last log entry was applied: none is missed
              this.tellFleet(true);
            }
            settle(null); // (an exit during the catch-up has settled it already)
          });
        } else if (m.t === 'failed') settle(rebuildStartFailure(m.failure));
        else this.received(worker, m);
      });
      worker.once('exit', (code, signal) => {
        this.held.delete(worker);
        // Stopping already (a Ctrl-C reaches a process still loading, before its handlers): not a failed start.
        settle(
          this.stopping
            ? null
            : new Error(`serving process ${slot.slot} exited with ${signal ?? `code ${code}`} before it served`),
        );
      });
    });
  }

  /**
   * A new process replays the endpoint changes made so far, in order, then counts as serving. Changes made meanwhile
   * are (re)inserted at the end of the log, and this loop reaches them too (a Map iterates what is added while it does).
   */
  private async catchUp(worker: Worker): Promise<void> {
    for (const { path, bytes, caller } of this.endpointLog.values()) await this.applyOn([worker], path, bytes, caller);
  }

  /** Applies a write on `workers`; resolves with each one's outcome once each applied it or exited. */
  private applyOn(
    workers: Worker[],
    path: string,
    bytes: Uint8Array,
    caller: string,
  ): Promise<Map<Worker, ReplicatedReply>> {
    return new Promise((resolve) => {
      const id = this.nextId++;
      const waiting = new Set(workers.filter((w) => w.isConnected()));
      const replies = new Map<Worker, ReplicatedReply>();
      if (waiting.size === 0) return resolve(replies);
      this.replications.set(id, { waiting, replies, done: resolve });
      for (const w of waiting) this.send(w, { t: 'apply', id, path, bytes, caller });
    });
  }

  private received(worker: Worker, m: FromServingProcess): void {
    switch (m.t) {
      case 'metrics':
        this.scrapes.settle(m.id, m.text);
        return;
      case 'replicate': {
        // One order for every replica: the primary's. Endpoint changes are kept, the latest per endpoint, for
        // replacements; a process still catching up gets them from there, in order.
        if (LOGGED_PATHS.has(m.path)) {
          const key = endpointField(m.bytes) ?? `${m.path} ${Buffer.from(m.bytes).toString('base64')}`;
          this.endpointLog.delete(key);
          this.endpointLog.set(key, { path: m.path, bytes: m.bytes, caller: m.caller });
        }
        const targets = this.slots.flatMap((s) => (s.worker && (s.serving || s.worker === worker) ? [s.worker] : []));
        void this.applyOn(targets, m.path, m.bytes, m.caller).then((replies) =>
          this.send(worker, {
            t: 'replicated',
            id: m.id,
            reply: replies.get(worker) ?? { code: 14, details: 'the serving process went away' },
          }),
        );
        return;
      }
      case 'applied':
        this.settle(m.id, worker, m.reply);
        return;
      case 'ledger':
        void this.ledger.answer(m.call).then((answer) => this.send(worker, { t: 'ledger-reply', id: m.id, answer }));
        return;
    }
  }

  /** `worker` is done with replication `id`: applied it (`reply`), or exited. */
  private settle(id: number, worker: Worker, reply?: ReplicatedReply): void {
    const r = this.replications.get(id);
    if (!r) return;
    r.waiting.delete(worker);
    if (reply) r.replies.set(worker, reply);
    if (r.waiting.size > 0) return;
    this.replications.delete(id);
    r.done(r.replies);
  }

  private exited(worker: Worker, code: number | null, signal: string | null): void {
    for (const id of [...this.replications.keys()]) this.settle(id, worker);
    const slot = this.slots.find((s) => s.worker === worker);
    if (!slot) return;
    slot.worker = null;
    slot.serving = false;
    if (this.stopping) {
      // Clean: exit code 0, or a shutdown signal of the operator's (not the SIGKILL after STOP_WAIT_MS).
      const byShutdown = SHUTDOWN_SIGNALS.some((name) => name === signal);
      if (code !== 0 && !byShutdown)
        this.unclean.push(`serving process ${slot.slot} exited with ${signal ?? `code ${code}`}`);
      return;
    }
    this.tellFleet();
    this.log.error(
      { worker: slot.slot, pid: worker.process.pid, code, signal, restartInMs: this.restartDelayMs },
      'serving process exited: its connections closed (calls in flight failed UNAVAILABLE), not ready until a ' +
        'replacement serves (its index starts empty)',
    );
    this.scheduleRestart(slot);
  }

  private scheduleRestart(slot: Slot): void {
    const delay = this.restartDelayMs;
    this.restartDelayMs = Math.min(RESTART_MAX_MS, delay * 2);
    slot.restartTimer = setTimeout(() => {
      slot.restartTimer = null;
      if (this.stopping) return;
      this.restarts++;
      this.fork(slot).then(
        () => {
          if (this.stopping) return;
          this.failedStarts = 0;
          this.restartDelayMs = RESTART_FIRST_MS;
          this.tellFleet();
          this.log.info({ worker: slot.slot, restarts: this.restarts }, 'serving process replaced: serving again');
        },
        (err: unknown) => {
          if (this.stopping) return;
          this.failedStarts++;
          this.log.error(
            { worker: slot.slot, err: String(err), failedStarts: this.failedStarts },
            'serving process failed to start',
          );
          if (this.failedStarts === LIVENESS_AFTER_FAILED_STARTS)
            this.log.error(
              { failedStarts: this.failedStarts },
              'serving processes cannot be replaced: liveness NOT_SERVING, so that the orchestrator restarts the pod',
            );
          this.tellFleet();
          // The failed process exits (or has exited); its exit schedules the next attempt.
        },
      );
    }, delay);
  }

  /** This process's series, then every serving process's, each labelled with its slot. */
  private async metricsText(own: string): Promise<string> {
    const texts = await Promise.all(
      this.slots.map((s) => {
        const worker = s.worker;
        if (!worker?.isConnected() || this.held.has(worker)) return Promise.resolve(null);
        return this.scrapes.ask(
          (id) => this.send(worker, { t: 'metrics', id }),
          SCRAPE_WAIT_MS,
          () => null,
        );
      }),
    );
    return mergeExpositions([
      { text: own },
      ...texts.flatMap((text, slot) =>
        text === null ? [] : [{ text, label: { name: WORKER_LABEL, value: String(slot) } }],
      ),
    ]);
  }

  pids(): (number | null)[] {
    return this.slots.map((s) => s.worker?.process.pid ?? null);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const exits = this.slots.flatMap((s) => {
      if (s.restartTimer) clearTimeout(s.restartTimer);
      const worker = s.worker;
      if (!worker || worker.isDead()) return [];
      return [
        new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            this.log.warn({ worker: s.slot, waitedMs: STOP_WAIT_MS }, 'serving process did not stop: killed');
            worker.process.kill('SIGKILL');
          }, STOP_WAIT_MS);
          worker.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          this.send(worker, { t: 'stop' }); // held until its handler is attached, if it is still loading
        }),
      ];
    });
    await Promise.all(exits);
    await this.relay?.close();
    await this.metricsServer?.close();
    if (this.unclean.length > 0) throw new Error(this.unclean.join('; '));
  }
}

export async function startServingProcesses(config: Config, log: Logger): Promise<ServingProcesses> {
  checkProcessesConfig(config);
  const fleet = new ProcessFleet(config, log);
  await fleet.start();
  log.info(
    { grpcPort: fleet.grpcPort, metricsPort: fleet.metricsPort, processes: config.api.processes, pids: fleet.pids() },
    'API serving',
  );
  return fleet;
}

import { createLogger, loadConfigFrom, parseConfigArgs, type Config, type Logger } from '../ops/index.js';
import { loadConfiguredModels } from '../service/prompt-frontend.js';
import { redactUrl, startService, type RunningService } from '../service/start-service.js';
import { startApi } from '../service/start-api.js';
import { startThreaded } from '../service/start-threaded.js';
import { startServingProcesses } from '../service/serving-processes.js';
import { runServingProcess, servingProcessSetup } from '../service/serving-worker.js';

export const SERVE_USAGE = `usage: kv-indexer serve [--config FILE] [--set section.key=VALUE]... [--print-config]

Runs the indexer: ZMQ subscriber → index, gRPC API (api.grpcAddress, default 0.0.0.0:50051), metrics and /healthz
(metrics.host:metrics.port, default 0.0.0.0:9090), until SIGINT, SIGTERM or SIGHUP (all three shut down gracefully;
SIGHUP does not reload the configuration: restart to apply a change).

  --config FILE          YAML or JSON configuration file
  --set section.key=V    override one setting (repeatable), e.g. --set keys.blockSize=32
  --print-config         print the effective configuration and exit

precedence: embedded defaults < --config file < KV_INDEXER_* environment < --set flags (docs/configuration.md).
A start-up failure logs one JSON line naming the setting (e.g. "metrics.port 0.0.0.0:9090: address in use") and
exits with code 1.`;

/** Signals that end `serve` gracefully. SIGHUP is among them: a terminal hang-up or an operator's reload attempt. */
export const SHUTDOWN_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * `serve [--config F] [--set section.key=value]… [--print-config]`: the write path (ZMQ → index) and the API (gRPC,
 * metrics), until SIGINT/SIGTERM/SIGHUP. Shutdown turns health NOT_SERVING, drains in-flight gRPC calls, then closes
 * sockets. A failed start closes what it opened and throws (a StartupError naming the setting); main.ts logs it and
 * exits.
 */
export async function serveCommand(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(SERVE_USAGE);
    return 0;
  }
  const args = parseConfigArgs(argv);
  if (args.rest.length > 0)
    throw new Error(`serve: unexpected arguments ${args.rest.join(' ')} (kv-indexer serve --help)`);
  const config = loadConfigFrom({ file: args.file, env, flags: args.flags });
  if (args.print) {
    // A password given in the URL is shown as *** (secrets belong in files: index.redisPasswordFile).
    console.log(
      JSON.stringify({ ...config, index: { ...config.index, redisUrl: redactUrl(config.index.redisUrl) } }, null, 2),
    );
    return 0;
  }
  const log = createLogger(config.log.level);
  // A serving process of api.processes runs this same command line, forked by the primary (serving-processes.ts).
  const setup = servingProcessSetup(env);
  if (setup) process.exit(await runServingProcess(config, log, setup));
  // Signals are caught from the start: one arriving while the service starts stops it once it has started.
  const signal = new Promise<string>((resolve) => {
    for (const name of SHUTDOWN_SIGNALS) process.once(name, () => resolve(name));
  });
  const serving =
    config.api.processes > 1
      ? await startProcesses(config, log)
      : config.api.indexThread
        ? await startInThread(config, log)
        : await startHere(config, log);
  const received = await signal;
  log.info(
    {
      signal: received,
      ...(received === 'SIGHUP' ? { note: 'SIGHUP does not reload the configuration: restart to apply changes' } : {}),
    },
    'shutting down: health NOT_SERVING, draining gRPC calls, then closing sockets',
  );
  try {
    await serving.drain();
    await serving.close();
    log.info('event sockets closed, index closed');
  } catch (err) {
    // Not a start-up failure (main.ts reports those): say what failed and exit non-zero.
    log.error({ err: String(err) }, 'shutdown failed');
    return 1;
  }
  log.info('stopped');
  return 0;
}

/** A started service, stopped in two steps: the API drained, then the sockets, index and tokenizers closed. */
interface Serving {
  drain(): Promise<void>;
  close(): Promise<void>;
}

/** Everything on this thread. A failed start closes what started (tokenizer threads, sockets) and throws. */
async function startHere(config: Config, log: Logger): Promise<Serving> {
  const prompts = await loadConfiguredModels(config, log);
  let service: RunningService | null = null;
  try {
    service = await startService(config, log);
    const api = await startApi(service, config, log, prompts);
    const started = service;
    return {
      drain: () => api.stop(),
      async close() {
        await started.stop();
        await prompts?.close();
      },
    };
  } catch (err) {
    await service?.stop().catch(() => undefined);
    await prompts?.close().catch(() => undefined);
    throw err;
  }
}

/** api.indexThread: gRPC here, the write path, models and the API's work in the index thread. */
async function startInThread(config: Config, log: Logger): Promise<Serving> {
  const running = await startThreaded(config, log);
  return {
    drain: () => running.front.stop(),
    close: () => running.host.stop(), // the thread closes its sockets, index and tokenizers, then ends
  };
}

/** api.processes > 1: this process is the primary; the serving processes drain and close on `stop`. */
async function startProcesses(config: Config, log: Logger): Promise<Serving> {
  const fleet = await startServingProcesses(config, log);
  return { drain: () => fleet.stop(), close: async () => undefined };
}

import { createLogger, loadConfigFrom, parseConfigArgs } from '../ops/index.js';
import { PromptServiceFrontend } from './prompt-frontend.js';
import { redactUrl, startService } from './serve.js';
import { startApi } from './start-api.js';

/**
 * `serve [--config F] [--set section.key=value]… [--print-config]`: the write path (ZMQ → index) and the API (gRPC,
 * metrics), until SIGINT/SIGTERM. Shutdown turns health NOT_SERVING, drains in-flight gRPC calls, then closes sockets.
 */
export async function serveCommand(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  const args = parseConfigArgs(argv);
  if (args.rest.length > 0) throw new Error(`serve: unexpected arguments ${args.rest.join(' ')}`);
  const config = loadConfigFrom({ file: args.file, env, flags: args.flags });
  if (args.print) {
    // A password given in the URL is shown as *** (secrets belong in files: index.redisPasswordFile).
    console.log(JSON.stringify({ ...config, index: { ...config.index, redisUrl: redactUrl(config.index.redisUrl) } }, null, 2));
    return 0;
  }
  const log = createLogger(config.log.level);
  const prompts = config.models.registry ? await PromptServiceFrontend.load(config.models.registry, config.keys, config.images.fetch) : null;
  if (prompts) log.info({ registry: config.models.registry, models: prompts.models() }, 'models loaded');
  else log.info('no model registry configured: Score takes token ids or block keys (set models.registry for chat)');
  const service = await startService(config, log);
  const api = await startApi(service, config, log, prompts).catch(async (err: unknown) => {
    await service.stop();
    await prompts?.close();
    throw err;
  });
  const signal = await new Promise<string>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  log.info({ signal }, 'shutting down: health NOT_SERVING, draining gRPC calls, then closing sockets');
  await api.stop();
  await service.stop();
  log.info('event sockets closed, index closed');
  await prompts?.close();
  log.info('stopped');
  return 0;
}

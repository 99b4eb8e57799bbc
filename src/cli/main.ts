#!/usr/bin/env node
import { ConfigError } from '../ops/index.js';
import { failStartup } from '../service/startup-error.js';

// Each command's module is imported when it runs: `health` or `--help` does not load the tokenizer, ZMQ or Redis.

const USAGE = `usage: kv-indexer <command> [options]

commands:
  serve   run the indexer: ZMQ subscriber → index, gRPC API on :50051, metrics on :9090 (kv-indexer serve --help)
  keys    print tokens, placeholder ranges, identifiers and block keys for a request JSON (kv-indexer keys --help)
  record  capture live KV-event frames from endpoints into a recording file (kv-indexer record --help)
  replay  publish a recording on a PUB socket, or feed it into an index in process (kv-indexer replay --help)
  score   ask a running indexer to Score a request JSON and print the candidates ranked (kv-indexer score --help)
  simulate  route simulated fleet traffic through an in-process indexer and compare policies (kv-indexer simulate --help)
  health     ask a running indexer's grpc.health.v1 (exit 0 when SERVING)
  info       GetInfo (and GetStats with --stats) of a running indexer, as JSON
  endpoints  ListEndpoints of a running indexer, as JSON
  lookup     Lookup block keys in a running indexer, as JSON
  help    show this text (also --help, -h)

The client commands (score, health, info, endpoints, lookup) call --address, else KV_INDEXER_GRPC_ADDRESS, else
localhost:50051. With no command, this text is printed; options alone (kv-indexer --config F) run serve.

serve options:
  --config FILE          YAML or JSON configuration file
  --set section.key=V    override one setting (repeatable), e.g. --set keys.blockSize=32
  --print-config         print the effective configuration and exit

precedence: embedded defaults < --config file < KV_INDEXER_* environment < --set flags (docs/configuration.md).`;

async function main(argv: string[]): Promise<number> {
  if (argv.length === 0) {
    // A bare command starts nothing (it used to serve on 0.0.0.0): say what there is.
    console.error(USAGE);
    return 2;
  }
  if (argv[0] === '--help' || argv[0] === '-h') {
    console.log(USAGE);
    return 0;
  }
  const command = argv[0].startsWith('-') ? 'serve' : argv[0];
  const rest = command === argv[0] ? argv.slice(1) : argv;
  switch (command) {
    case 'serve':
      try {
        return await (await import('./serve-command.js')).serveCommand(rest, process.env);
      } catch (err) {
        // One JSON line naming the setting, then exit whatever is still open (worker threads, sockets).
        return failStartup(err);
      }
    case 'keys':
      return (await import('./keys-command.js')).keysCommand(rest);
    case 'record':
      return (await import('./record-command.js')).recordCommand(rest);
    case 'replay':
      return (await import('./replay-command.js')).replayCommand(rest);
    case 'score':
      return (await import('./score-command.js')).scoreCommand(rest, process.env);
    case 'health':
    case 'info':
    case 'endpoints':
    case 'lookup':
      return (await import('./client-commands.js')).clientCommand(command, rest, process.env);
    case 'simulate':
      return (await import('./simulate-command.js')).simulateCommand(rest);
    case 'help':
      console.log(USAGE);
      return 0;
    default:
      console.error(`unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(err instanceof ConfigError ? err.message : err instanceof Error ? `error: ${err.message}` : err);
    process.exitCode = 1;
  },
);

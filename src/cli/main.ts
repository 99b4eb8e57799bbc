#!/usr/bin/env node
import { ConfigError } from '../ops/index.js';
import { keysCommand } from './keys-command.js';
import { recordCommand } from './record-command.js';
import { replayCommand } from './replay-command.js';
import { scoreCommand } from './score-command.js';
import { serveCommand } from './serve-command.js';
import { simulateCommand } from './simulate-command.js';

const USAGE = `usage: kv-indexer <command> [options]

commands:
  serve   run the indexer (default): ZMQ subscriber → index, gRPC API on :50051, metrics on :9090
  keys    print tokens, placeholder ranges, identifiers and block keys for a request JSON (kv-indexer keys --help)
  record  capture live KV-event frames from endpoints into a recording file (kv-indexer record --help)
  replay  publish a recording on a PUB socket, or feed it into an index in process (kv-indexer replay --help)
  score   ask a running indexer to Score a request JSON and print the candidates ranked (kv-indexer score --help)
  simulate  route simulated fleet traffic through an in-process indexer and compare policies (kv-indexer simulate --help)
  help    show this text

serve options:
  --config FILE          YAML or JSON configuration file
  --set section.key=V    override one setting (repeatable), e.g. --set keys.blockSize=32
  --print-config         print the effective configuration and exit

precedence: embedded defaults < --config file < KV_INDEXER_* environment < --set flags (docs/configuration.md).`;

async function main(argv: string[]): Promise<number> {
  const command = argv[0] && !argv[0].startsWith('-') ? argv[0] : 'serve';
  const rest = command === argv[0] ? argv.slice(1) : argv;
  switch (command) {
    case 'serve':
      return serveCommand(rest, process.env);
    case 'keys':
      return keysCommand(rest);
    case 'record':
      return recordCommand(rest);
    case 'replay':
      return replayCommand(rest);
    case 'score':
      return scoreCommand(rest);
    case 'simulate':
      return simulateCommand(rest);
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
    console.error(err instanceof ConfigError ? err.message : err);
    process.exitCode = 1;
  },
);

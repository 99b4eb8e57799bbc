#!/usr/bin/env node
import { ConfigError } from '../ops/index.js';
import { serve } from './serve.js';

const USAGE = `usage: kv-indexer <command>

commands:
  serve   run the indexer: subscribe to vLLM KV events over ZeroMQ and keep the index (default)
  help    show this text

configuration comes from embedded defaults and KV_INDEXER_* environment variables (see docs/configuration.md).`;

async function main(argv: string[]): Promise<number> {
  const command = argv[0] ?? 'serve';
  switch (command) {
    case 'serve':
      await serve(process.env);
      return 0;
    case 'help':
    case '--help':
    case '-h':
      console.log(USAGE);
      return 0;
    default:
      console.error(`unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== 0) process.exitCode = code;
  },
  (err: unknown) => {
    console.error(err instanceof ConfigError ? err.message : err);
    process.exitCode = 1;
  },
);

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadConfig } from '../ops/index.js';
import { keysReport, PromptError } from '../prompt/index.js';

const USAGE = `usage: kv-indexer keys --models <registry.yaml|json> [--block-size N] [--hash-seed S] [--no-text] <request.json | ->

Prints, for one request (OpenAI chat "messages", completion "prompt", or "prompt_token_ids" + "mm_items"), the
rendered prompt, token ids, image placeholder ranges and identifiers, per-block extra features and request keys.
The registry file may also come from KV_INDEXER_MODELS; block size and seed default to KV_INDEXER_BLOCK_SIZE /
KV_INDEXER_HASH_SEED (see docs/configuration.md and docs/models.md).`;

/** `kv-indexer keys`: exit 0 with JSON on stdout; 1 for a rejected request or model setup; 2 for bad usage. */
export async function keysCommand(argv: string[]): Promise<number> {
  let values: { models?: string; 'block-size'?: string; 'hash-seed'?: string; 'no-text'?: boolean; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        models: { type: 'string' },
        'block-size': { type: 'string' },
        'hash-seed': { type: 'string' },
        'no-text': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    console.error(`${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const modelsPath = values.models ?? process.env.KV_INDEXER_MODELS;
  if (!modelsPath || positionals.length !== 1) {
    console.error(USAGE);
    return 2;
  }
  const keysConfig = loadConfig(process.env).keys;
  const blockSize = values['block-size'] !== undefined ? Number(values['block-size']) : keysConfig.blockSize;
  if (!Number.isInteger(blockSize) || blockSize < 1) {
    console.error(`--block-size must be a positive integer\n\n${USAGE}`);
    return 2;
  }
  const hashSeed = values['hash-seed'] ?? keysConfig.hashSeed;

  try {
    const source = positionals[0] === '-' ? readFileSync(0, 'utf8') : readFileSync(positionals[0], 'utf8');
    const out = await keysReport(source, { modelsPath, blockSize, hashSeed, noText: values['no-text'] });
    // Token ids on one line; everything else indented.
    const json = JSON.stringify(out, (k, v: unknown) => (k === 'tokenIds' ? '\u0000ids' : v), 2).replace(
      '"\\u0000ids"',
      JSON.stringify(out.tokenIds),
    );
    process.stdout.write(`${json}\n`);
    return 0;
  } catch (err) {
    if (err instanceof PromptError) {
      console.error(`error (${err.code}): ${err.message}`);
      return 1;
    }
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      console.error(`error: ${(err as Error).message}`);
      return 1;
    }
    throw err;
  }
}

import { TOKENIZER_PATCH_SOURCE } from './tokenizer-patch.js';

/**
 * The tokenizer worker's code, evaluated by `new Worker(source, { eval: true })`. It is plain CommonJS JavaScript in a
 * string so that the same pool works from compiled `dist/`, from `tsx` and under vitest without any loader: the
 * worker only needs @huggingface/tokenizers, whose resolved path the pool passes in `workerData`.
 *
 * Each tokenizer gets the faster equivalents of tokenizer-patch.ts when it is loaded.
 *
 * Protocol (one request at a time per worker):
 *   { op: 'describe', id, dir, lookup: string[] } → { id, ok, added: AddedTokenInfo[], ids: (number|null)[], prefixIds,
 *     prefixOnly, patchedSteps }
 *   { op: 'encode', id, dir, texts: string[], addSpecialTokens } → { id, started: true } once the tokenizer is loaded,
 *     then { id, ok, ids: Uint32Array[] } (buffers transferred)
 *   { op: 'crash' } → the worker exits (tests of the pool's recovery)
 * A failure answers { id, ok: false, message }.
 */
export const TOKENIZER_WORKER_SOURCE = String.raw`
const { parentPort, workerData } = require('node:worker_threads');
const installPatch = ${TOKENIZER_PATCH_SOURCE};
const { readFileSync } = require('node:fs');
const { join } = require('node:path');
const { Tokenizer } = require(workerData.tokenizersPath);
const loaded = new Map();

function load(dir) {
  let entry = loaded.get(dir);
  if (!entry) {
    const json = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8'));
    let config = {};
    try { config = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')); } catch (e) { if (e.code !== 'ENOENT') throw e; }
    const added = (json.added_tokens || []).map((t) => ({
      id: t.id, content: t.content, special: !!t.special, lstrip: !!t.lstrip, rstrip: !!t.rstrip,
      singleWord: !!t.single_word, normalized: !!t.normalized,
    }));
    const tokenizer = new Tokenizer(json, config);
    entry = { tokenizer, added, patchedSteps: installPatch(tokenizer) };
    loaded.set(dir, entry);
  }
  return entry;
}

parentPort.on('message', (msg) => {
  if (msg.op === 'crash') process.exit(3);
  try {
    const entry = load(msg.dir);
    if (msg.op === 'describe') {
      const ids = msg.lookup.map((s) => {
        const v = entry.tokenizer.token_to_id(s);
        return v === undefined ? null : v;
      });
      const prefixIds = entry.tokenizer.encode('', { add_special_tokens: true }).ids;
      const probe = entry.tokenizer.encode('a', { add_special_tokens: true }).ids;
      const plain = entry.tokenizer.encode('a', { add_special_tokens: false }).ids;
      const prefixOnly = probe.length === prefixIds.length + plain.length &&
        prefixIds.every((v, i) => probe[i] === v) && plain.every((v, i) => probe[prefixIds.length + i] === v);
      parentPort.postMessage({ id: msg.id, ok: true, added: entry.added, ids, prefixIds, prefixOnly, patchedSteps: entry.patchedSteps });
    } else if (msg.op === 'encode') {
      // The tokenizer is loaded: from here the pool counts the request's tokenization budget.
      parentPort.postMessage({ id: msg.id, started: true });
      const out = msg.texts.map((t) => Uint32Array.from(entry.tokenizer.encode(t, { add_special_tokens: msg.addSpecialTokens }).ids));
      parentPort.postMessage({ id: msg.id, ok: true, ids: out }, out.map((a) => a.buffer));
    } else {
      throw new Error('unknown op ' + msg.op);
    }
  } catch (err) {
    parentPort.postMessage({ id: msg.id, ok: false, message: String(err && err.message || err) });
  }
});
`;

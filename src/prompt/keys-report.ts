import { formatKey, type BlockExtra } from '../keys/index.js';
import { PromptError } from './errors.js';
import { asRecord, parsePyJson } from './py-json.js';
import { loadRegistryFile } from './registry-file.js';
import { PromptService, type PreparedPrompt } from './prompt-service.js';

/** What `kv-indexer keys` prints for one request: its rendering, tokens, image items, extras and block keys. */
export interface KeysReport extends Pick<
  PreparedPrompt,
  'model' | 'lora' | 'keyModel' | 'kind' | 'items' | 'cacheSalt'
> {
  text?: string | null;
  tokenCount: number;
  tokenIds: number[];
  blockSize: number;
  hashSeed: string;
  rootKey: string;
  /** Per block: its index, request key (decimal) and extra features (null when none). */
  blocks: { index: number; key: string; extra: BlockExtra | null }[];
}

export interface KeysReportOptions {
  /** Model registry file (YAML or JSON, docs/models.md). */
  modelsPath: string;
  blockSize: number;
  hashSeed: string;
  /** Leave the rendered prompt text out. */
  noText?: boolean;
}

/**
 * Computes the keys of one request given as JSON text (chat, completion or token ids), loading only the model it names
 * when the registry knows it: a one-shot run should not parse every tokenizer; otherwise every model is loaded so the
 * error lists each known name. Throws PromptError for a rejected request or model setup.
 */
export async function keysReport(source: string, o: KeysReportOptions): Promise<KeysReport> {
  let request: unknown;
  try {
    // Parsed as vLLM's Python parses it: key order and number kinds reach the chat template unchanged.
    request = parsePyJson(source);
  } catch (err) {
    throw new PromptError('invalid_argument', `request is not valid JSON: ${(err as Error).message}`);
  }
  const { config, baseDir } = loadRegistryFile(o.modelsPath);
  const wanted = asRecord(request)?.model;
  const entries = Array.isArray(config?.models) ? config.models : [];
  const match = entries.filter(
    (m) => m && (m.name === wanted || m.aliases?.includes(String(wanted)) || m.loras?.includes(String(wanted))),
  );
  const registry = match.length > 0 ? { ...config, models: match } : config;
  const service = await PromptService.create({
    registry: { workers: 1, ...registry },
    keys: { blockSize: o.blockSize, hashSeed: o.hashSeed },
    baseDir,
  });
  try {
    const r = await service.keys(request);
    return {
      model: r.model,
      lora: r.lora,
      keyModel: r.keyModel,
      kind: r.kind,
      ...(o.noText ? {} : { text: r.text }),
      tokenCount: r.tokenIds.length,
      tokenIds: Array.from(r.tokenIds),
      items: r.items,
      cacheSalt: r.cacheSalt,
      blockSize: r.blockSize,
      hashSeed: o.hashSeed,
      rootKey: formatKey(service.hasher.rootKey(r.keyModel)),
      blocks: Array.from(r.blockKeys, (key, i) => ({ index: i, key: formatKey(key), extra: r.extras?.[i] ?? null })),
    };
  } finally {
    await service.close();
  }
}

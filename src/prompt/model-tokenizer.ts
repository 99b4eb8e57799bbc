import { PromptError } from './errors.js';
import type { TokenCache } from './token-cache.js';
import type { AddedTokenInfo, TokenizeSignal, TokenizerDescription, TokenizerPool } from './tokenizer-pool.js';

/** Cache entries produced by one request, committed only if the request succeeds. */
export type PendingCacheWrites = [string, Uint32Array][];

/** Below this many uncached characters, one worker does the whole text (messaging costs more than it saves). */
const PARALLEL_MIN_CHARS = 8192;
/**
 * With a token limit, uncached chunks are tokenized in waves of about this many characters (~70k tokens of English),
 * counting after each: a prompt far over the limit stops after about the limit's worth of work, not all of it.
 */
const WAVE_CHARS = 256 * 1024;

/**
 * Special tokens before which a text may be cut without changing its tokenization: not lstrip (it would eat the
 * previous piece's whitespace), not single_word or normalized (matched in context), and not overlapping any other
 * added token (inside it, or straddling its end), so the tokenizer's own added-token split would cut there too.
 */
export function safeCutTokens(added: readonly AddedTokenInfo[]): string[] {
  const candidates = new Set(
    added
      .filter((t) => t.special && !t.lstrip && !t.singleWord && !t.normalized && t.content.length > 0)
      .map((t) => t.content),
  );
  const byPrefix = new Map<string, string[]>();
  for (const c of candidates) {
    for (let l = 1; l < c.length; l++) {
      const p = c.slice(0, l);
      const list = byPrefix.get(p);
      if (list) list.push(c);
      else byPrefix.set(p, [c]);
    }
  }
  const unsafe = new Set<string>();
  for (const { content: b } of added) {
    for (let k = 1; k < b.length; k++) {
      for (const c of byPrefix.get(b.slice(k)) ?? []) unsafe.add(c); // b's tail starts c
      for (let e = k + 1; e <= b.length; e++) if (candidates.has(b.slice(k, e))) unsafe.add(b.slice(k, e)); // c inside b
    }
  }
  return [...candidates].filter((c) => !unsafe.has(c)).sort((a, b) => b.length - a.length);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * One model's tokenizer, seen from the main thread. Texts are cut into chunks at special tokens and each chunk is
 * tokenized (in the pool) and cached on its own. This is exact: the tokenizer itself first splits the text on added
 * tokens and encodes the pieces independently, so only special tokens that cannot affect their neighbours (not
 * lstrip, not single_word, not normalized) are used as cut points. A long shared prefix (system prompt, earlier
 * turns) is then a run of cache hits.
 */
export class ModelTokenizer {
  private readonly boundary: RegExp | null;
  private readonly keyPrefix: string;
  private readonly lookups = new Map<string, number>();

  constructor(
    readonly dir: string,
    readonly description: TokenizerDescription,
    private readonly pool: TokenizerPool,
    private readonly cache: TokenCache | null,
  ) {
    const cuts = safeCutTokens(description.added);
    this.boundary = cuts.length ? new RegExp(`(?=${cuts.map(escapeRegExp).join('|')})`, 'g') : null;
    this.keyPrefix = `${dir}\u0000`;
  }

  /** Splits text before every cut token; concatenating the chunks' ids gives the text's ids. */
  chunks(text: string): string[] {
    if (!this.boundary || text.length === 0) return text.length ? [text] : [];
    return text.split(this.boundary).filter((c) => c.length > 0);
  }

  /** Ids of `text` without going through the cache (one worker call). */
  async encodeUncached(text: string, addSpecialTokens: boolean, signal?: TokenizeSignal): Promise<Uint32Array> {
    return (await this.pool.encode(this.dir, [text], addSpecialTokens, signal))[0];
  }

  /**
   * Ids of `text`, using and staging cache entries. With `addSpecialTokens`, the tokenizer's prefix (e.g. <bos>) is
   * prepended when that is all the post-processor does; otherwise the text bypasses the cache. With `maxTokens`, a text
   * that has more tokens is refused (`resource_exhausted`) as soon as that is known (see WAVE_CHARS). With `signal`, a
   * cancelled call's tokenization is dropped (queued) or stopped (running) by the pool.
   */
  async encode(
    text: string,
    addSpecialTokens: boolean,
    pending: PendingCacheWrites,
    maxTokens = Infinity,
    field?: string,
    signal?: TokenizeSignal,
  ): Promise<Uint32Array> {
    if (addSpecialTokens && !this.description.prefixOnly) return this.encodeUncached(text, true, signal);
    const prefix = addSpecialTokens ? this.description.prefixIds : [];
    const chunks = this.chunks(text);
    const parts: (Uint32Array | undefined)[] = chunks.map((c) => this.cache?.get(this.keyPrefix + c));
    const missing: number[] = [];
    let total = prefix.length;
    for (let i = 0; i < parts.length; i++) {
      if (parts[i] === undefined) missing.push(i);
      else total += parts[i]!.length;
    }
    for (const wave of this.waves(missing, chunks, maxTokens)) {
      if (total > maxTokens) throw tooManyTokens(total, maxTokens, field);
      const batches = this.batches(wave, chunks);
      const results = await Promise.all(
        batches.map((b) =>
          this.pool.encode(
            this.dir,
            b.map((i) => chunks[i]),
            false,
            signal,
          ),
        ),
      );
      batches.forEach((batch, j) => {
        const encoded = results[j];
        if (encoded.length !== batch.length) throw new PromptError('internal', 'tokenizer returned a wrong batch size');
        batch.forEach((i, k) => {
          parts[i] = encoded[k];
          total += encoded[k].length;
          if (this.cache) pending.push([this.keyPrefix + chunks[i], encoded[k]]);
        });
      });
    }
    if (total > maxTokens) throw tooManyTokens(total, maxTokens, field);
    const out = new Uint32Array(total);
    out.set(prefix, 0);
    let at = prefix.length;
    for (const p of parts) {
      out.set(p!, at);
      at += p!.length;
    }
    return out;
  }

  /** The uncached chunks in waves of about WAVE_CHARS characters; one wave when there is no limit. */
  private waves(missing: number[], chunks: string[], maxTokens: number): number[][] {
    if (missing.length === 0) return [];
    if (maxTokens === Infinity) return [missing];
    const out: number[][] = [[]];
    let chars = 0;
    for (const i of missing) {
      if (chars >= WAVE_CHARS) {
        out.push([]);
        chars = 0;
      }
      out[out.length - 1].push(i);
      chars += chunks[i].length;
    }
    return out;
  }

  /**
   * Spreads a long text's uncached chunks over the pool's workers (contiguous runs of similar character counts), so a
   * cold multi-turn chat is tokenized in parallel; short texts stay in one message.
   */
  private batches(missing: number[], chunks: string[]): number[][] {
    let chars = 0;
    for (const i of missing) chars += chunks[i].length;
    const n = Math.min(this.pool.size, missing.length, Math.ceil(chars / PARALLEL_MIN_CHARS));
    if (n <= 1) return [missing];
    const target = chars / n;
    const out: number[][] = [[]];
    let acc = 0;
    for (const i of missing) {
      if (acc >= target * out.length && out.length < n) out.push([]);
      out[out.length - 1].push(i);
      acc += chunks[i].length;
    }
    return out.filter((b) => b.length > 0);
  }

  commit(pending: PendingCacheWrites): void {
    if (!this.cache) return;
    for (const [k, v] of pending) this.cache.set(k, v);
  }

  /** Id of a token string (added or vocabulary), as resolved when the model was loaded. */
  id(token: string): number | undefined {
    return this.lookups.get(token);
  }

  /** Records token_to_id answers obtained from a worker (absent tokens are left out). */
  registerLookups(tokens: readonly string[], ids: readonly (number | null)[]): void {
    tokens.forEach((t, i) => {
      const v = ids[i];
      if (v !== null && v !== undefined) this.lookups.set(t, v);
    });
  }
}

/** A text's tokens known so far already exceed the limit (the prompt has at least that many: every part adds). */
function tooManyTokens(atLeast: number, maxTokens: number, field: string | undefined): PromptError {
  return new PromptError(
    'resource_exhausted',
    `prompt has at least ${atLeast} tokens, more than the limit of ${maxTokens}`,
    field,
  );
}

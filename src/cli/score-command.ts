import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { maxTokensOf, parsePyJson, stringifyPyJson, toPlain } from '../prompt/index.js';
import type { CandidateScore } from '../scoring/index.js';
import { ApiClient, clientAddress, describeCallError } from './api-client.js';

const USAGE = `usage: kv-indexer score REQUEST.json [--candidates ip:port,ip:port…] [--address host:port]

Asks a running indexer (--address, else KV_INDEXER_GRPC_ADDRESS, else localhost:50051) to Score a request and prints the candidates ranked.
REQUEST.json is an OpenAI-style body: {"model", "messages"} (chat, images included), {"model", "prompt"}
(completion text) or {"model", "prompt_token_ids"}; optional "lora", "cache_salt", "candidates"; chats also take the
chat-completions fields (tools, tool_choice, documents, mm_processor_kwargs, max_completion_tokens / max_tokens…).`;

/** A Score response row: the scorer's own shape (docs/api.md). */
type ScoreRow = CandidateScore;

/** `kv-indexer score`: a small client of kvindexer.v1 Score. */
export async function scoreCommand(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { candidates: { type: 'string' }, address: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    });
  } catch (err) {
    console.error(`${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (parsed.values.help) {
    console.log(USAGE);
    return 0;
  }
  if (parsed.positionals.length !== 1) {
    console.error(USAGE);
    return 2;
  }
  let body: Record<string, unknown>;
  try {
    // Parsed as vLLM's Python parses it; the fields that reach the chat template are re-encoded without loss.
    const value = parsePyJson(readFileSync(parsed.positionals[0], 'utf8'));
    if (!(value instanceof Map)) throw new Error('the request must be a JSON object');
    body = Object.fromEntries(value);
  } catch (err) {
    console.error(`cannot read ${parsed.positionals[0]}: ${(err as Error).message}`);
    return 1;
  }
  const candidates =
    parsed.values.candidates
      ?.split(',')
      .map((s) => s.trim())
      .filter(Boolean) ??
    (body.candidates as string[] | undefined) ??
    [];
  const request: Record<string, unknown> = {
    model: body.model,
    loraName: body.lora ?? '',
    cacheSalt: body.cache_salt ?? '',
    candidates,
  };
  let maxTokens: number | undefined;
  try {
    maxTokens = maxTokensOf(body);
  } catch (err) {
    console.error(`cannot read ${parsed.positionals[0]}: ${(err as Error).message}`);
    return 1;
  }
  const json = (v: unknown): string => (v === undefined || v === null ? '' : stringifyPyJson(v));
  if (Array.isArray(body.messages)) {
    request.chat = {
      messagesJson: json(body.messages),
      addGenerationPrompt: typeof body.add_generation_prompt === 'boolean' ? body.add_generation_prompt : undefined,
      continueFinalMessage: body.continue_final_message === true,
      chatTemplateKwargsJson: json(body.chat_template_kwargs),
      mmProcessorKwargsJson: json(body.mm_processor_kwargs),
      toolsJson: json(body.tools),
      toolChoice: typeof body.tool_choice === 'string' ? body.tool_choice : json(body.tool_choice),
      documentsJson: json(body.documents),
      chatTemplate: typeof body.chat_template === 'string' ? body.chat_template : '',
      reasoningEffort: typeof body.reasoning_effort === 'string' ? body.reasoning_effort : '',
      maxTokens,
    };
  } else if (typeof body.prompt === 'string') request.prompt = body.prompt;
  else if (Array.isArray(body.prompt_token_ids)) request.tokens = { tokenIds: toPlain(body.prompt_token_ids) };
  else {
    console.error('the request needs "messages", "prompt" or "prompt_token_ids"');
    return 2;
  }

  const client = new ApiClient(clientAddress(parsed.values.address, env));
  try {
    const res = await client.call<{
      totalBlocks: number;
      tokenCount: number;
      scores: ScoreRow[];
      degraded: boolean;
      unknownModel?: boolean;
    }>('Score', request);
    const notes = [
      res.degraded ? ' (degraded: index unavailable)' : '',
      res.unknownModel ? ` (unknown model: no endpoint publishes "${String(request.model)}")` : '',
    ];
    console.log(`${res.tokenCount} tokens, ${res.totalBlocks} blocks${notes.join('')}`);
    const rows = [...res.scores].sort((a, b) => b.weighted - a.weighted);
    console.log(
      ['endpoint'.padEnd(24), 'matched'.padStart(8), 'weighted'.padStart(9), 'normalized'.padStart(11), '  tiers'].join(
        '',
      ),
    );
    for (const s of rows) {
      const tiers = Object.entries(s.blocksByTier)
        .map(([t, n]) => `${t}:${n}`)
        .join(' ');
      console.log(
        [
          s.endpoint.padEnd(24),
          String(s.matchedBlocks).padStart(8),
          s.weighted.toFixed(2).padStart(9),
          s.normalized.toFixed(3).padStart(11),
          `  ${tiers}`,
        ].join(''),
      );
    }
    return 0;
  } catch (err) {
    console.error(`Score failed: ${describeCallError(err)}`);
    return 1;
  } finally {
    client.close();
  }
}

import { credentials, loadPackageDefinition, type GrpcObject, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LOADER_OPTIONS } from '../../src/api/index.js';
import { PromptServiceFrontend } from '../../src/cli/prompt-frontend.js';
import { embeddedConfig, startEmbedded } from '../../src/cli/embedded.js';
import { percentile, type Suite } from '../harness.js';
import { agentChat } from '../support/agent-chat.js';

const MODEL = 'Qwen/Qwen3-8B';
const CANDIDATES = Array.from({ length: 16 }, (_, i) => `10.3.0.${i + 1}:8000`);
/** Agent turns for a prompt of about 8k tokens with the Qwen3 template (each turn: 2 tool calls, 2 results). */
const TURNS = 22;

type ChatInput = { messagesJson: string; toolsJson: string; toolChoice: string };
type ScoreClient = { Score(req: object, opts: { deadline: number }, cb: (err: ServiceError | null, res: { tokenCount: number }) => void): void; close(): void };

/**
 * gRPC Score from an ~8k-token tool-using agent chat (issue 12): tools_json with nested schemas, tool calls whose
 * arguments are parsed as Python parses them, tool results — rendered with the Qwen3 template through the jinja-py
 * patch layer, tokenized, keyed and scored over 16 candidates. Cold: a conversation the server has not seen; next
 * turn: the same conversation plus one more agent turn (its earlier text is in the tokenizer's prefix cache).
 */
export const grpcToolsSuite: Suite = {
  name: 'grpc-tools',
  description: 'gRPC Score from an 8k-token tool-using agent chat (Qwen3 template + tokenizer, 16 candidates), cold and next turn',
  async run({ quick }) {
    const config = embeddedConfig({ zmq: { addresses: [] } });
    const registry = join(mkdtempSync(join(tmpdir(), 'grpc-tools-')), 'models.yaml');
    writeFileSync(registry, `workers: 2\nmodels:\n  - name: ${MODEL}\n    dir: ${fileURLToPath(new URL('../../fixtures/models/qwen3', import.meta.url))}\n`);
    const prompts = await PromptServiceFrontend.load(registry, config.keys);
    const embedded = await startEmbedded(config, prompts);
    const pkg = (loadPackageDefinition(loadSync('kvindexer/v1/kvindexer.proto', LOADER_OPTIONS)).kvindexer as GrpcObject).v1 as GrpcObject;
    const client = new (pkg.KvIndexer as unknown as new (a: string, c: ReturnType<typeof credentials.createInsecure>) => ScoreClient)(
      embedded.grpcAddress,
      credentials.createInsecure(),
    );
    const chatInput = (turns: number, seed: number): ChatInput => {
      const c = agentChat(turns, seed);
      return { messagesJson: c.messages, toolsJson: c.tools, toolChoice: 'auto' };
    };
    const timed = (chat: ChatInput) =>
      new Promise<{ ms: number; tokens: number }>((resolve, reject) => {
        const t0 = process.hrtime.bigint();
        client.Score({ model: MODEL, chat, candidates: CANDIDATES }, { deadline: Date.now() + 30_000 }, (err, res) =>
          err ? reject(err) : resolve({ ms: Number(process.hrtime.bigint() - t0) / 1e6, tokens: res.tokenCount }),
        );
      });
    try {
      for (let i = 0; i < (quick ? 2 : 6); i++) await timed(chatInput(TURNS, 700 + i)); // warm both workers
      const rounds = quick ? 4 : Number(process.env.GRPC_TOOLS_ROUNDS ?? 30);
      const cold: number[] = [];
      const nextTurn: number[] = [];
      let tokens = 0;
      for (let i = 0; i < rounds; i++) {
        const first = await timed(chatInput(TURNS, 1000 + i));
        cold.push(first.ms);
        tokens = first.tokens;
        const chat = chatInput(TURNS, 1000 + i);
        const more = `, {"role": "assistant", "content": "Booked LX160 (812.0 CHF)."}, {"role": "user", "content": "Now a hotel, turn ${i}."}]`;
        nextTurn.push((await timed({ ...chat, messagesJson: chat.messagesJson.slice(0, -1) + more })).ms);
      }
      return {
        parameters: { model: MODEL, candidates: CANDIDATES.length, promptTokens: tokens, agentTurns: TURNS, toolsPerRequest: 2, rounds, tokenizerWorkers: 2 },
        figures: {
          coldP50Ms: { value: percentile(cold, 50), unit: 'ms' },
          coldP99Ms: { value: percentile(cold, 99), unit: 'ms' },
          nextTurnP50Ms: { value: percentile(nextTurn, 50), unit: 'ms' },
          nextTurnP99Ms: { value: percentile(nextTurn, 99), unit: 'ms' },
        },
      };
    } finally {
      client.close();
      await embedded.stop();
      await prompts.close();
    }
  },
};

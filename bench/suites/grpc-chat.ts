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
import { chatOf } from './prompt.js';

const MODEL = 'Qwen/Qwen2-VL-2B-Instruct';
const CANDIDATES = Array.from({ length: 16 }, (_, i) => `10.2.0.${i + 1}:8000`);

type ScoreClient = { Score(req: object, opts: { deadline: number }, cb: (err: ServiceError | null, res: { tokenCount: number }) => void): void; close(): void };

/**
 * gRPC Score from chat text (the DESIGN goal "8k tokens, warm tokenizer, p50 ≤ 15 ms"): the whole read path of the
 * real server — gRPC decode, chat template, tokenizer worker pool, keys, Score over 16 candidates — one call at a
 * time. Cold: a conversation the server has not seen; next turn: the same conversation plus one message, whose
 * earlier text the tokenizer's prefix cache already holds.
 */
export const grpcChatSuite: Suite = {
  name: 'grpc-chat',
  description: 'gRPC Score from chat text (Qwen2-VL template + tokenizer, 16 candidates), cold and next turn',
  async run({ quick }) {
    const config = embeddedConfig({ zmq: { addresses: [] } });
    // The demo registry with two tokenizer workers (its default is cores − 1, one here), as the prompt suite uses.
    const registry = join(mkdtempSync(join(tmpdir(), 'grpc-chat-')), 'models.yaml');
    writeFileSync(registry, `workers: 2\nmodels:\n  - name: ${MODEL}\n    dir: ${fileURLToPath(new URL('../../fixtures/models/qwen2-vl', import.meta.url))}\n`);
    const prompts = await PromptServiceFrontend.load(registry, config.keys);
    const embedded = await startEmbedded(config, prompts);
    const pkg = (loadPackageDefinition(loadSync('kvindexer/v1/kvindexer.proto', LOADER_OPTIONS)).kvindexer as GrpcObject).v1 as GrpcObject;
    const client = new (pkg.KvIndexer as unknown as new (a: string, c: ReturnType<typeof credentials.createInsecure>) => ScoreClient)(
      embedded.grpcAddress,
      credentials.createInsecure(),
    );
    const score = (messages: object[]) =>
      new Promise<number>((resolve, reject) =>
        client.Score({ model: MODEL, chat: { messagesJson: JSON.stringify(messages) }, candidates: CANDIDATES }, { deadline: Date.now() + 30_000 }, (err, res) =>
          err ? reject(err) : resolve(res.tokenCount),
        ),
      );
    const timed = async (messages: object[]) => {
      const t0 = process.hrtime.bigint();
      const tokens = await score(messages);
      return { ms: Number(process.hrtime.bigint() - t0) / 1e6, tokens };
    };
    try {
      for (let i = 0; i < (quick ? 2 : 6); i++) await score(chatOf(8192, 700 + i)); // warm both workers
      const rounds = quick ? 4 : Number(process.env.GRPC_CHAT_ROUNDS ?? 30);
      const cold: number[] = [];
      const nextTurn: number[] = [];
      let tokens = 0;
      for (let i = 0; i < rounds; i++) {
        const chat = chatOf(8192, 1000 + i);
        const first = await timed(chat);
        cold.push(first.ms);
        tokens = first.tokens;
        nextTurn.push((await timed([...chat, { role: 'assistant', content: 'Done.' }, { role: 'user', content: `Again, turn ${i}.` }])).ms);
      }
      return {
        parameters: { model: MODEL, candidates: CANDIDATES.length, promptTokens: tokens, rounds, tokenizerWorkers: 2, registry: 'fixtures/models/demo.yaml with workers: 2' },
        figures: {
          coldP50Ms: { value: percentile(cold, 50), unit: 'ms', goal: '≤ 15' },
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

import { percentile, type Suite } from '../harness.js';
import { candidates, startChatScoreServer } from '../support/chat-score-server.js';
import { chatOf } from './prompt.js';

const MODEL = 'Qwen/Qwen2-VL-2B-Instruct';
const CANDIDATES = candidates(2);

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
    const server = await startChatScoreServer(MODEL, 'qwen2-vl', CANDIDATES);
    const timed = (messages: object[]) => server.timedScore({ messagesJson: JSON.stringify(messages) });
    try {
      for (let i = 0; i < (quick ? 2 : 6); i++) await timed(chatOf(8192, 700 + i)); // warm both workers
      const rounds = quick ? 4 : Number(process.env.GRPC_CHAT_ROUNDS ?? 30);
      const cold: number[] = [];
      const nextTurn: number[] = [];
      let tokens = 0;
      for (let i = 0; i < rounds; i++) {
        const chat = chatOf(8192, 1000 + i);
        const first = await timed(chat);
        cold.push(first.ms);
        tokens = first.tokens;
        nextTurn.push(
          (
            await timed([
              ...chat,
              { role: 'assistant', content: 'Done.' },
              { role: 'user', content: `Again, turn ${i}.` },
            ])
          ).ms,
        );
      }
      return {
        parameters: {
          model: MODEL,
          candidates: CANDIDATES.length,
          promptTokens: tokens,
          rounds,
          tokenizerWorkers: 2,
          registry: 'fixtures/models/demo.yaml with workers: 2',
        },
        figures: {
          coldP50Ms: { value: percentile(cold, 50), unit: 'ms', goal: '≤ 15' },
          coldP99Ms: { value: percentile(cold, 99), unit: 'ms' },
          nextTurnP50Ms: { value: percentile(nextTurn, 50), unit: 'ms' },
          nextTurnP99Ms: { value: percentile(nextTurn, 99), unit: 'ms' },
        },
      };
    } finally {
      await server.close();
    }
  },
};

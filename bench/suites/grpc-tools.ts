import { percentile, type Suite } from '../harness.js';
import { agentChat } from '../support/agent-chat.js';
import { candidates, startChatScoreServer } from '../support/chat-score-server.js';

const MODEL = 'Qwen/Qwen3-8B';
const CANDIDATES = candidates(3);
/** Agent turns for a prompt of about 8k tokens with the Qwen3 template (each turn: 2 tool calls, 2 results). */
const TURNS = 22;

type ChatInput = { messagesJson: string; toolsJson: string; toolChoice: string };

/**
 * gRPC Score from an ~8k-token tool-using agent chat (issue 12): tools_json with nested schemas, tool calls whose
 * arguments are parsed as Python parses them, tool results — rendered with the Qwen3 template through the jinja-py
 * patch layer, tokenized, keyed and scored over 16 candidates. Cold: a conversation the server has not seen; next
 * turn: the same conversation plus one more agent turn (its earlier text is in the tokenizer's prefix cache).
 */
export const grpcToolsSuite: Suite = {
  name: 'grpc-tools',
  description:
    'gRPC Score from an 8k-token tool-using agent chat (Qwen3 template + tokenizer, 16 candidates), cold and next turn',
  async run({ quick }) {
    const server = await startChatScoreServer(MODEL, 'qwen3', CANDIDATES);
    const chatInput = (turns: number, seed: number): ChatInput => {
      const c = agentChat(turns, seed);
      return { messagesJson: c.messages, toolsJson: c.tools, toolChoice: 'auto' };
    };
    const timed = (chat: ChatInput) => server.timedScore(chat);
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
        parameters: {
          model: MODEL,
          candidates: CANDIDATES.length,
          promptTokens: tokens,
          agentTurns: TURNS,
          toolsPerRequest: 2,
          rounds,
          tokenizerWorkers: 2,
        },
        figures: {
          coldP50Ms: { value: percentile(cold, 50), unit: 'ms' },
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

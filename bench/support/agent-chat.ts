/**
 * A deterministic tool-using agent conversation (OpenAI chat-completions JSON), for the gRPC tools test and the
 * grpc-tools bench: a system prompt, tools with nested schemas and non-ASCII descriptions, then turns of
 * user → assistant tool call(s) → tool result(s) → assistant answer. The JSON text carries what JSON.parse would
 * lose (2.0, integer-like keys, 20-digit integers), so it renders exactly only when parsed as Python parses it.
 */

export const AGENT_TOOLS_JSON = JSON.stringify([
  {
    type: 'function',
    function: {
      name: 'search_flights',
      description: 'Vols entre deux villes — 航班搜索 ✈️',
      parameters: {
        type: 'object',
        properties: {
          from: { type: 'string', description: 'IATA code, e.g. "ZRH"' },
          to: { type: 'string' },
          when: {
            type: 'object',
            properties: {
              date: { type: 'string', format: 'date' },
              flexible_days: { type: 'integer', minimum: 0, maximum: 7 },
            },
            required: ['date'],
          },
          cabin: { type: 'string', enum: ['economy', 'premium', 'business'] },
        },
        required: ['from', 'to', 'when'],
      },
    },
  },
  {
    type: 'function',
    function: {
      name: 'convert_currency',
      description: 'Convertit un montant (€, ¥, $).',
      parameters: {
        type: 'object',
        properties: { amount: { type: 'number' }, rate: { type: 'number' }, to: { type: 'string' } },
        required: ['amount', 'to'],
      },
    },
  },
]).replace('"maximum":7', '"maximum":7.0');

const CITIES = ['ZRH', 'NRT', 'CDG', 'JFK', 'SIN', 'GRU', 'CPT', 'SYD'];

/** `turns` agent turns; `seed` varies the text so distinct chats share no prefix beyond the system prompt. */
export function agentChat(turns: number, seed = 0): { messages: string; tools: string } {
  const parts: string[] = [
    JSON.stringify({ role: 'system', content: `You are a travel agent (session ${seed}). Réponds brièvement.` }),
  ];
  for (let t = 0; t < turns; t++) {
    const from = CITIES[(t + seed) % CITIES.length];
    const to = CITIES[(t * 3 + seed + 1) % CITIES.length];
    parts.push(
      JSON.stringify({
        role: 'user',
        content: `Turn ${t}: find flights ${from} → ${to} and convert ${100 + t}.0 CHF to yen. Notes: ${'bagage, siège, 座席; '.repeat(4)}`,
      }),
    );
    // Arguments as the raw JSON strings a client sends back: a float written 2.0, integer-like keys, a 20-digit id.
    const a1 = `{"from": "${from}", "to": "${to}", "when": {"date": "2026-0${1 + (t % 9)}-1${t % 10}", "flexible_days": 2}, "cabin": "economy", "2026": true, "10": 1.0}`;
    const a2 = `{"amount": ${100 + t}.0, "rate": 163.50, "to": "JPY", "ref": 12345678901234567890}`;
    parts.push(
      JSON.stringify({
        role: 'assistant',
        content: null,
        tool_calls: [
          { id: `c${t}a`, type: 'function', function: { name: 'search_flights', arguments: a1 } },
          { id: `c${t}b`, type: 'function', function: { name: 'convert_currency', arguments: a2 } },
        ],
      }),
    );
    parts.push(
      JSON.stringify({
        role: 'tool',
        tool_call_id: `c${t}a`,
        content: `{"flights": [{"no": "LX${160 + t}", "dep": "08:${10 + (t % 50)}", "price": 812.0}, {"no": "NH${200 + t}", "dep": "21:05", "price": 790.5}]}`,
      }),
    );
    parts.push(JSON.stringify({ role: 'tool', tool_call_id: `c${t}b`, content: `${(100 + t) * 163.5} JPY` }));
    parts.push(
      JSON.stringify({
        role: 'assistant',
        content: `LX${160 + t} at 08:${10 + (t % 50)} for 812 CHF; ${100 + t} CHF ≈ ${Math.round((100 + t) * 163.5)} ¥.`,
      }),
    );
  }
  parts.push(JSON.stringify({ role: 'user', content: 'Book the cheapest one.' }));
  return { messages: `[${parts.join(', ')}]`, tools: AGENT_TOOLS_JSON };
}

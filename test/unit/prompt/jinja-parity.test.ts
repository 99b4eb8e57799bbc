import { describe, expect, it } from 'vitest';
import {
  PARITY_CHATS,
  parityTemplates,
  renderModel,
  renderReference,
  renderService,
  type ParityTemplate,
  type ReferenceCase,
} from './jinja-parity.js';

/**
 * Differential test: every fixture chat template and probe template × the chat corpus, rendered by the service
 * (src/prompt: parsePyJson → normalizeMessages → chatTemplateInputs → renderChat on the jinja-py patch layer) and
 * by Python's Jinja2 configured as transformers configures it (test/support/jinja2-render.py, Debian's
 * python3-jinja2, installed by .ci/run). The texts must be byte-identical; where the template itself refuses a chat
 * (gemma3's role alternation), both must refuse.
 */
describe('Jinja2 parity: the service renders chat templates byte for byte as Python Jinja2 does', () => {
  const templates = parityTemplates();
  const cases: (ReferenceCase & { label: string; model: ParityTemplate })[] = [];
  for (const t of templates) {
    for (const chat of PARITY_CHATS) {
      // Images reach a string-format template as placeholder text a text-only model does not have.
      if (chat.images && t.contentFormat === 'string') continue;
      cases.push({
        label: `${t.name} × ${chat.name}`,
        model: t,
        template: t.source,
        special_tokens: t.specialTokens,
        content_format: t.contentFormat,
        exclude_tools_when_none: chat.exclude === true,
        request: chat.json,
      });
    }
  }

  it('covers every template and chat', () => {
    expect(templates.map((t) => t.name)).toEqual([
      'qwen3',
      'qwen2-vl',
      'qwen3-vl',
      'gemma3',
      'probe-json.jinja (string)',
      'probe-json.jinja (openai)',
      'probe-tools.jinja (string)',
      'probe-tools.jinja (openai)',
    ]);
    // The image chat skips the three string-format templates (qwen3, the probes as "string").
    expect(cases.length).toBe(templates.length * PARITY_CHATS.length - 3);
  });

  it('renders identical text (or both refuse) for every template × chat', () => {
    const reference = renderReference(cases.map(({ label: _label, model: _model, ...c }) => c));
    const mismatches: string[] = [];
    const refused: string[] = [];
    let rendered = 0;
    cases.forEach((c, i) => {
      const model = renderModel(c.model, c.exclude_tools_when_none);
      const ours = renderService(model, c.request);
      const ref = reference[i];
      if ('text' in ref && 'text' in ours) {
        rendered++;
        if (ours.text !== ref.text) mismatches.push(`${c.label}\n--- python\n${ref.text}\n--- service\n${ours.text}`);
      } else if ('text' in ref || 'text' in ours) {
        mismatches.push(`${c.label}: python ${JSON.stringify(ref)} vs service ${JSON.stringify(ours)}`);
      } else refused.push(c.label);
    });
    expect(mismatches).toEqual([]);
    // Refused by both, and only these: continue_final_message with the default add_generation_prompt (transformers:
    // "not compatible"), gemma3 and probe-tools (openai) on tool turns (their templates raise), and probe-json
    // (openai), which prints the final message as JSON (escaped newlines), so the text to continue is not found.
    const TOOL_CHATS = [
      'one tool call, result, answer',
      'two parallel tool calls with reasoning',
      'empty and object arguments, empty tool_calls',
    ];
    const expected = [
      ...templates.map((t) => `${t.name} × continue: with the default add_generation_prompt (refused)`),
      ...TOOL_CHATS.flatMap((chat) => [`gemma3 × ${chat}`, `probe-tools.jinja (openai) × ${chat}`]),
      'probe-json.jinja (openai) × continue: trailing and leading whitespace',
    ];
    expect(refused.sort()).toEqual(expected.sort());
    expect(rendered).toBe(cases.length - expected.length);
  });
});

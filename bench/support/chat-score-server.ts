import { credentials, loadPackageDefinition, type GrpcObject, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LOADER_OPTIONS } from '../../src/api/index.js';
import { embeddedConfig, startEmbedded } from '../../src/service/embedded.js';
import { PromptServiceFrontend } from '../../src/service/prompt-frontend.js';

/** 16 candidates in their own /24, so two suites never share an endpoint name. */
export function candidates(subnet: number): string[] {
  return Array.from({ length: 16 }, (_, i) => `10.${subnet}.0.${i + 1}:8000`);
}

export interface ChatScoreServer {
  /** One Score call with `chat` (a ChatInput message); resolves with its latency and the prompt's token count. */
  timedScore(chat: object): Promise<{ ms: number; tokens: number }>;
  close(): Promise<void>;
}

type ScoreClient = {
  Score(
    req: object,
    opts: { deadline: number },
    cb: (err: ServiceError | null, res: { tokenCount: number }) => void,
  ): void;
  close(): void;
};

/**
 * The real read path for the chat benchmarks: an in-process service with one model from `fixtures/models/<fixture>`
 * and two tokenizer workers (the registry's default is cores − 1, one on the 2-core VM), and a gRPC client.
 */
export async function startChatScoreServer(
  model: string,
  fixture: string,
  scoreCandidates: string[],
): Promise<ChatScoreServer> {
  const config = embeddedConfig({ zmq: { addresses: [] } });
  const registry = join(mkdtempSync(join(tmpdir(), `bench-${fixture}-`)), 'models.yaml');
  writeFileSync(
    registry,
    `workers: 2\nmodels:\n  - name: ${model}\n    dir: ${fileURLToPath(new URL(`../../fixtures/models/${fixture}`, import.meta.url))}\n`,
  );
  const prompts = await PromptServiceFrontend.load(registry, config.keys);
  const embedded = await startEmbedded(config, prompts);
  const pkg = (loadPackageDefinition(loadSync('kvindexer/v1/kvindexer.proto', LOADER_OPTIONS)).kvindexer as GrpcObject)
    .v1 as GrpcObject;
  const client = new (
    pkg.KvIndexer as unknown as new (a: string, c: ReturnType<typeof credentials.createInsecure>) => ScoreClient
  )(embedded.grpcAddress, credentials.createInsecure());
  return {
    timedScore: (chat) =>
      new Promise((resolve, reject) => {
        const t0 = process.hrtime.bigint();
        client.Score({ model, chat, candidates: scoreCandidates }, { deadline: Date.now() + 30_000 }, (err, res) =>
          err ? reject(err) : resolve({ ms: Number(process.hrtime.bigint() - t0) / 1e6, tokens: res.tokenCount }),
        );
      }),
    async close() {
      client.close();
      await embedded.stop();
      await prompts.close();
    },
  };
}

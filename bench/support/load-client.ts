import type { ChildProcess } from 'node:child_process';
import { forkChild } from './child.js';
import type { PhaseResult } from '../suites/grpc.js';

/** HTTP/2 connections the client spreads its calls over (a few picker replicas). */
export const CONNECTIONS = 4;

/** The load generator child process, driven over its IPC channel (also used by the grpc-hygiene suite). */
export class LoadClient {
  private constructor(private readonly child: ChildProcess) {}

  static async start(): Promise<LoadClient> {
    return new LoadClient(await forkChild(new URL('../suites/grpc-load-client.mjs', import.meta.url)));
  }

  /** Connects to `address`, serialises `requests`; resolves with the DATA bytes of the response to requests[0]. */
  setup(address: string, requests: object[]): Promise<number> {
    return this.request({ type: 'setup', address, connections: CONNECTIONS, requests }, 'ready').then(
      (m) => (m as { bytes: number }).bytes,
    );
  }

  run(
    phase: { type: 'closed'; seconds: number; concurrency: number } | { type: 'open'; seconds: number; rate: number },
  ) {
    return this.request(phase, 'result').then((m) => (m as { result: PhaseResult }).result);
  }

  /** Closes the client's connections (setup opens new ones). */
  close(): Promise<void> {
    return this.request({ type: 'close' }, 'closed').then(() => undefined);
  }

  exit(): void {
    if (this.child.connected) this.child.send({ type: 'exit' });
  }

  private request(message: object, expected: string): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const onMessage = (m: { type: string; message?: string }) => {
        this.child.off('exit', onExit);
        if (m.type === expected) resolve(m);
        else reject(new Error(`grpc load client: ${m.message ?? m.type}`));
      };
      const onExit = (code: number | null) => {
        this.child.off('message', onMessage);
        reject(new Error(`grpc load client exited (${code})`));
      };
      this.child.once('message', onMessage);
      this.child.once('exit', onExit);
      this.child.send(message);
    });
  }
}

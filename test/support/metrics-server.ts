import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What a fake vLLM /metrics server answers: a page, an HTTP status, a request that never answers, or a huge body. */
export type MetricsBehaviour = { page: string } | { status: number } | { hang: true } | { hugeBytes: number };

/**
 * A real HTTP server on 127.0.0.1 standing in for a vLLM pod's /metrics. Counts requests by path; with `hugeBytes`
 * it streams that many bytes honouring backpressure and records how many it managed to write before the client
 * hung up (`written`).
 */
export class FakeMetricsServer {
  requests = 0;
  readonly paths = new Map<string, number>();
  /** Bytes of the last huge body handed to the socket before it closed or finished. */
  written = 0;
  /** Whether the last huge body was written completely. */
  hugeFinished = false;
  private readonly server: Server;
  private readonly open = new Set<ServerResponse>();

  /** Hanging requests whose connection is still open. */
  get hanging(): number {
    return this.open.size;
  }

  private constructor(
    public behaviour: MetricsBehaviour,
    readonly port: number,
    server: Server,
  ) {
    this.server = server;
  }

  static async start(behaviour: MetricsBehaviour): Promise<FakeMetricsServer> {
    let self: FakeMetricsServer | null = null;
    const server = createServer((req, res) => self!.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    self = new FakeMetricsServer(behaviour, (server.address() as AddressInfo).port, server);
    return self;
  }

  get hostPort(): string {
    return `127.0.0.1:${this.port}`;
  }

  url(path = '/metrics'): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  async close(): Promise<void> {
    for (const res of this.open) res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    this.requests++;
    this.paths.set(req.url ?? '', (this.paths.get(req.url ?? '') ?? 0) + 1);
    const b = this.behaviour;
    if ('page' in b) {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(b.page);
    } else if ('status' in b) {
      res.writeHead(b.status).end('unavailable\n');
    } else if ('hang' in b) {
      this.open.add(res); // never answered; destroyed at close()
      res.on('close', () => this.open.delete(res));
    } else {
      this.streamHuge(res, b.hugeBytes);
    }
  }

  /** `# filler …` comment lines, chunked (no Content-Length), as fast as the client reads. */
  private streamHuge(res: ServerResponse, total: number): void {
    this.written = 0;
    this.hugeFinished = false;
    const chunk = Buffer.from(`# filler ${'x'.repeat(16 * 1024 - 11)}\n`);
    res.writeHead(200, { 'content-type': 'text/plain' });
    let closed = false;
    res.on('close', () => (closed = true));
    const pump = () => {
      while (!closed && this.written < total) {
        this.written += chunk.length;
        if (!res.write(chunk)) {
          res.once('drain', pump);
          return;
        }
      }
      if (!closed) {
        this.hugeFinished = true;
        res.end();
      }
    };
    pump();
  }
}

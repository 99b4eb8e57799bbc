// The scrape suite's vLLM stand-ins: N HTTP servers on 127.0.0.1 serving a vLLM-shaped /metrics page, in a child
// process so that the suite's CPU figures are the scraper's alone. Driven over IPC: {type:'start', count, page} →
// {type:'ports', ports}; {type:'exit'}.
import { createServer } from 'node:http';

const servers = [];
process.on('message', async (msg) => {
  if (msg.type === 'start') {
    const ports = [];
    for (let i = 0; i < msg.count; i++) {
      // Each server's figures differ a little, as a fleet's would.
      const page = msg.page.replace(
        'vllm:num_requests_running{engine="0",model_name="Qwen/Qwen3-0.6B"} 3.0',
        `vllm:num_requests_running{engine="0",model_name="Qwen/Qwen3-0.6B"} ${i % 17}.0`,
      );
      const server = createServer((req, res) =>
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(page),
      );
      server.keepAliveTimeout = 60_000;
      await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
      servers.push(server);
      ports.push(server.address().port);
    }
    process.send({ type: 'ports', ports });
  } else if (msg.type === 'exit') {
    for (const s of servers) s.closeAllConnections();
    process.exit(0);
  }
});

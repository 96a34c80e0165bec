// An OpenAI-style upstream for the side-by-side benchmarks, run as its own
// process (node dist/bench/upstream-child.js [--chunks N]).
//
// The bare proxy and Sandgate (through its "openai" provider) both talk HTTP to
// this one process, so both pay the same client side of an upstream call and
// the comparison is of the proxies alone. Its answers are fixed and cheap to
// make: a ~600-byte chat completion, or with "stream": true N content chunks
// (default 20) sent one per event-loop turn, as a network upstream's arrive,
// then a finish chunk and [DONE]. It prints "listening <port>" when ready.

import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({ options: { chunks: { type: 'string', default: '20' } }, strict: true });
const CHUNKS = Math.max(1, Number(args.chunks) || 20);

const COMPLETION = Buffer.from(
  JSON.stringify({
    id: 'chatcmpl-bench-upstream',
    object: 'chat.completion',
    created: 1700000000,
    model: 'gpt-bench',
    system_fingerprint: 'fp_bench',
    choices: [
      {
        index: 0,
        message: {
          role: 'assistant',
          content:
            'The build failed because the compiler upgrade stopped reading type declarations from the old location; installing the declarations package and listing it in the types option restored them, so the build passes again; nothing else in the project needed to change.',
        },
        logprobs: null,
        finish_reason: 'stop',
      },
    ],
    usage: { prompt_tokens: 412, completion_tokens: 41, total_tokens: 453 },
  }),
);

const chunkEvent = (delta: Record<string, unknown>, finish: string | null) =>
  Buffer.from(
    `data: ${JSON.stringify({ id: 'chatcmpl-bench-upstream', object: 'chat.completion.chunk', created: 1700000000, model: 'gpt-bench', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`,
  );
/** Made once: the upstream's own cost should not vary between the proxies it serves. */
const EVENTS = [
  ...Array.from({ length: CHUNKS }, (_, i) => chunkEvent(i === 0 ? { role: 'assistant', content: 'word ' } : { content: 'word ' }, null)),
  chunkEvent({}, 'stop'),
  Buffer.from('data: [DONE]\n\n'),
];

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

const server = createServer((req, res) => {
  const parts: Buffer[] = [];
  req.on('data', (b: Buffer) => parts.push(b));
  req.on('end', async () => {
    let stream = false;
    try {
      stream = JSON.parse(Buffer.concat(parts).toString('utf8'))?.stream === true;
    } catch {
      res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":{"message":"bad JSON","type":"invalid_request_error"}}');
      return;
    }
    if (!stream) {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': COMPLETION.length }).end(COMPLETION);
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    for (const ev of EVENTS) {
      if (res.destroyed) return;
      res.write(ev);
      await nextTurn();
    }
    res.end();
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening ${(server.address() as AddressInfo).port}\n`);
});
process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});

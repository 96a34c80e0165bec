// The baseline: what a bare proxy on the gateway's own stack costs, run as its
// own process (node dist/bench/bare-proxy-child.js --upstream <base url>).
//
// One Hono route on @hono/node-server, forwarding the client's body with
// undici's request() on a keep-alive Pool (as many connections as the gateway's
// openai provider opens by default) and relaying the answer: a JSON answer is
// read whole and sent, an event stream is piped through as it arrives. No
// parsing, no validation, no plugins, no metrics, no logs: the floor Sandgate's
// plugin-free path is measured against. Prints "listening <port>" when ready.

import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { Pool } from 'undici';

const { values: args } = parseArgs({ options: { upstream: { type: 'string' }, connections: { type: 'string', default: '64' } }, strict: true });
if (!args.upstream) throw new Error('usage: bare-proxy-child --upstream http://127.0.0.1:<port>/v1');
const upstream = new URL(args.upstream);
const upstreamPath = `${upstream.pathname.replace(/\/+$/, '')}/chat/completions`;
const pool = new Pool(upstream.origin, { connections: Number(args.connections), pipelining: 1 });

const app = new Hono();
app.post('/v1/chat/completions', async (c) => {
  const res = await pool.request({
    method: 'POST',
    path: upstreamPath,
    headers: { 'content-type': 'application/json', accept: c.req.header('accept') ?? 'application/json' },
    body: Buffer.from(await c.req.arrayBuffer()),
  });
  const type = String(res.headers['content-type'] ?? 'application/json');
  if (type.startsWith('text/event-stream')) {
    return new Response(Readable.toWeb(res.body) as ReadableStream<Uint8Array>, { status: res.statusCode, headers: { 'content-type': type, 'cache-control': 'no-cache' } });
  }
  return new Response(new Uint8Array(await res.body.arrayBuffer()), { status: res.statusCode, headers: { 'content-type': type } });
});

const server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, (info) => process.stdout.write(`listening ${info.port}\n`));
process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  void pool.close();
});

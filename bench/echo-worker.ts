// A worker thread that sends every message straight back: the cost of the
// thread crossing alone, to compare with a real hook call (bench part
// hook-roundtrip). Messages and replies have the shape the plugin pool uses.

import { parentPort } from 'node:worker_threads';

const port = parentPort!;
port.on('message', (msg: { seq: number; input: Uint8Array }) => {
  // Like a plugin worker: a fresh output buffer, transferred back.
  const output = new Uint8Array(16);
  port.postMessage({ t: 'done', seq: msg.seq, output }, [output.buffer as ArrayBuffer]);
});

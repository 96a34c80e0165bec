import { Client } from 'undici';

// The soak's load: a fixed number of clients, each on its own keep-alive
// connection to the gateway on loopback, sending chat requests back to back
// until told to stop. Half of them stream. Every answer is checked as it
// arrives: a failure is any status but 200, a transport error, a stream that
// does not end with [DONE], or a response or chunk that does not carry exactly
// one known version's stamp (a stream: the same one on every chunk).

export interface LoadOptions {
  url: string;
  jsonClients: number;
  streamClients: number;
  /** The stamps a response may carry (one version each). */
  stamps: readonly string[];
}

export interface LoadFigures {
  requests: number;
  streams: number;
  chunks: number;
  failures: number;
  /** The first few failures, described. */
  failureSamples: string[];
  /** Stamps seen, with how many responses (streams count once) carried each. */
  stampsSeen: Map<string, number>;
  /** When each complete stream was sent and when its last byte arrived (performance.now()). */
  streamSpans: [number, number][];
}

const CHAT = JSON.stringify({ model: 'mock/echo', messages: [{ role: 'user', content: 'one two three four five six seven eight nine ten' }] });
const STREAM = JSON.stringify({ ...JSON.parse(CHAT), stream: true });

export interface RunningLoad {
  /** Stops every client after its current request; resolves with the figures once all connections are closed. */
  stop(): Promise<LoadFigures>;
}

/**
 * Starts the clients. They run until stop().
 *
 * @example
 * const load = startLoad({ url, jsonClients: 10, streamClients: 10, stamps: ['a', 'b'] });
 * // ... swap plugins ...
 * const figures = await load.stop();
 */
export function startLoad(opts: LoadOptions): RunningLoad {
  const figures: LoadFigures = { requests: 0, streams: 0, chunks: 0, failures: 0, failureSamples: [], stampsSeen: new Map(), streamSpans: [] };
  let stopping = false;
  const fail = (what: string) => {
    figures.failures++;
    if (figures.failureSamples.length < 10) figures.failureSamples.push(what);
  };
  const seen = (stamp: string) => figures.stampsSeen.set(stamp, (figures.stampsSeen.get(stamp) ?? 0) + 1);
  const known = new Set(opts.stamps);

  async function jsonRequest(client: Client): Promise<void> {
    const res = await client.request({ path: '/v1/chat/completions', method: 'POST', headers: { 'content-type': 'application/json' }, body: CHAT });
    const text = await res.body.text();
    figures.requests++;
    const stamp = res.headers['x-stamp'];
    if (res.statusCode !== 200) return fail(`JSON request answered ${res.statusCode}: ${text.slice(0, 300)}`);
    if (typeof stamp !== 'string' || !known.has(stamp)) return fail(`JSON response stamped ${JSON.stringify(stamp)}`);
    if (!Array.isArray((JSON.parse(text) as { choices?: unknown }).choices)) return fail(`JSON response without choices: ${text.slice(0, 300)}`);
    seen(stamp);
  }

  async function streamRequest(client: Client): Promise<void> {
    const sent = performance.now();
    const res = await client.request({ path: '/v1/chat/completions', method: 'POST', headers: { 'content-type': 'application/json' }, body: STREAM });
    const text = await res.body.text();
    figures.streams++;
    if (res.statusCode !== 200) return fail(`stream answered ${res.statusCode}: ${text.slice(0, 300)}`);
    const events = text
      .split('\n\n')
      .filter((block) => block.trim())
      .map((block) => block.replace(/^data: /, ''));
    if (events.at(-1) !== '[DONE]') return fail(`stream did not end with [DONE]: ...${text.slice(-300)}`);
    const stamps = new Set<unknown>();
    for (const data of events.slice(0, -1)) {
      figures.chunks++;
      stamps.add((JSON.parse(data) as { stamp?: unknown }).stamp);
    }
    const [stamp] = stamps;
    if (stamps.size !== 1 || typeof stamp !== 'string' || !known.has(stamp)) return fail(`stream chunks stamped ${JSON.stringify([...stamps])}`);
    seen(stamp);
    figures.streamSpans.push([sent, performance.now()]);
  }

  async function loop(request: (c: Client) => Promise<void>): Promise<void> {
    const client = new Client(opts.url, { pipelining: 1, keepAliveTimeout: 60_000 });
    try {
      while (!stopping) await request(client).catch((e: Error) => fail(`request error: ${e.message}`));
    } finally {
      await client.close();
    }
  }

  const loops = [...Array.from({ length: opts.jsonClients }, () => loop(jsonRequest)), ...Array.from({ length: opts.streamClients }, () => loop(streamRequest))];
  return {
    stop: async () => {
      stopping = true;
      await Promise.all(loops);
      return figures;
    },
  };
}

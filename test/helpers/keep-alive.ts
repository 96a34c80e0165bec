import http from 'node:http';

// An HTTP/1.1 client that keeps one connection open and sends every request on
// it, one after another, as a browser or an SDK would. It tells the test which
// socket each answer came on and whether interim (1xx) responses arrived, so a
// test can prove that an answer was framed right: a response whose body is
// longer or shorter than it claims makes the next one on the socket unreadable.

export interface KeepAliveResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json: any;
  /** The client side's port: the same value for two answers means the same connection. */
  localPort: number;
  /** True when the request went out on a connection an earlier request had used. */
  reusedSocket: boolean;
  /** Statuses of interim (1xx) responses received before this one. */
  interim: number[];
}

export interface KeepAliveClient {
  request(method: string, path: string, body?: unknown): Promise<KeepAliveResponse>;
  close(): void;
}

/** A client bound to one keep-alive connection (maxSockets 1) to baseUrl. */
export function keepAliveClient(baseUrl: string): KeepAliveClient {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const request = (method: string, path: string, body?: unknown) =>
    new Promise<KeepAliveResponse>((resolve, reject) => {
      const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const headers: Record<string, string | number> = payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {};
      const interim: number[] = [];
      const req = http.request(new URL(path, baseUrl), { method, agent, headers }, (res) => {
        const localPort = res.socket.localPort ?? -1;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json, localPort, reusedSocket: req.reusedSocket, interim });
        });
      });
      req.on('information', (info) => interim.push(info.statusCode));
      req.on('error', reject);
      req.end(payload);
    });
  return { request, close: () => agent.destroy() };
}

import { WebSocket } from 'undici';

// Forces a full garbage collection in every V8 isolate of another node
// process (its main thread and each worker thread) through the inspector
// protocol, so the soak can compare memory after a GC without any test-only
// code in the gateway.
//
// Why the inspector: `--expose-gc` would give the gateway a global gc(), but
// nothing in the gateway calls it, and node refuses it in a worker's execArgv
// (the plugin pool passes its execArgv on: ERR_WORKER_INVALID_EXEC_ARGV).
// `--inspect` has the same problem on the command line, but not in
// NODE_OPTIONS, which workers do not re-read. With the inspector on, the
// protocol's HeapProfiler.collectGarbage does a full GC of the main isolate,
// and NodeWorker.sendMessageToWorker sends the same command to every worker.

interface Message {
  id?: number;
  method?: string;
  params?: Record<string, any>;
  result?: unknown;
  error?: { message: string };
}

export class InspectorGc {
  private nextId = 1;
  private readonly pending = new Map<number, (m: Message) => void>();
  /** Attached worker sessions (workers replaced by the pool come and go). */
  private readonly workers = new Set<string>();

  private constructor(private readonly ws: WebSocket) {
    ws.addEventListener('message', (ev) => this.onMessage(JSON.parse(String(ev.data)) as Message));
  }

  /** Connects to `ws://...` (the "Debugger listening on" address) and attaches to every worker. */
  static async connect(url: string): Promise<InspectorGc> {
    const ws = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      ws.addEventListener('open', () => resolve(), { once: true });
      ws.addEventListener('error', () => reject(new Error(`cannot connect to the inspector at ${url}`)), { once: true });
    });
    const gc = new InspectorGc(ws);
    await gc.send('NodeWorker.enable', { waitForDebuggerOnStart: false });
    return gc;
  }

  /** Full GC in the main isolate and in every worker; resolves when all of them have answered. */
  async collect(timeoutMs = 10_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`a GC did not finish within ${timeoutMs} ms`)), timeoutMs)));
    try {
      await Promise.race([late, this.send('HeapProfiler.collectGarbage')]);
      await Promise.race([late, Promise.all([...this.workers].map((sessionId) => this.sendToWorker(sessionId, 'HeapProfiler.collectGarbage')))]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Worker threads currently attached. */
  get workerCount(): number {
    return this.workers.size;
  }

  close(): void {
    this.ws.close();
  }

  private send(method: string, params: Record<string, unknown> = {}): Promise<Message> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, (m) => (m.error ? reject(new Error(`${method}: ${m.error.message}`)) : resolve(m)));
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }

  /** A command inside a worker's session; its answer comes back wrapped in receivedMessageFromWorker. */
  private sendToWorker(sessionId: string, method: string): Promise<Message> {
    const id = this.nextId++;
    const answered = new Promise<Message>((resolve, reject) => {
      this.pending.set(id, (m) => (m.error ? reject(new Error(`${method} in worker ${sessionId}: ${m.error.message}`)) : resolve(m)));
    });
    void this.send('NodeWorker.sendMessageToWorker', { sessionId, message: JSON.stringify({ id, method }) });
    return answered;
  }

  private onMessage(m: Message): void {
    if (m.id !== undefined) {
      this.pending.get(m.id)?.(m);
      this.pending.delete(m.id);
    } else if (m.method === 'NodeWorker.attachedToWorker') {
      this.workers.add(m.params!.sessionId as string);
    } else if (m.method === 'NodeWorker.detachedFromWorker') {
      this.workers.delete(m.params!.sessionId as string);
    } else if (m.method === 'NodeWorker.receivedMessageFromWorker') {
      this.onMessage(JSON.parse(m.params!.message as string) as Message);
    }
  }
}

import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { writeFileSync } from 'node:fs';
import { loadConfigFile, parseConfig } from '../../host/config/load.js';
import { GatewayError } from '../../host/errors/codes.js';
import { type RunningGateway, startGateway } from '../../host/main/start-gateway.js';
import { ROOT } from './paths.js';

export interface LogLine {
  level: number;
  msg: string;
  rid?: string;
  plugin?: string;
  hook?: string;
  kind?: string;
  [k: string]: unknown;
}

export interface TestGateway extends RunningGateway {
  logs: LogLine[];
  /** POST a JSON body to a path; returns status, headers and the parsed JSON (or text). */
  post(path: string, body: unknown, headers?: Record<string, string>): Promise<TestResponse>;
  get(path: string, headers?: Record<string, string>): Promise<TestResponse>;
  /** The hooks called for one request, in order, as "plugin:hook" (from the debug log). */
  hooksFor(rid: string): string[];
}

export interface TestResponse {
  status: number;
  headers: Headers;
  json: any;
  text: string;
}

const CHAT = (content = 'Hello!') => ({ model: 'mock/echo', messages: [{ role: 'user', content }] });
export { CHAT };

async function toTestResponse(res: Response): Promise<TestResponse> {
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, json, text };
}

/** A test config as startTestGateway runs it: debug logs, a free port (as written to a config file for reloads). */
export function testConfig(raw: Record<string, unknown>): Record<string, unknown> {
  return { log_level: 'debug', ...raw, server: { port: 0, ...((raw.server as object) ?? {}) } };
}

/**
 * Starts the real gateway in this process on a free loopback port, with logs captured at debug level.
 * With `configFile`, the config is written there and the gateway runs from it (reloadConfig reads it
 * again; write it with testConfig so only what a test changes differs).
 */
export async function startTestGateway(raw: Record<string, unknown>, opts: { configFile?: string } = {}): Promise<TestGateway> {
  const logs: LogLine[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) if (line.trim()) logs.push(JSON.parse(line) as LogLine);
      done();
    },
  });
  const file = opts.configFile;
  if (file) writeFileSync(file, JSON.stringify(testConfig(raw)));
  const config = file ? loadConfigFile(file) : parseConfig(testConfig(raw), { baseDir: ROOT });
  const gw = await startGateway(config, { logDestination: sink, ...(file ? { configSource: { file, load: () => loadConfigFile(file) } } : {}) });
  const request = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
    toTestResponse(
      await fetch(gw.url + path, {
        method,
        headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      }),
    );
  return {
    ...gw,
    logs,
    post: (path, body, headers) => request('POST', path, body, headers),
    get: (path, headers) => request('GET', path, undefined, headers),
    hooksFor: (rid) => logs.filter((l) => l.rid === rid && l.msg === 'hook called').map((l) => `${l.plugin}:${l.hook}`),
  };
}

/**
 * How many instances of a plugin the gateway holds: one per worker, and one on
 * the main thread while its calls run there (plugin-pdk/ABI.md §7.6). Each
 * runs init once, and cleanup once if it never failed.
 */
export function instancesOf(gw: RunningGateway, plugin: string): number {
  const p = gw.plugins.find((x) => x.name === plugin);
  assert.ok(p, `plugin ${plugin} is loaded`);
  return gw.pool.size + (p.placement === 'main-thread' ? 1 : 0);
}

/**
 * Starts the gateway with a config that must not start (logs silenced); returns
 * the GatewayError it refused with. Fails the test if it started.
 */
export async function startGatewayFails(raw: Record<string, unknown>, opts: { env?: Record<string, string | undefined> } = {}): Promise<GatewayError> {
  const config = parseConfig({ log_level: 'silent', server: { port: 0 }, ...raw }, { baseDir: ROOT, ...opts });
  let gw: RunningGateway;
  try {
    gw = await startGateway(config);
  } catch (e) {
    assert.ok(e instanceof GatewayError, `expected a GatewayError, got ${String(e)}`);
    return e;
  }
  await gw.close();
  assert.fail('the gateway started');
}

import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfigFile } from '../config/load.js';
import { isGatewayError } from '../errors/codes.js';
import { startGateway } from './start-gateway.js';

const USAGE = `usage: sandgate [--config config.json] [--host 127.0.0.1] [--port 8080]`;

async function main(): Promise<void> {
  let args;
  try {
    args = parseArgs({
      options: { config: { type: 'string', default: 'config.json' }, port: { type: 'string' }, host: { type: 'string' }, help: { type: 'boolean' } },
      strict: true,
    }).values;
  } catch (e) {
    console.error(`${(e as Error).message}\n${USAGE}`);
    process.exit(2);
  }
  if (args.help) {
    console.log(USAGE);
    return;
  }
  const config = loadConfigFile(path.resolve(args.config!));
  if (args.host) config.server.host = args.host;
  if (args.port !== undefined) {
    const port = Number(args.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port: "${args.port}" is not a port number (0-65535)`);
    config.server.port = port;
  }
  const gw = await startGateway(config);
  let stopping = false;
  const stop = (signal: string) => {
    // A second signal is normal, not impatience: Ctrl-C in a terminal and systemd's
    // default KillMode signal every process of the group, and `npm start` forwards
    // the one it got too. Dying on it would skip the drain; close() is bounded anyway.
    if (stopping) return gw.log.info({ signal }, 'already shutting down');
    stopping = true;
    gw.log.info({ signal }, 'shutting down');
    // close() bounds each step (drain, cleanup); exit 0 once it is done.
    void gw.close().then(
      () => process.exit(0),
      (e: unknown) => {
        gw.log.error({ err: e }, 'error while shutting down');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((e: unknown) => {
  const msg = isGatewayError(e) ? `sandgate: ${e.code}: ${e.message}` : `sandgate: ${(e as Error)?.stack ?? e}`;
  console.error(msg);
  process.exit(1);
});

import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfigFile } from '../config/load.js';
import { isGatewayError } from '../errors/codes.js';
import { SIGNING_COMMANDS, UsageError } from './signing-commands.js';
import { startGateway } from './start-gateway.js';

const USAGE = `usage: sandgate [--config config.json] [--host 127.0.0.1] [--port 8080]
       sandgate keygen [--out sandgate-signing.key] [--id ID]
       sandgate sign FILE --key KEYFILE
       sandgate hash FILE

With no command, serves the gateway. "sandgate COMMAND --help" explains each command.`;

async function main(): Promise<void> {
  const [first, ...rest] = process.argv.slice(2);
  // No command (or an option first) serves, so "sandgate --config x" works as it always has.
  if (first !== undefined && !first.startsWith('-')) {
    const command = SIGNING_COMMANDS[first];
    if (!command) {
      console.error(`sandgate: unknown command "${first}"\n${USAGE}`);
      process.exit(2);
    }
    try {
      command.run(rest);
    } catch (e) {
      // These commands' errors are for the operator and say what to fix; a stack trace would only bury that.
      const usage = e instanceof UsageError;
      console.error(`sandgate ${first}: ${(e as Error).message}${usage ? `\n${command.usage}` : ''}`);
      process.exit(usage ? 2 : 1);
    }
    return;
  }
  await serve();
}

async function serve(): Promise<void> {
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
  const file = path.resolve(args.config!);
  let port: number | undefined;
  if (args.port !== undefined) {
    port = Number(args.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port: "${args.port}" is not a port number (0-65535)`);
  }
  // The command line wins over the file, at start and on every reload (so a reload never reads as a port change).
  const load = () => {
    const c = loadConfigFile(file);
    if (args.host) c.server.host = args.host;
    if (port !== undefined) c.server.port = port;
    return c;
  };
  const config = load();
  // SIGHUP reloads the config and never stops the process (its default action would, with exit 129),
  // also while starting: a reload asked for then finds nothing to reload yet.
  let reload: ((trigger: string) => unknown) | undefined;
  process.on('SIGHUP', () => {
    if (reload) void reload('sighup');
    else console.error('sandgate: SIGHUP while starting; ignored (the config being loaded is already the newest)');
  });
  const gw = await startGateway(config, { configSource: { file, load } });
  reload = gw.reloadConfig;
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

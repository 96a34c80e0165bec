import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CLI, ROOT } from './paths.js';

export interface CliGateway {
  child: ChildProcess;
  url: string;
  /** The config file it was started with (rewrite it to test reloads). */
  configFile: string;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
}

/** Writes `config` to a config.json in a fresh temporary folder; returns its path. */
export function writeConfigFile(config: unknown): string {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'sandgate-cli-')), 'config.json');
  writeFileSync(file, JSON.stringify(config));
  return file;
}

/**
 * Starts the real CLI in a process of its own on a free port (what an operator
 * runs; a gateway that dies or stops takes down only that process); resolves
 * with its URL once it listens.
 */
export async function startCli(config: unknown): Promise<CliGateway> {
  return startCommand(process.execPath, [CLI, '--config', writeConfigFile(config), '--port', '0']);
}

/**
 * Runs any command line that starts the gateway, from the repository root, and
 * resolves once the gateway logs the URL it listens on. `detached` puts the
 * command in a process group of its own, to signal the whole group the way a
 * terminal's Ctrl-C or systemd does.
 *
 * @example
 * const gw = await startCommand('npm', ['start', '--', '--config', file, '--port', '0']);
 */
export async function startCommand(command: string, args: string[], opts: { detached?: boolean } = {}): Promise<CliGateway> {
  const child = spawn(command, args, { cwd: ROOT, detached: opts.detached });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', () => {
      const m = /"url":"([^"]+)"/.exec(out);
      if (m) resolve(m[1]);
    });
    child.on('exit', () => reject(new Error(`gateway exited early:\n${out}`)));
  });
  const at = args.indexOf('--config');
  return { child, url, configFile: at === -1 ? '' : path.resolve(ROOT, args[at + 1]), output: () => out };
}

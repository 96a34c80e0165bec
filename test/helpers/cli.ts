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

/**
 * Starts the real CLI in a process of its own on a free port (what an operator
 * runs; a gateway that dies or stops takes down only that process); resolves
 * with its URL once it listens.
 */
export async function startCli(config: unknown): Promise<CliGateway> {
  const dir = mkdtempSync(path.join(tmpdir(), 'sandgate-cli-'));
  const file = path.join(dir, 'config.json');
  writeFileSync(file, JSON.stringify(config));
  const child = spawn(process.execPath, [CLI, '--config', file, '--port', '0'], { cwd: ROOT });
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
  return { child, url, configFile: file, output: () => out };
}

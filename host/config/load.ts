import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { z } from 'zod';
import { ErrorCode, GatewayError } from '../errors/codes.js';
import { type Config, ConfigSchema } from './schema.js';

/** Formats a path like ['plugins', 0, 'timeout_ms'] as `plugins[0].timeout_ms`. */
export function jsonPath(parts: readonly PropertyKey[]): string {
  let out = '';
  for (const p of parts) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out || '(top level)';
}

/**
 * Replaces every string of the exact form "env.NAME" with that environment
 * variable. A missing variable is an error naming both the variable and where
 * it was used, because a silently empty API key fails much later and obscurely.
 */
export function substituteEnv(value: unknown, env: NodeJS.ProcessEnv, at: PropertyKey[] = []): unknown {
  if (typeof value === 'string') {
    const m = /^env\.([A-Za-z_][A-Za-z0-9_]*)$/.exec(value);
    if (!m) return value;
    const v = env[m[1]];
    if (v === undefined) {
      throw new GatewayError(ErrorCode.configEnvMissing, `${jsonPath(at)}: environment variable ${m[1]} is not set (the config says "${value}"); export it or change the value`);
    }
    return v;
  }
  if (Array.isArray(value)) return value.map((v, i) => substituteEnv(v, env, [...at, i]));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = substituteEnv(v, env, [...at, k]);
    return out;
  }
  return value;
}

function describeIssues(issues: z.core.$ZodIssue[]): string {
  return issues
    .map((i) => {
      if (i.code === 'unrecognized_keys') return `${jsonPath(i.path)}: unknown key(s) ${i.keys.map((k) => `"${k}"`).join(', ')}`;
      // A record's key (a provider name, a trusted key id): zod says only "Invalid key in record"; its own issues say why.
      if (i.code === 'invalid_key') return `${jsonPath(i.path)}: invalid name: ${i.issues.map((k) => k.message).join('; ')}`;
      return `${jsonPath(i.path)}: ${i.message}`;
    })
    .join('\n  ');
}

/** Validates an already-parsed config object. Relative plugin paths are resolved against baseDir. */
export function parseConfig(raw: unknown, opts: { baseDir: string; env?: NodeJS.ProcessEnv; source?: string }): Config {
  const source = opts.source ?? 'config';
  const substituted = substituteEnv(raw, opts.env ?? process.env);
  const result = ConfigSchema.safeParse(substituted);
  if (!result.success) {
    throw new GatewayError(ErrorCode.configInvalid, `${source} is invalid:\n  ${describeIssues(result.error.issues)}`);
  }
  const cfg = result.data;
  for (const p of cfg.plugins) p.path = path.resolve(opts.baseDir, p.path);
  return cfg;
}

export function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new GatewayError(ErrorCode.configInvalid, `cannot read config file ${file}: ${(e as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new GatewayError(ErrorCode.configInvalid, `${file} is not valid JSON: ${(e as Error).message}`);
  }
  return parseConfig(raw, { baseDir: path.dirname(path.resolve(file)), env, source: file });
}

import { createHash, createPrivateKey, createPublicKey } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { KEY_ID_PATTERN } from '../config/schema.js';
import { keyIdOf, newSigningKey, publicKeyToBase64, signatureFileText } from '../plugins/integrity.js';

// `sandgate keygen`, `sandgate sign FILE`, `sandgate hash FILE`: the operator's
// side of plugin integrity (formats in host/plugins/integrity.ts). Each prints
// on stdout exactly what goes into config.json, and explains on stderr.

/** A mistake in how the command was called: printed with its usage, exit code 2. */
export class UsageError extends Error {}

export interface Command {
  usage: string;
  run(argv: string[]): void;
}

interface Parsed {
  values: Record<string, string | undefined>;
  positionals: string[];
}

/** Parses a command's arguments; undefined when --help was asked for (and printed). */
function parse(argv: string[], options: Record<string, { type: 'string'; default?: string }>, usage: string, positionals: number): Parsed | undefined {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean' } }, allowPositionals: positionals > 0, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (parsed.values.help) {
    console.log(usage);
    return undefined;
  }
  if (parsed.positionals.length !== positionals) throw new UsageError(positionals ? 'expected one FILE' : `takes no FILE (got "${parsed.positionals[0]}")`);
  return parsed as Parsed;
}

function readOrExplain(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    throw new Error(`cannot read ${what} ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
}

const KEYGEN_USAGE = `usage: sandgate keygen [--out sandgate-signing.key] [--id ID]

Creates an Ed25519 signing key. Writes the private key to --out (mode 0600,
never overwrites a file) and prints the public key as a trusted_keys entry:
  "ID": "<base64 of the 32-byte public key>"
--id defaults to the key file's name without its extension; it is written
into the key file, and into every .sig file made with it.`;

const keygen: Command = {
  usage: KEYGEN_USAGE,
  run(argv) {
    const parsed = parse(argv, { out: { type: 'string', default: 'sandgate-signing.key' }, id: { type: 'string' } }, KEYGEN_USAGE, 0);
    if (!parsed) return;
    const out = parsed.values.out ?? 'sandgate-signing.key';
    const id = parsed.values.id ?? path.basename(out, path.extname(out));
    if (!KEY_ID_PATTERN.test(id)) throw new UsageError(`--id "${id}": key ids use letters, digits, ".", "_" or "-"`);
    const { keyFile, publicKey } = newSigningKey(id);
    try {
      writeFileSync(out, keyFile, { mode: 0o600, flag: 'wx' });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new Error(`${out} already exists; refusing to overwrite a key (choose another --out, or delete it yourself)`);
      throw e;
    }
    console.log(`${JSON.stringify(id)}: ${JSON.stringify(publicKey)}`);
    console.error(`wrote private key "${id}" to ${out} (mode 0600): keep it secret, off the gateway host.\nAdd the line above to "trusted_keys" in config.json, then sign plugins with: sandgate sign FILE --key ${out}`);
  },
};

const SIGN_USAGE = `usage: sandgate sign FILE --key KEYFILE [--id ID]

Signs FILE (a plugin's .wasm) with the Ed25519 private key in KEYFILE and
writes FILE.sig next to it (replacing an older one), one line:
  ed25519:<key id>:<base64 of the 64-byte signature over FILE's bytes>
The key id comes from KEYFILE (as sandgate keygen wrote it) or --id (for a PEM
key made otherwise, e.g. openssl genpkey -algorithm ed25519).`;

const sign: Command = {
  usage: SIGN_USAGE,
  run(argv) {
    const parsed = parse(argv, { key: { type: 'string' }, id: { type: 'string' } }, SIGN_USAGE, 1);
    if (!parsed) return;
    const keyPath = parsed.values.key;
    if (!keyPath) throw new UsageError('--key KEYFILE is required (the private key sandgate keygen wrote)');
    const keyText = readOrExplain(keyPath, 'key file').toString('utf8');
    const id = parsed.values.id ?? keyIdOf(keyText);
    if (!id) throw new UsageError(`${keyPath} names no key id (no "Sandgate-Key-Id:" line): pass --id, the name this key has in trusted_keys`);
    if (!KEY_ID_PATTERN.test(id)) throw new UsageError(`key id "${id}": key ids use letters, digits, ".", "_" or "-"`);
    let key;
    try {
      key = createPrivateKey(keyText);
    } catch (e) {
      throw new Error(`${keyPath} is not a private key in PEM form: ${(e as Error).message}`);
    }
    if (key.asymmetricKeyType !== 'ed25519') throw new Error(`${keyPath} is a ${key.asymmetricKeyType} key; Sandgate signatures are Ed25519 (make one with sandgate keygen)`);

    const file = parsed.positionals[0];
    const sigFile = `${file}.sig`;
    const text = signatureFileText(readOrExplain(file, 'file'), keyText, id);
    // Written aside then renamed: a reader never sees half a signature.
    const tmp = `${sigFile}.${process.pid}.tmp`;
    writeFileSync(tmp, text);
    renameSync(tmp, sigFile);
    console.error(`wrote ${sigFile}: signed with key "${id}" (public key ${publicKeyToBase64(createPublicKey(key))})`);
  },
};

const HASH_USAGE = `usage: sandgate hash FILE

Prints FILE's sha256 as a plugins[] entry's "sha256" setting: a file with
another hash is then refused.`;

const hash: Command = {
  usage: HASH_USAGE,
  run(argv) {
    const parsed = parse(argv, {}, HASH_USAGE, 1);
    if (!parsed) return;
    const digest = createHash('sha256').update(readOrExplain(parsed.positionals[0], 'file')).digest('hex');
    console.log(`"sha256": ${JSON.stringify(digest)}`);
  },
};

export const SIGNING_COMMANDS: Record<string, Command> = { keygen, sign, hash };

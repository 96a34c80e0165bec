import { createPublicKey, generateKeyPairSync, type KeyObject, sign, verify } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { type Config, KEY_ID_PATTERN, type PluginEntry } from '../config/schema.js';
import { ErrorCode, GatewayError } from '../errors/codes.js';

// Plugin integrity: a pinned sha256 per plugin, and Ed25519 signatures in a
// detached `<file>.sig`. Checked on the very bytes that get compiled
// (runtime/compile.ts reads the file once and hands them here), so nothing can
// swap the file between the check and the compile.
//
// The formats, all one line of text an operator can paste or inspect:
//   public key (config trusted_keys): base64 of the raw 32-byte Ed25519 key
//   signature file (<file>.sig):       ed25519:<key id>:<base64 of the 64-byte signature over the file's bytes>
//   private key file (sandgate keygen): "Sandgate-Key-Id: <id>" line, then PKCS#8 PEM (openssl reads it too)
// The key id in the .sig says which trusted key to check against, so a refusal
// can say "signed by a key you do not trust" apart from "the file was changed
// after signing", and keys can be rotated by adding the new one next to the old.

export type TrustSettings = Pick<Config, 'trusted_keys' | 'require_signature'>;

const SIG_PREFIX = 'ed25519';
const KEY_ID_LINE = 'Sandgate-Key-Id:';

/** Decodes a trusted_keys value (already shape-checked by the schema) into a key node's crypto can verify with. */
export function publicKeyFromBase64(b64: string): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(b64, 'base64').toString('base64url') }, format: 'jwk' });
}

/** The config form of a public key: base64 of its 32 raw bytes. */
export function publicKeyToBase64(key: KeyObject): string {
  return Buffer.from(key.export({ format: 'jwk' }).x!, 'base64url').toString('base64');
}

/**
 * A new signing key: the private key file's text and the public key in config form.
 * @example
 * const { keyFile, publicKey } = newSigningKey('release-2026');
 * // keyFile -> write with mode 0600; publicKey -> config "trusted_keys": { "release-2026": publicKey }
 */
export function newSigningKey(id: string): { keyFile: string; publicKey: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  return { keyFile: `${KEY_ID_LINE} ${id}\n${pem}`, publicKey: publicKeyToBase64(publicKey) };
}

/** The key id a key file names on its `Sandgate-Key-Id:` line, if any (a PEM from openssl has none). */
export function keyIdOf(keyFile: string): string | undefined {
  const line = keyFile.split('\n').find((l) => l.startsWith(KEY_ID_LINE));
  return line?.slice(KEY_ID_LINE.length).trim() || undefined;
}

/** The text of `<file>.sig` for these bytes, signed with the private key (a PEM, with or without the id line; node skips text before BEGIN). */
export function signatureFileText(bytes: Uint8Array, privateKeyPem: string, keyId: string): string {
  return `${SIG_PREFIX}:${keyId}:${sign(null, bytes, privateKeyPem).toString('base64')}\n`;
}

function parseSignatureFile(text: string): { keyId: string; signature: Buffer } | undefined {
  const m = /^ed25519:([^:]+):([A-Za-z0-9+/]{86}==)$/.exec(text.trim());
  return m && KEY_ID_PATTERN.test(m[1]) ? { keyId: m[1], signature: Buffer.from(m[2], 'base64') } : undefined;
}

/** Whether this plugin must carry a valid signature: its own setting, else the top-level default. */
export function signatureRequired(entry: Pick<PluginEntry, 'require_signature'>, trust: TrustSettings): boolean {
  return entry.require_signature ?? trust.require_signature;
}

/**
 * Refuses plugin bytes that do not match the pinned sha256 or, where a
 * signature is required, whose `<file>.sig` is missing, malformed, names an
 * untrusted key or does not verify. Signatures are checked only where required;
 * otherwise a .sig file is ignored.
 */
export async function verifyPluginBytes(entry: PluginEntry, trust: TrustSettings, bytes: Uint8Array, sha256: string): Promise<void> {
  const refuse = (why: string) => new GatewayError(ErrorCode.pluginIntegrityFailed, `plugin "${entry.name}": ${entry.path} ${why}`, { plugin: entry.name });
  if (entry.sha256 !== undefined && entry.sha256.toLowerCase() !== sha256) {
    throw refuse(
      `has sha256 ${sha256} but the config expects ${entry.sha256.toLowerCase()}: the file changed; if the new build is intended, put its hash (sandgate hash FILE) in plugins[].sha256`,
    );
  }
  if (!signatureRequired(entry, trust)) return;

  const sigFile = `${entry.path}.sig`;
  let text: string;
  try {
    text = await readFile(sigFile, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw refuse(`has no signature file ${sigFile}, and require_signature is on: sign it (sandgate sign FILE --key KEY)`);
    }
    throw refuse(`has a signature file ${sigFile} that cannot be read: ${(e as Error).message}`);
  }
  const parsed = parseSignatureFile(text);
  if (!parsed) throw refuse(`has a malformed signature file ${sigFile}: expected one line "ed25519:<key id>:<base64 signature>" as sandgate sign writes it`);
  const key = trust.trusted_keys[parsed.keyId];
  if (key === undefined) {
    throw refuse(`is signed by key "${parsed.keyId}", which is not in trusted_keys (trusted: ${Object.keys(trust.trusted_keys).join(', ') || 'none'}); add its public key or re-sign with a trusted one`);
  }
  if (!verify(null, bytes, publicKeyFromBase64(key), parsed.signature)) {
    throw refuse(`does not match its signature in ${sigFile} with trusted key "${parsed.keyId}": the file changed after signing or was signed with another key; re-sign the file you mean to run`);
  }
}

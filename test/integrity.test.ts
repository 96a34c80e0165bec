import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { parseConfig } from '../host/config/load.js';
import { ErrorCode, GatewayError } from '../host/errors/codes.js';
import { CHAT, startGatewayFails, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { CLI, ROOT, samplePlugin } from './helpers/paths.js';

// Plugin integrity through the real gateway: a real .wasm copied into a temp
// dir, pinned by sha256 or signed with Ed25519 keys made here, and the real
// CLI's keygen, sign and hash. The .sig files written by these tests spell the
// documented format out by hand (ed25519:<key id>:<base64 signature>), so a
// change to the format on either side shows up.

const tmp = mkdtempSync(path.join(tmpdir(), 'sandgate-integrity-'));
const HELLO = readFileSync(samplePlugin('hello-world'));
const HELLO_SHA = createHash('sha256').update(HELLO).digest('hex');

let copies = 0;
/** A fresh copy of hello-world.wasm in the temp dir (each test owns its file and .sig). */
function pluginCopy(bytes: Uint8Array = HELLO): string {
  const file = path.join(tmp, `hello-${++copies}.wasm`);
  writeFileSync(file, bytes);
  return file;
}

function newKey(): { privateKey: KeyObject; publicKey: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  // Config form: base64 of the raw 32-byte key (the last 32 bytes of its SPKI DER).
  return { privateKey, publicKey: publicKey.export({ type: 'spki', format: 'der' }).subarray(-32).toString('base64') };
}

function writeSig(file: string, keyId: string, key: KeyObject): void {
  writeFileSync(`${file}.sig`, `ed25519:${keyId}:${sign(null, readFileSync(file), key).toString('base64')}\n`);
}

const RELEASE = newKey();
const OTHER = newKey();

function config(plugin: Record<string, unknown>, top: Record<string, unknown> = {}) {
  return { runtime: { workers: 1 }, ...top, plugins: [{ name: 'hello', ...plugin }] };
}

/** Starting must fail; returns the error. */
const refused = (raw: Record<string, unknown>): Promise<GatewayError> => startGatewayFails(raw, { env: {} });

function configError(raw: unknown): string {
  try {
    parseConfig(raw, { baseDir: ROOT, env: {} });
  } catch (e) {
    assert.ok(e instanceof GatewayError && e.code === ErrorCode.configInvalid, `expected config_invalid, got ${String(e)}`);
    return e.message;
  }
  assert.fail('config was accepted');
}

const running: TestGateway[] = [];
after(() => Promise.all(running.map((g) => g.close())));

/** Starts the gateway with this config and checks hello-world runs (its response header) with the file's hash in /health. */
async function servesHello(raw: Record<string, unknown>, sha256 = HELLO_SHA): Promise<TestGateway> {
  const gw = await startTestGateway(raw);
  running.push(gw);
  const res = await gw.post('/v1/chat/completions', CHAT());
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('x-processed-by'), 'hello-world', 'the plugin ran');
  const health = await gw.get('/health');
  assert.equal(health.json.plugins[0].sha256, sha256);
  return gw;
}

describe('plugin integrity: pinned sha256', () => {
  it('loads a file whose hash matches (either case of hex)', async () => {
    await servesHello(config({ path: pluginCopy(), sha256: HELLO_SHA }));
    await servesHello(config({ path: pluginCopy(), sha256: HELLO_SHA.toUpperCase() }));
  });

  it('refuses a file whose hash differs, naming both hashes and what to do', async () => {
    const wrong = 'ab'.repeat(32);
    const file = pluginCopy();
    const e = await refused(config({ path: file, sha256: wrong }));
    assert.equal(e.code, ErrorCode.pluginIntegrityFailed);
    assert.equal(e.plugin, 'hello');
    assert.ok(e.message.includes(`has sha256 ${HELLO_SHA}`), e.message);
    assert.ok(e.message.includes(`config expects ${wrong}`), e.message);
    assert.ok(e.message.includes(file) && e.message.includes('sandgate hash'), e.message);
  });

  it('skips a fail-open plugin that fails its check: the gateway serves without it', async () => {
    const gw = await startTestGateway(config({ path: pluginCopy(), sha256: '00'.repeat(32), on_error: 'fail-open' }));
    running.push(gw);
    const res = await gw.post('/v1/chat/completions', CHAT());
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-processed-by'), null, 'the refused plugin does not run');
    const health = (await gw.get('/health')).json;
    assert.deepEqual(health.plugins.map((p: { name: string; state: string }) => [p.name, p.state]), [['hello', 'not_loaded']], '/health shows it configured but not loaded');
    assert.equal(health.status, 'degraded');
    assert.equal(gw.plugins.length, 0, 'no version of it is active');
    assert.ok(gw.logs.some((l) => l.code === ErrorCode.pluginIntegrityFailed && l.plugin === 'hello'), 'the refusal is logged with its code');
  });
});

describe('plugin integrity: Ed25519 signatures', () => {
  const trusted = { trusted_keys: { release: RELEASE.publicKey } };

  it('loads a file signed by a trusted key, where the plugin or the whole config requires it', async () => {
    const file = pluginCopy();
    writeSig(file, 'release', RELEASE.privateKey);
    await servesHello(config({ path: file, require_signature: true }, trusted));
    await servesHello(config({ path: file }, { ...trusted, require_signature: true }));
    // Several trusted keys (rotation): the .sig names the one that signed.
    await servesHello(config({ path: file, require_signature: true }, { trusted_keys: { old: OTHER.publicKey, release: RELEASE.publicKey } }));
  });

  it('refuses an unsigned file where a signature is required, naming the missing .sig', async () => {
    const file = pluginCopy();
    const e = await refused(config({ path: file, require_signature: true }, trusted));
    assert.equal(e.code, ErrorCode.pluginIntegrityFailed);
    assert.ok(e.message.includes(`no signature file ${file}.sig`) && e.message.includes('sandgate sign'), e.message);
    // The top-level default applies to a plugin that says nothing.
    assert.equal((await refused(config({ path: file }, { ...trusted, require_signature: true }))).code, ErrorCode.pluginIntegrityFailed);
  });

  it('refuses a file changed by one byte after signing', async () => {
    const file = pluginCopy();
    writeSig(file, 'release', RELEASE.privateKey);
    const tampered = Buffer.from(HELLO);
    tampered[tampered.length - 1] ^= 1;
    writeFileSync(file, tampered);
    const e = await refused(config({ path: file, require_signature: true }, trusted));
    assert.equal(e.code, ErrorCode.pluginIntegrityFailed);
    assert.match(e.message, /does not match its signature .* trusted key "release": the file changed after signing/);
  });

  it('refuses a file signed by a key that is not trusted, under a known id or an unknown one', async () => {
    const impostor = pluginCopy();
    writeSig(impostor, 'release', OTHER.privateKey);
    const e1 = await refused(config({ path: impostor, require_signature: true }, trusted));
    assert.equal(e1.code, ErrorCode.pluginIntegrityFailed);
    assert.match(e1.message, /does not match its signature .* trusted key "release"/);

    const stranger = pluginCopy();
    writeSig(stranger, 'someone-else', OTHER.privateKey);
    const e2 = await refused(config({ path: stranger, require_signature: true }, trusted));
    assert.equal(e2.code, ErrorCode.pluginIntegrityFailed);
    assert.match(e2.message, /signed by key "someone-else", which is not in trusted_keys \(trusted: release\)/);
  });

  it('refuses a malformed .sig, saying the expected format', async () => {
    const file = pluginCopy();
    writeFileSync(`${file}.sig`, 'not a signature\n');
    const e = await refused(config({ path: file, require_signature: true }, trusted));
    assert.equal(e.code, ErrorCode.pluginIntegrityFailed);
    assert.match(e.message, /malformed signature file .*"ed25519:<key id>:<base64 signature>"/);
  });

  it('checks both the hash and the signature when both are set', async () => {
    const file = pluginCopy();
    writeSig(file, 'release', RELEASE.privateKey);
    await servesHello(config({ path: file, require_signature: true, sha256: HELLO_SHA }, trusted));
    assert.match((await refused(config({ path: file, require_signature: true, sha256: 'cd'.repeat(32) }, trusted))).message, /config expects cdcd/);
  });

  it('ignores .sig files where no signature is required (the default, or a plugin opting out)', async () => {
    const file = pluginCopy();
    writeSig(file, 'someone-else', OTHER.privateKey);
    await servesHello(config({ path: file }, trusted));
    await servesHello(config({ path: file, require_signature: false }, { ...trusted, require_signature: true }));
  });
});

describe('plugin integrity: config validation', () => {
  it('sha256 must be 64 hex characters', () => {
    assert.match(configError(config({ path: 'x.wasm', sha256: 'abc' })), /plugins\[0\]\.sha256: expected the file's sha256 as 64 hex characters/);
    assert.match(configError(config({ path: 'x.wasm', sha256: `sha256:${HELLO_SHA}` })), /plugins\[0\]\.sha256/);
  });

  it('require_signature without trusted_keys is an error naming both', () => {
    assert.match(configError(config({ path: 'x.wasm' }, { require_signature: true })), /^ {2}require_signature: is true but trusted_keys is empty/m);
    assert.match(configError(config({ path: 'x.wasm', require_signature: true })), /plugins\[0\]\.require_signature: is true but trusted_keys is empty/);
  });

  it('a malformed key or key id is an error at its JSON path', () => {
    assert.match(configError({ trusted_keys: { release: 'not-a-key' } }), /trusted_keys\.release: expected an Ed25519 public key as base64 of its 32 raw bytes/);
    // 31 bytes, and a PEM: neither is the raw 32-byte form.
    assert.match(configError({ trusted_keys: { release: Buffer.alloc(31).toString('base64') } }), /trusted_keys\.release/);
    assert.match(configError({ trusted_keys: { 'bad id': RELEASE.publicKey } }), /trusted_keys.*key ids use letters/);
  });

  it('takes keys from the environment ("env.NAME")', () => {
    const cfg = parseConfig({ trusted_keys: { release: 'env.RELEASE_KEY' } }, { baseDir: ROOT, env: { RELEASE_KEY: RELEASE.publicKey } });
    assert.equal(cfg.trusted_keys.release, RELEASE.publicKey);
    assert.equal(cfg.require_signature, false, 'signatures are optional by default');
  });
});

/** Runs the real CLI to completion and returns its exit code and output. */
function cli(args: string[], cwd = tmp): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('sandgate keygen, sign and hash', () => {
  it('make a key, sign a plugin and pin its hash that the gateway then loads', async () => {
    const dir = mkdtempSync(path.join(tmp, 'cli-'));
    const keyFile = path.join(dir, 'release.key');
    const gen = await cli(['keygen', '--out', keyFile]);
    assert.equal(gen.code, 0, gen.stderr);
    assert.equal(statSync(keyFile).mode & 0o777, 0o600, 'the private key is readable by its owner only');
    // stdout is exactly a trusted_keys entry; the id defaults to the key file's name.
    const trustedKeys = JSON.parse(`{${gen.stdout}}`) as Record<string, string>;
    assert.deepEqual(Object.keys(trustedKeys), ['release']);

    const again = await cli(['keygen', '--out', keyFile]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already exists; refusing to overwrite/);

    const file = path.join(dir, 'hello.wasm');
    copyFileSync(samplePlugin('hello-world'), file);
    const signed = await cli(['sign', file, '--key', keyFile]);
    assert.equal(signed.code, 0, signed.stderr);
    assert.match(readFileSync(`${file}.sig`, 'utf8'), /^ed25519:release:[A-Za-z0-9+/]{86}==\n$/);

    const hashed = await cli(['hash', file]);
    assert.equal(hashed.code, 0, hashed.stderr);
    const { sha256 } = JSON.parse(`{${hashed.stdout}}`) as { sha256: string };
    assert.equal(sha256, HELLO_SHA);

    await servesHello({ runtime: { workers: 1 }, trusted_keys: trustedKeys, require_signature: true, plugins: [{ name: 'hello', path: file, sha256 }] });

    // Signed by a second key the config does not trust: refused.
    const otherKey = path.join(dir, 'other.key');
    assert.equal((await cli(['keygen', '--out', otherKey, '--id', 'release'])).code, 0);
    assert.equal((await cli(['sign', file, '--key', otherKey])).code, 0);
    const e = await refused({ runtime: { workers: 1 }, trusted_keys: trustedKeys, require_signature: true, plugins: [{ name: 'hello', path: file }] });
    assert.equal(e.code, ErrorCode.pluginIntegrityFailed);
  });

  it('explain themselves with --help and refuse bad arguments with exit code 2', async () => {
    for (const command of ['keygen', 'sign', 'hash']) {
      const help = await cli([command, '--help']);
      assert.equal(help.code, 0);
      assert.match(help.stdout, new RegExp(`^usage: sandgate ${command}`));
    }
    assert.match((await cli(['--help'])).stdout, /sandgate keygen.*\n.*sandgate sign FILE --key KEYFILE\n.*sandgate hash FILE/);
    const noKey = await cli(['sign', pluginCopy()]);
    assert.equal(noKey.code, 2);
    assert.match(noKey.stderr, /--key KEYFILE is required/);
    const unknown = await cli(['frobnicate']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command "frobnicate"/);
    const missing = await cli(['hash', path.join(tmp, 'nope.wasm')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /cannot read file .*nope\.wasm: no such file/);
    assert.equal(existsSync(path.join(tmp, 'sandgate-signing.key')), false, 'nothing written by the refused commands');
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encode } from '../host/abi/codec.js';
import { ErrorCode, GatewayError } from '../host/errors/codes.js';
import { createLogger } from '../host/log/logger.js';
import { CtxKey, RequestContext } from '../host/pipeline/context.js';

// The request context's size limit (limits.max_context_bytes): what a patch
// would leave is counted, and a patch over the limit changes nothing.

const log = createLogger('silent');
const LIMIT = 1024;
/** What one key takes in the count: its UTF-8 bytes plus its value encoded. */
const sizeOf = (key: string, value: unknown) => Buffer.byteLength(key) + encode(value).length;

describe('RequestContext size limit', () => {
  it('counts keys and encoded values that plugins set, not the gateway’s own keys', () => {
    const ctx = new RequestContext('rid-1', LIMIT);
    ctx.setReserved(CtxKey.provider, 'x'.repeat(5000));
    ctx.apply({ 'p.a': 'hello', 'p.b': [1, 2, 3] }, 'p', log);
    assert.equal(ctx.size, sizeOf('p.a', 'hello') + sizeOf('p.b', [1, 2, 3]));
  });

  it('a key set again counts its new size only; nil frees it', () => {
    const ctx = new RequestContext('rid-2', LIMIT);
    const big = 'y'.repeat(700); // twice would be over the limit, once is not
    ctx.apply({ 'p.big': big }, 'p', log);
    ctx.apply({ 'p.big': big }, 'p', log);
    assert.equal(ctx.size, sizeOf('p.big', big));
    ctx.apply({ 'p.big': null }, 'p', log);
    assert.equal(ctx.size, 0);
    assert.equal(ctx.get('p.big'), undefined);
  });

  it('a patch that would go over the limit is plugin_bad_output naming the limit, and none of it is applied', () => {
    const ctx = new RequestContext('rid-3', LIMIT);
    ctx.apply({ 'p.keep': 'kept', 'p.gone': 'still here' }, 'p', log);
    const before = { ...ctx.values };
    const size = ctx.size;
    assert.throws(
      () => ctx.apply({ 'p.small': 1, 'p.gone': null, 'p.huge': 'z'.repeat(2000) }, 'p', log),
      (e: unknown) =>
        e instanceof GatewayError && e.code === ErrorCode.pluginBadOutput && /over the limit of 1024 \(limits\.max_context_bytes\); none of it was applied/.test(e.message),
    );
    assert.deepEqual({ ...ctx.values }, before);
    assert.equal(ctx.size, size);
  });

  it('a context at its limit still takes a patch that makes it smaller', () => {
    const ctx = new RequestContext('rid-4', LIMIT);
    const fill = 'f'.repeat(LIMIT - Buffer.byteLength('p.fill') - 3); // str16 header: 3 bytes
    ctx.apply({ 'p.fill': fill }, 'p', log);
    assert.equal(ctx.size, LIMIT);
    ctx.apply({ 'p.fill': 'small' }, 'p', log);
    assert.equal(ctx.size, sizeOf('p.fill', 'small'));
  });
});

describe('RequestContext encoded once per change', () => {
  it('is always the encoding of what it holds now', () => {
    const ctx = new RequestContext('rid-enc', 1 << 16);
    const same = () => assert.deepEqual(Buffer.from(ctx.encoded().bytes), Buffer.from(encode(ctx.values)));
    same();
    assert.equal(ctx.encoded(), ctx.encoded(), 'unchanged: the same bytes, not encoded again');
    ctx.apply({ 'a.b': 1 }, 'p', log);
    same();
    ctx.setReserved(CtxKey.streamEnd, true);
    same();
    ctx.apply({ 'a.b': null }, 'p', log);
    same();
    const before = ctx.encoded();
    ctx.apply({}, 'p', log);
    assert.equal(ctx.encoded(), before, 'an empty patch changes nothing');
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ChatBody, isChatBody } from '../host/gateway/chat-completions.js';

// The quick check of a chat body must never let through what the schema
// refuses (the schema then gives the client its error), and should take every
// ordinary body (else every request pays for the schema again).

const anyValue = fc.oneof(fc.constant(undefined), fc.constant(null), fc.boolean(), fc.integer(), fc.string(), fc.constant([]), fc.array(fc.string(), { maxLength: 2 }), fc.dictionary(fc.string(), fc.string(), { maxKeys: 2 }));
const message = fc.oneof(fc.record({ role: anyValue, content: anyValue }, { requiredKeys: [] }), anyValue);
const body = fc.oneof(
  fc.record({ model: anyValue, messages: fc.oneof(fc.array(message, { maxLength: 3 }), anyValue), fallbacks: anyValue, stream: anyValue, temperature: anyValue }, { requiredKeys: [] }),
  anyValue,
);

describe('the quick chat body check', () => {
  it('says yes only to what the schema accepts', () => {
    fc.assert(
      fc.property(body, (b) => {
        if (isChatBody(b)) assert.ok(ChatBody.safeParse(b).success, JSON.stringify(b));
      }),
      { numRuns: 20_000 },
    );
  });

  it('says yes to ordinary bodies', () => {
    for (const b of [
      { model: 'mock/echo', messages: [{ role: 'user', content: 'hi' }] },
      { model: 'openai/gpt-4o', messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: [{ type: 'text', text: 'hi' }] }], stream: true, temperature: 0.2 },
      { model: 'a/b', messages: [{ role: 'assistant', content: null, tool_calls: [] }], fallbacks: ['c/d'] },
    ]) {
      assert.ok(isChatBody(b), JSON.stringify(b));
      assert.ok(ChatBody.safeParse(b).success);
    }
  });
});

package pdk

import (
	"encoding/hex"
	"errors"
	"testing"
)

// What each runner sends back for each kind of result (the native twin of
// what the gateway sees; the integration tests run the same through it).

func vectorBytes(t *testing.T, name string) []byte {
	t.Helper()
	v, ok := loadVectors(t)[name]
	if !ok {
		t.Fatalf("no vector %q", name)
	}
	b, _ := hex.DecodeString(v.Hex)
	return b
}

func field(t *testing.T, out []byte, path ...string) Value {
	t.Helper()
	v, err := Decode(out)
	if err != nil {
		t.Fatalf("output is not MessagePack: %v (%x)", err, out)
	}
	for _, k := range path {
		m, ok := v.(*Map)
		if !ok {
			t.Fatalf("no %q in %v", k, toJSON(v))
		}
		v, _ = m.Get(k)
	}
	return v
}

func TestTransportPreShortCircuitMatchesTheVector(t *testing.T) {
	out := HandleTransportPre(vectorBytes(t, "transport-pre-input"), func(ctx *Context, req *HttpRequest) (*HttpResponse, error) {
		ctx.Set("auth.denied", true)
		req.SetHeader("x-ignored", "a short-circuit sends no request changes")
		return TextResponse(403, "forbidden ⛔"), nil
	})
	if want := vectorBytes(t, "transport-pre-output-short-circuit"); string(out) != string(want) {
		t.Fatalf("got  %x\nwant %x", out, want)
	}
}

func TestTransportPreErrors(t *testing.T) {
	out := HandleTransportPre(vectorBytes(t, "transport-pre-input"), func(*Context, *HttpRequest) (*HttpResponse, error) {
		return nil, errors.New("plain Go error")
	})
	if msg := field(t, out, "error", "message"); msg != "plain Go error" {
		t.Errorf("message %v", msg)
	}
	if st := field(t, out, "error", "status"); st != nil {
		t.Errorf("a plain error leaves the status to the host's default, got %v", st)
	}
	wrapped := HandleTransportPre(vectorBytes(t, "transport-pre-input"), func(*Context, *HttpRequest) (*HttpResponse, error) {
		return nil, errors.Join(errors.New("context"), Reject(429, "slow_down", "too many"))
	})
	if st := field(t, wrapped, "error", "status"); st != int64(429) {
		t.Errorf("a wrapped HookError keeps its status, got %v", st)
	}
}

func TestContextReservedKeysAndReads(t *testing.T) {
	out := HandleTransportPre(vectorBytes(t, "transport-pre-input"), func(ctx *Context, req *HttpRequest) (*HttpResponse, error) {
		if ctx.RequestID() != "r1" {
			t.Errorf("request id %q", ctx.RequestID())
		}
		ctx.Set(KeyRequestID, "forged")
		ctx.Set("a", int64(1))
		ctx.Delete("b")
		if n, _ := ctx.GetInt("a"); n != 1 {
			t.Error("a read sees this call's change")
		}
		if ctx.Has("b") {
			t.Error("a deleted key is gone")
		}
		return nil, nil
	})
	patch := field(t, out, "ctx").(*Map)
	if patch.Has(KeyRequestID) {
		t.Error("a reserved key was sent")
	}
	if v, ok := patch.Get("b"); !ok || v != nil {
		t.Error("a deleted key is sent as nil")
	}
}

func TestStreamChunkOutcomes(t *testing.T) {
	in := vectorBytes(t, "chunk-input")
	if out := HandleStreamChunk(in, func(*Context, *Map) (bool, error) { return true, nil }); field(t, out, "drop") != true {
		t.Error("drop")
	}
	out := HandleStreamChunk(in, func(ctx *Context, chunk *Map) (bool, error) {
		if ctx.StreamEnd() {
			t.Error("stream_end is false in the vector")
		}
		chunk.Set("model", "changed")
		return false, nil
	})
	if field(t, out, "chunk", "model") != "changed" {
		t.Error("a chunk changed in place is sent")
	}
	out = HandleStreamChunk(in, func(*Context, *Map) (bool, error) { return false, Reject(400, "bad_words", "no") })
	if field(t, out, "error", "code") != "bad_words" || field(t, out, "chunk") != nil {
		t.Error("an error is sent alone")
	}
}

func TestPostLlmOutcomes(t *testing.T) {
	in := vectorBytes(t, "llm-post-input-response")
	out := HandlePostLlm(in, func(ctx *Context, resp *LlmResponse, e *LlmError) (*LlmResponse, error) {
		if resp.Text() != "Hi! How can I help? 🙂" || e != nil {
			t.Errorf("decoded %q %v", resp.Text(), e)
		}
		resp.Choices[0].Message.SetText("edited")
		return resp, nil
	})
	if field(t, out, "response", "system_fingerprint") != "fp_44709d6fcb" {
		t.Error("unknown keys are kept")
	}
	if text := field(t, out, "response", "choices").([]Value)[0].(*Map); text == nil {
		t.Error("choices")
	}
	out = HandlePostLlm(in, func(*Context, *LlmResponse, *LlmError) (*LlmResponse, error) {
		return nil, &LlmError{Message: "nope", Status: 451}
	})
	if field(t, out, "error", "status") != int64(451) {
		t.Error("a response turned into an error")
	}
	out = HandlePostLlm(vectorBytes(t, "llm-post-input-error-nil-fallbacks"), func(ctx *Context, resp *LlmResponse, e *LlmError) (*LlmResponse, error) {
		if e == nil || e.Status != 504 || e.AllowFallbacks != nil {
			t.Errorf("error decoded as %+v", e)
		}
		return NewTextResponse("cache", "recovered"), nil
	})
	if field(t, out, "response", "model") != "cache" || field(t, out, "error") != nil {
		t.Error("an error recovered with a response")
	}
}

func TestInitRefusal(t *testing.T) {
	out := HandleInit(vectorBytes(t, "init-input"), func(Value, string) (InitOptions, error) {
		return InitOptions{}, errors.New("config.keys is missing")
	})
	if field(t, out, "error") != "config.keys is missing" {
		t.Error("init error")
	}
	if out := HandleInit(vectorBytes(t, "init-input"), func(Value, string) (InitOptions, error) { return InitOptions{}, nil }); out != nil {
		t.Errorf("defaults answer nothing, got %x", out)
	}
}

func TestInterceptor(t *testing.T) {
	body := NewMap()
	body.Set("model", "gpt")
	in := NewMap()
	in.Set("url", "/v1/chat/completions")
	headers := NewMap()
	headers.Set("content-type", "application/json")
	in.Set("headers", headers)
	in.Set("body", body)
	out := HandleTransportInterceptor(Encode(in), func(ctx *Context, req *InterceptorRequest) error {
		if v, _ := req.Header("Content-Type"); v != "application/json" || req.URL != "/v1/chat/completions" {
			t.Errorf("decoded %q %q", v, req.URL)
		}
		req.SetHeader("x-legacy", "1")
		req.Body.Set("model", "gpt-4o")
		return nil
	})
	if field(t, out, "headers", "content-type") != "application/json" || field(t, out, "headers", "x-legacy") != "1" {
		t.Error("the interceptor sends the whole header map")
	}
	if field(t, out, "body", "model") != "gpt-4o" {
		t.Error("body")
	}
}

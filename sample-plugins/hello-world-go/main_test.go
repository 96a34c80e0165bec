package main

import (
	"testing"

	pdk "sandgate.dev/pdk"
)

// Runs natively (go test): the hooks are called through the kit as the
// gateway calls them, with envelopes built here, and their outputs decoded.
func TestPreHookSetsHeaderAndContext(t *testing.T) {
	input := pdk.Encode(envelope(
		"ctx", kv("sandgate.request_id", "r1"),
		"req", kv("method", "POST", "path", "/v1/chat/completions", "query", kv(), "headers", kv("content-type", "application/json")),
	))
	out, err := pdk.Decode(pdk.HandleTransportPre(input, HTTPTransportPreHook))
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*pdk.Map)
	ctx, _ := got.Get("ctx")
	if v, _ := ctx.(*pdk.Map).Get("hello-world.greeting"); v != "pre-hook-value" {
		t.Errorf("context patch: %v", v)
	}
	req, _ := got.Get("req")
	headers, _ := req.(*pdk.Map).Get("headers")
	if v, _ := headers.(*pdk.Map).Get("x-custom-header"); v != "custom-value" {
		t.Errorf("request header: %v", v)
	}
}

func TestPostHookReadsContextBack(t *testing.T) {
	input := pdk.Encode(envelope(
		"ctx", kv("hello-world.greeting", "pre-hook-value"),
		"req", kv("method", "POST", "path", "/", "query", kv(), "headers", kv()),
		"resp", kv("status", 200, "headers", kv()),
	))
	out, _ := pdk.Decode(pdk.HandleTransportPost(input, HTTPTransportPostHook))
	resp, _ := out.(*pdk.Map).Get("resp")
	headers, _ := resp.(*pdk.Map).Get("headers")
	for name, want := range map[string]string{"x-processed-by": "hello-world", "x-hello-context": "pre-hook-value"} {
		if v, _ := headers.(*pdk.Map).Get(name); v != want {
			t.Errorf("%s: %v", name, v)
		}
	}
}

func TestInitAsksForNoBodiesAndNoDeltas(t *testing.T) {
	out, _ := pdk.Decode(pdk.HandleInit(pdk.Encode(envelope("abi", 1, "name", "hello-world", "config", kv())), Init))
	for _, key := range []string{"request_body", "response_body", "stream_deltas"} {
		if v, _ := out.(*pdk.Map).Get(key); v != false {
			t.Errorf("%s: %v", key, v)
		}
	}
}

// kv builds a map from key, value pairs (in order).
func kv(pairs ...any) *pdk.Map {
	m := pdk.NewMap()
	for i := 0; i+1 < len(pairs); i += 2 {
		m.Set(pairs[i].(string), pairs[i+1])
	}
	return m
}

func envelope(pairs ...any) *pdk.Map { return kv(pairs...) }

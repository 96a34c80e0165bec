// auth: lets through only requests that carry one of the API keys of its
// config, as "Authorization: Bearer <key>" or in a header of the config's
// choosing (default x-api-key). Keys are compared in constant time, every
// key every time, so neither timing nor length tells a caller how close a
// guess was.
//
// A request without a valid key gets 401:
//   - on the chat route, from pre_llm_hook as an LLM error with
//     allow_fallbacks: false, so no fallback is tried for it, and the post
//     LLM hooks of other plugins (logging, metrics) see the refusal;
//   - on any other route (/v1/models, ...), from http_transport_pre_hook.
//
// The transport hook, which alone sees headers, records the verdict in the
// context (the key's name, never the key) and strips the credential headers
// so that no later plugin and no upstream sees them.
//
// Build (from this folder):
//
//	GOOS=wasip1 GOARCH=wasm go build -trimpath -buildmode=c-shared -o build/auth.wasm .
package main

import (
	"errors"
	"strconv"
	"strings"

	pdk "sandgate.dev/pdk"
)

const (
	ctxPrincipal = "auth.principal" // the name of the key that matched
	ctxDenied    = "auth.denied"    // why the request was refused
)

type apiKey struct{ name, key string }

var (
	keys   []apiKey
	header = "x-api-key"
	strip  = true
)

func usage(what string) error {
	return errors.New(`auth: ` + what + ` (config: {"keys": ["<key>" | {"name": "<who>", "key": "<key>"}, ...], "header": "x-api-key", "strip": true})`)
}

// Init reads the keys from the plugin's config.
func Init(config pdk.Value, _ string) (pdk.InitOptions, error) {
	cfg, ok := pdk.AsMap(config)
	if !ok {
		return pdk.InitOptions{}, usage("config must be an object with a keys array")
	}
	list, _ := cfg.Get("keys")
	entries, ok := list.([]pdk.Value)
	if !ok || len(entries) == 0 {
		return pdk.InitOptions{}, usage("config.keys must be a non-empty array")
	}
	keys = keys[:0]
	for i, e := range entries {
		k := apiKey{name: "key-" + strconv.Itoa(i)}
		switch v := e.(type) {
		case string:
			k.key = v
		case *pdk.Map:
			k.key, _ = getString(v, "key")
			if name, ok := getString(v, "name"); ok && name != "" {
				k.name = name
			}
		}
		if len(k.key) < 8 {
			return pdk.InitOptions{}, usage("config.keys[" + strconv.Itoa(i) + "] must be a key of at least 8 characters")
		}
		keys = append(keys, k)
	}
	if h, present := cfg.Get("header"); present {
		s, ok := h.(string)
		if !ok || !isHeaderName(s) {
			return pdk.InitOptions{}, usage("config.header must be a header name (letters, digits, - and _)")
		}
		header = strings.ToLower(s)
	}
	if s, present := cfg.Get("strip"); present {
		b, ok := s.(bool)
		if !ok {
			return pdk.InitOptions{}, usage("config.strip must be true or false")
		}
		strip = b
	}
	pdk.LogInfo("auth: " + strconv.Itoa(len(keys)) + " key(s), header " + header)
	// Only headers matter here: never send bodies.
	return pdk.InitOptions{NoRequestBody: true, NoResponseBody: true}, nil
}

func isHeaderName(s string) bool {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return s != ""
}

func getString(m *pdk.Map, key string) (string, bool) {
	v, _ := m.Get(key)
	s, ok := v.(string)
	return s, ok
}

// constantTimeEqual compares in time that depends only on the lengths, and
// folds a length difference into the result instead of returning early.
func constantTimeEqual(a, b string) bool {
	n := len(a)
	if len(b) > n {
		n = len(b)
	}
	diff := len(a) ^ len(b)
	for i := 0; i < n; i++ {
		var x, y byte
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		diff |= int(x ^ y)
	}
	return diff == 0
}

// match returns the name of the key presented, checking every key.
func match(presented string) (string, bool) {
	found := -1
	for i, k := range keys {
		if constantTimeEqual(presented, k.key) && found < 0 {
			found = i
		}
	}
	if found < 0 {
		return "", false
	}
	return keys[found].name, true
}

// credential is the key the request presents, if any.
func credential(req *pdk.HttpRequest) string {
	if v, ok := req.Header(header); ok && v != "" {
		return strings.TrimSpace(v)
	}
	if v, ok := req.Header("authorization"); ok {
		if scheme, token, found := strings.Cut(strings.TrimSpace(v), " "); found && strings.EqualFold(scheme, "bearer") {
			return strings.TrimSpace(token)
		}
	}
	return ""
}

func isChatRoute(path string) bool { return strings.HasSuffix(path, "/chat/completions") }

func HTTPTransportPreHook(ctx *pdk.Context, req *pdk.HttpRequest) (*pdk.HttpResponse, error) {
	presented := credential(req)
	if strip {
		req.RemoveHeader("authorization")
		req.RemoveHeader(header)
	}
	reason := "missing API key (send Authorization: Bearer <key> or " + header + ": <key>)"
	if presented != "" {
		if name, ok := match(presented); ok {
			ctx.Set(ctxPrincipal, name)
			return nil, nil
		}
		reason = "invalid API key"
	}
	pdk.LogWarn("auth: refused " + req.Method + " " + req.Path + ": " + reason)
	if isChatRoute(req.Path) {
		ctx.Set(ctxDenied, reason) // pre_llm_hook answers, without fallbacks
		return nil, nil
	}
	resp := pdk.JSONResponse(401, `{"error":{"message":"`+reason+`","type":"auth_error","code":"unauthorized"}}`)
	resp.SetHeader("www-authenticate", `Bearer realm="sandgate"`)
	return resp, nil
}

func PreLLMHook(ctx *pdk.Context, req *pdk.LlmRequest) (*pdk.LlmResponse, error) {
	if _, ok := ctx.GetString(ctxPrincipal); ok {
		return nil, nil
	}
	reason, ok := ctx.GetString(ctxDenied)
	if !ok {
		reason = "no credentials were checked for this request"
	}
	return nil, &pdk.LlmError{Message: reason, Type: "auth_error", Code: "unauthorized", Status: 401, AllowFallbacks: pdk.Bool(false)}
}

//go:wasmexport init
func initExport() int32 { return pdk.RunInit(Init) }

//go:wasmexport get_name
func getNameExport() int32 { return pdk.RunGetName("auth") }

//go:wasmexport http_transport_pre_hook
func transportPreExport() int32 { return pdk.RunTransportPre(HTTPTransportPreHook) }

//go:wasmexport pre_llm_hook
func preLLMExport() int32 { return pdk.RunPreLlm(PreLLMHook) }

func main() {}

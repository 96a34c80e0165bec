package pdk

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"
)

// The shared vectors (plugin-pdk/conformance/vectors.json): every kit decodes
// and re-encodes each of them, so a drift in any language fails CI.

type vector struct {
	Name      string          `json:"name"`
	Hex       string          `json:"hex"`
	Value     json.RawMessage `json:"value"`
	Canonical string          `json:"canonical"`
}

func loadVectors(t *testing.T) map[string]vector {
	raw, err := os.ReadFile("../conformance/vectors.json")
	if err != nil {
		t.Fatalf("reading the conformance vectors: %v", err)
	}
	var list []vector
	if err := json.Unmarshal(raw, &list); err != nil {
		t.Fatalf("parsing vectors.json: %v", err)
	}
	if len(list) < 20 {
		t.Fatalf("only %d vectors in vectors.json", len(list))
	}
	byName := map[string]vector{}
	for _, v := range list {
		byName[v.Name] = v
	}
	return byName
}

// toJSON turns a decoded Value into the vectors' JSON form (bin as {"$bin": hex}).
func toJSON(v Value) any {
	switch x := v.(type) {
	case *Map:
		m := map[string]any{}
		x.Range(func(k string, e Value) bool { m[k] = toJSON(e); return true })
		return m
	case []Value:
		a := make([]any, len(x))
		for i, e := range x {
			a[i] = toJSON(e)
		}
		return a
	case []byte:
		return map[string]any{"$bin": hex.EncodeToString(x)}
	}
	return v
}

// canonicalJSON re-marshals JSON so that two texts of the same value compare
// equal (sorted keys; numbers kept as written, so 5000000000 is exact).
func canonicalJSON(t *testing.T, raw []byte) string {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("bad JSON: %v", err)
	}
	out, _ := json.Marshal(v)
	return string(out)
}

func sameValue(t *testing.T, got Value, want json.RawMessage) bool {
	g, err := json.Marshal(toJSON(got))
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return canonicalJSON(t, g) == canonicalJSON(t, want)
}

func TestEveryVectorDecodesAndReencodes(t *testing.T) {
	vectors := loadVectors(t)
	for _, v := range vectors {
		t.Run(v.Name, func(t *testing.T) {
			b, err := hex.DecodeString(v.Hex)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Decode(b)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !sameValue(t, got, v.Value) {
				g, _ := json.Marshal(toJSON(got))
				t.Fatalf("decoded value differs:\n got %s\nwant %s", g, v.Value)
			}
			again := Encode(got)
			if v.Canonical == "" {
				if !bytes.Equal(again, b) {
					t.Fatalf("re-encoded bytes differ:\n got %x\nwant %s", again, v.Hex)
				}
				return
			}
			// A wider integer encoding: the generic tree keeps a float64 a
			// float64, so only the value must come back.
			back, _ := Decode(again)
			if !sameValue(t, back, v.Value) {
				t.Fatalf("re-encoded value differs")
			}
		})
	}
}

// The typed encoder knows created and usage are integers: any encoding of
// them re-encodes to the canonical vector's bytes (ABI.md §6).
func TestTypedPostLlmInputReencodesCanonically(t *testing.T) {
	vectors := loadVectors(t)
	n := 0
	for _, v := range vectors {
		if v.Canonical == "" {
			continue
		}
		n++
		t.Run(v.Name, func(t *testing.T) {
			canon := vectors[v.Canonical]
			want, _ := hex.DecodeString(canon.Hex)
			b, _ := hex.DecodeString(v.Hex)
			var ctx *Context
			var resp *LlmResponse
			var respBytes []byte
			envelope(b, func(rd *reader, key []byte) {
				switch string(key) {
				case "ctx":
					ctx = decodeCtx(rd)
				case "response":
					start := rd.pos
					resp = decodeLlmResponse(rd)
					respBytes = rd.b[start:rd.pos]
				default:
					rd.skip()
				}
			})
			if resp == nil || resp.Created != 1732240000 || resp.Usage.TotalTokens != 16 {
				t.Fatalf("typed decode: %+v", resp)
			}
			if len(respBytes) == 0 || ctx.RequestID() != "r5" {
				t.Fatal("envelope not read whole")
			}
			w := &writer{}
			w.mapHeader(2)
			w.str("ctx")
			w.strMap(ctx.all())
			w.str("response")
			resp.encode(w)
			if !bytes.Equal(w.b, want) {
				t.Fatalf("typed re-encode differs from %s:\n got %x\nwant %x", canon.Name, w.b, want)
			}
		})
	}
	if n != 3 {
		t.Fatalf("expected the 3 canonical-integer vectors, found %d", n)
	}
}

// Every typed envelope of the vectors decodes and re-encodes through the
// kit's own types to the vector's bytes.
func TestTypedEnvelopesReencodeToTheVectors(t *testing.T) {
	vectors := loadVectors(t)
	bytesOf := func(name string) []byte {
		v, ok := vectors[name]
		if !ok {
			t.Fatalf("no vector %q", name)
		}
		b, _ := hex.DecodeString(v.Hex)
		return b
	}
	check := func(name string, got []byte) {
		t.Helper()
		if want := bytesOf(name); !bytes.Equal(got, want) {
			t.Errorf("%s: got %x\nwant %x", name, got, want)
		}
	}

	// transport-pre-input -> the handler of ABI.md §6 -> transport-pre-output.
	check("transport-pre-output", HandleTransportPre(bytesOf("transport-pre-input"), func(ctx *Context, req *HttpRequest) (*HttpResponse, error) {
		if v, _ := req.Header("X-A"); v != "1" || req.Method != "POST" || req.Path != "/v1/chat" || req.Body != nil {
			t.Errorf("request decoded as %+v", req)
		}
		ctx.Set("greeting", "hi")
		req.SetHeader("x-custom-header", "custom-value")
		return nil, nil
	}))

	check("init-output", HandleInit(bytesOf("init-input"), func(config Value, name string) (InitOptions, error) {
		m, _ := AsMap(config)
		if g, _ := m.Get("greeting"); g != "hi" || name != "hello-world" {
			t.Errorf("init got %v %q", toJSON(config), name)
		}
		return InitOptions{NoRequestBody: true, NoResponseBody: true, NoStreamDeltas: true}, nil
	}))

	check("llm-pre-output-patch", HandlePreLlm(bytesOf("llm-pre-input"), func(ctx *Context, req *LlmRequest) (*LlmResponse, error) {
		ctx.Set("guard.checked", true)
		req.Model = "gpt-4o"
		req.SetParam("temperature", 0.2)
		req.RemoveParam("max_tokens")
		return nil, nil
	}))

	check("llm-pre-output-error-no-fallbacks", HandlePreLlm(bytesOf("llm-pre-input"), func(ctx *Context, req *LlmRequest) (*LlmResponse, error) {
		ctx.Set("guard.verdict", "deny")
		return nil, &LlmError{Message: "blocked by policy", Type: "policy_error", Code: "content_blocked", Status: 403, AllowFallbacks: Bool(false)}
	}))

	check("transport-post-output-error", HandleTransportPost(bytesOf("transport-post-input-body-utf8"), func(ctx *Context, req *HttpRequest, resp *HttpResponse) error {
		if n, _ := ctx.GetString("user.name"); n != "Zoë 😀" {
			t.Errorf("utf-8 context value read as %q", n)
		}
		return Reject(502, "bad_gateway", "upstream said no")
	}))

	// Handlers that change nothing answer nothing. (The -uint64, -int64 and -float64 vectors would
	// answer: its bytes differ from the typed re-encoding, and the host then
	// decides by value that nothing changed, ABI.md §5.5.)
	for _, name := range []string{"llm-post-input-response", "llm-post-input-error-nil-fallbacks"} {
		if out := HandlePostLlm(bytesOf(name), func(ctx *Context, resp *LlmResponse, e *LlmError) (*LlmResponse, error) {
			return resp, e
		}); out != nil {
			t.Errorf("%s: an unchanged post_llm_hook answered %x", name, out)
		}
	}
	if out := HandleStreamChunk(bytesOf("chunk-input"), func(ctx *Context, chunk *Map) (bool, error) { return false, nil }); out != nil {
		t.Errorf("an unchanged chunk answered %x", out)
	}
	if out := HandlePreLlm(bytesOf("llm-pre-input"), func(ctx *Context, req *LlmRequest) (*LlmResponse, error) { return nil, nil }); out != nil {
		t.Errorf("an unchanged pre_llm_hook answered %x", out)
	}

	// Messages read but not changed: nothing; changed in place: sent back whole.
	if out := HandlePreLlm(bytesOf("llm-pre-input"), func(ctx *Context, req *LlmRequest) (*LlmResponse, error) {
		if req.LastUserText() == "" {
			t.Error("no user message decoded")
		}
		return nil, nil
	}); out != nil {
		t.Errorf("messages read, not changed, answered %x", out)
	}
	out := HandlePreLlm(bytesOf("llm-pre-input"), func(ctx *Context, req *LlmRequest) (*LlmResponse, error) {
		ms := req.Messages()
		ms[len(ms)-1].SetText("changed")
		return nil, nil
	})
	v, err := Decode(out)
	if err != nil {
		t.Fatal(err)
	}
	reqPatch, _ := v.(*Map).Get("req")
	msgs, _ := reqPatch.(*Map).Get("messages")
	list, _ := msgs.([]Value)
	if len(list) == 0 {
		t.Fatalf("no messages in %v", toJSON(v))
	}
	if c, _ := list[len(list)-1].(*Map).Get("content"); c != "changed" {
		t.Errorf("last message sent back as %v", toJSON(list[len(list)-1]))
	}
}

package pdk

import "errors"

// Each hook has two entry points:
//
//   - RunX(handler) reads the call's input from the host, runs the handler and
//     writes its output. Call it from the //go:wasmexport function of the hook.
//   - HandleX(input, handler) does the same on bytes and returns the output
//     bytes (nil = "continue, nothing changed"). Tests call it natively.
//
// A handler returns only what it decides; the kit sends back only what
// changed (ABI.md §3: an empty output means continue). A panic in a handler
// is not recovered: Go prints "panic: <message>" to stderr and the call
// fails as plugin_trap with that line in the gateway's failure log (ABI.md
// §7.2); the instance is then replaced.

// InitOptions is what init answers besides an error. The zero value keeps
// the defaults (bodies are sent, post_llm_hook sees streamed deltas).
type InitOptions struct {
	// NoRequestBody keeps HttpRequest.Body out of the transport hooks.
	NoRequestBody bool
	// NoResponseBody keeps HttpResponse.Body out of http_transport_post_hook.
	NoResponseBody bool
	// NoStreamDeltas: post_llm_hook is never called with a streamed delta, so a
	// stream costs the plugin nothing per chunk; it still gets full responses
	// and errors (ABI.md §5.2).
	NoStreamDeltas bool
}

// Handler types, one per hook.
type (
	// InitHandler gets the plugin's "config" from config.json; an error refuses the load with its text.
	InitHandler func(config Value, name string) (InitOptions, error)
	// TransportPreHandler: return a response to short-circuit with it, an
	// error (a *HookError for status and code) to short-circuit with an error,
	// or (nil, nil) to continue with the request as changed.
	TransportPreHandler func(ctx *Context, req *HttpRequest) (*HttpResponse, error)
	// TransportPostHandler: return an error to answer with it instead, nil to continue.
	TransportPostHandler func(ctx *Context, req *HttpRequest, resp *HttpResponse) error
	// StreamChunkHandler: change chunk in place to replace it, return drop to
	// skip it, an error to end the stream with an error event.
	StreamChunkHandler func(ctx *Context, chunk *Map) (drop bool, err error)
	// PreLlmHandler: return a response to answer without calling the
	// provider, an error (a *LlmError for status, code and fallbacks) to fail
	// the attempt, or (nil, nil) to continue with the request as changed.
	PreLlmHandler func(ctx *Context, req *LlmRequest) (*LlmResponse, error)
	// PostLlmHandler gets the attempt's response or its error (one is nil).
	// Return them as they are (changed in place or not) to continue; another
	// response to replace the result (this recovers an error), or another
	// error to turn the result into an error.
	PostLlmHandler func(ctx *Context, resp *LlmResponse, llmErr *LlmError) (*LlmResponse, error)
	// InterceptorHandler is the legacy transport_interceptor: change the
	// headers or body in place, or return an error to short-circuit.
	InterceptorHandler func(ctx *Context, req *InterceptorRequest) error
)

func toHookError(err error) *HookError {
	var he *HookError
	if errors.As(err, &he) && he != nil {
		return he
	}
	return &HookError{Message: err.Error()}
}

func toLlmError(err error) *LlmError {
	var le *LlmError
	if errors.As(err, &le) && le != nil {
		return le
	}
	return &LlmError{Message: err.Error()}
}

// isNil is true for a nil error, typed nils included (a nil *LlmError
// returned as error is not == nil in Go).
func isNil(err error) bool {
	if err == nil {
		return true
	}
	switch e := err.(type) {
	case *LlmError:
		return e == nil
	case *HookError:
		return e == nil
	}
	return false
}

// envelope walks the top-level map of an input envelope.
// (key is a view of the input: switch on string(key) allocates nothing.)
func envelope(input []byte, field func(rd *reader, key []byte)) {
	if len(input) == 0 {
		return
	}
	rd := &reader{b: input}
	n := rd.mapHeader()
	for i := 0; i < n; i++ {
		field(rd, rd.keyBytes())
	}
}

func decodeCtx(rd *reader) *Context { return newContext(rd.span()) }

// outBuf is the output buffer reused across Run* calls (the host copies an
// output at once); Handle* called directly write into a fresh buffer.
var outBuf []byte

// send writes a Run* call's output and keeps its buffer for the next call.
func send(out []byte) int32 {
	writeOutput(out)
	if cap(out) > cap(outBuf) {
		outBuf = out[:0]
	}
	return 0
}

// output collects an output envelope; done returns nil when it is empty.
type output struct {
	w  writer
	at int
	k  int
}

func newOutput(ctx *Context, buf []byte) *output {
	o := &output{w: writer{b: buf}}
	o.at = o.w.beginMap()
	if ctx != nil && ctx.Changed() {
		o.w.str("ctx")
		o.w.strMap(&ctx.patch)
		o.k++
	}
	return o
}

func (o *output) done() []byte {
	if o.k == 0 {
		return nil
	}
	o.w.endMap(o.at, o.k)
	return o.w.b
}

// HandleInit runs an init handler on an InitInput envelope.
func HandleInit(input []byte, fn InitHandler) []byte {
	var config Value
	var name string
	envelope(input, func(rd *reader, key []byte) {
		switch string(key) {
		case "config":
			config = rd.value(0)
		case "name":
			name = rd.str()
		default:
			rd.skip()
		}
	})
	opts, err := fn(config, name)
	o := newOutput(nil, nil)
	if !isNil(err) {
		o.w.str("error")
		o.w.str(err.Error())
		o.k++
	}
	if opts.NoRequestBody {
		o.w.str("request_body")
		o.w.boolean(false)
		o.k++
	}
	if opts.NoResponseBody {
		o.w.str("response_body")
		o.w.boolean(false)
		o.k++
	}
	if opts.NoStreamDeltas {
		o.w.str("stream_deltas")
		o.w.boolean(false)
		o.k++
	}
	return o.done()
}

// RunInit is the body of the plugin's `init` export.
//
// @example
//
//	//go:wasmexport init
//	func initPlugin() int32 { return pdk.RunInit(onInit) }
func RunInit(fn InitHandler) int32 { writeOutput(HandleInit(readInput(), fn)); return 0 }

// RunGetName is the body of the `get_name` export: answers name.
func RunGetName(name string) int32 { writeOutput(Encode(name)); return 0 }

// RunCleanup is the body of the `cleanup` export. Cleanup may never run
// (a failed instance is dropped without it, ABI.md §3.1).
func RunCleanup(fn func()) int32 { fn(); return 0 }

// HandleTransportPre runs an http_transport_pre_hook handler on its input.
// It returns the output bytes (nil: continue, nothing changed).
func HandleTransportPre(input []byte, fn TransportPreHandler) []byte {
	return handleTransportPre(input, fn, nil)
}

func handleTransportPre(input []byte, fn TransportPreHandler, buf []byte) []byte {
	var ctx *Context
	var req *HttpRequest
	envelope(input, func(rd *reader, key []byte) {
		switch string(key) {
		case "ctx":
			ctx = decodeCtx(rd)
		case "req":
			req = decodeHttpRequest(rd)
		default:
			rd.skip()
		}
	})
	if ctx == nil {
		ctx = newContext(nil)
	}
	if req == nil {
		req = decodeHttpRequest(&reader{b: []byte{0x80}})
	}
	resp, err := fn(ctx, req)
	o := newOutput(ctx, buf)
	switch {
	case !isNil(err):
		o.w.str("error")
		toHookError(err).encode(&o.w)
		o.k++
	case resp != nil:
		o.w.str("response")
		resp.encodeFull(&o.w)
		o.k++
	default:
		mark := len(o.w.b)
		o.w.str("req")
		if req.encodePatch(&o.w) {
			o.k++
		} else {
			o.w.b = o.w.b[:mark]
		}
	}
	return o.done()
}

// RunTransportPre is the body of the `http_transport_pre_hook` export.
func RunTransportPre(fn TransportPreHandler) int32 {
	return send(handleTransportPre(readInput(), fn, outBuf[:0]))
}

// HandleTransportPost runs an http_transport_post_hook handler on its input.
// It returns the output bytes (nil: continue, nothing changed).
func HandleTransportPost(input []byte, fn TransportPostHandler) []byte {
	return handleTransportPost(input, fn, nil)
}

func handleTransportPost(input []byte, fn TransportPostHandler, buf []byte) []byte {
	var ctx *Context
	var req *HttpRequest
	var resp *HttpResponse
	envelope(input, func(rd *reader, key []byte) {
		switch string(key) {
		case "ctx":
			ctx = decodeCtx(rd)
		case "req":
			req = decodeHttpRequest(rd)
		case "resp":
			resp = decodeHttpResponse(rd)
		default:
			rd.skip()
		}
	})
	if ctx == nil {
		ctx = newContext(nil)
	}
	if req == nil {
		req = decodeHttpRequest(&reader{b: []byte{0x80}})
	}
	if resp == nil {
		resp = decodeHttpResponse(&reader{b: []byte{0x81, 0xa6, 's', 't', 'a', 't', 'u', 's', 0xcc, 200}})
	}
	err := fn(ctx, req, resp)
	o := newOutput(ctx, buf)
	if !isNil(err) {
		o.w.str("error")
		toHookError(err).encode(&o.w)
		o.k++
	} else {
		mark := len(o.w.b)
		o.w.str("resp")
		if resp.encodePatch(&o.w) {
			o.k++
		} else {
			o.w.b = o.w.b[:mark]
		}
	}
	return o.done()
}

// RunTransportPost is the body of the `http_transport_post_hook` export.
func RunTransportPost(fn TransportPostHandler) int32 {
	return send(handleTransportPost(readInput(), fn, outBuf[:0]))
}

// HandleStreamChunk runs an http_transport_stream_chunk_hook handler on its input.
// It returns the output bytes (nil: continue, nothing changed).
func HandleStreamChunk(input []byte, fn StreamChunkHandler) []byte {
	return handleStreamChunk(input, fn, nil)
}

func handleStreamChunk(input []byte, fn StreamChunkHandler, buf []byte) []byte {
	var ctx *Context
	var chunk *Map
	var chunkBytes []byte
	envelope(input, func(rd *reader, key []byte) {
		switch string(key) {
		case "ctx":
			ctx = decodeCtx(rd)
		case "chunk":
			start := rd.pos
			chunk, _ = rd.value(0).(*Map)
			chunkBytes = rd.b[start:rd.pos]
		default:
			rd.skip()
		}
	})
	if ctx == nil {
		ctx = newContext(nil)
	}
	if chunk == nil {
		chunk = NewMap()
	}
	drop, err := fn(ctx, chunk)
	o := newOutput(ctx, buf)
	switch {
	case !isNil(err):
		o.w.str("error")
		toHookError(err).encode(&o.w)
		o.k++
	case drop:
		o.w.str("drop")
		o.w.boolean(true)
		o.k++
	default:
		mark := len(o.w.b)
		o.w.str("chunk")
		valAt := len(o.w.b)
		o.w.strMap(chunk)
		if string(o.w.b[valAt:]) == string(chunkBytes) {
			o.w.b = o.w.b[:mark]
		} else {
			o.k++
		}
	}
	return o.done()
}

// RunStreamChunk is the body of the `http_transport_stream_chunk_hook` export.
func RunStreamChunk(fn StreamChunkHandler) int32 {
	return send(handleStreamChunk(readInput(), fn, outBuf[:0]))
}

// HandlePreLlm runs a pre_llm_hook (or legacy pre_hook) handler on its input.
// It returns the output bytes (nil: continue, nothing changed).
func HandlePreLlm(input []byte, fn PreLlmHandler) []byte { return handlePreLlm(input, fn, nil) }

func handlePreLlm(input []byte, fn PreLlmHandler, buf []byte) []byte {
	var ctx *Context
	var req *LlmRequest
	envelope(input, func(rd *reader, key []byte) {
		switch string(key) {
		case "ctx":
			ctx = decodeCtx(rd)
		case "req":
			req = decodeLlmRequest(rd)
		default:
			rd.skip()
		}
	})
	if ctx == nil {
		ctx = newContext(nil)
	}
	if req == nil {
		req = decodeLlmRequest(&reader{b: []byte{0x80}})
	}
	resp, err := fn(ctx, req)
	o := newOutput(ctx, buf)
	switch {
	case !isNil(err):
		o.w.str("error")
		toLlmError(err).encode(&o.w)
		o.k++
	case resp != nil:
		o.w.str("response")
		resp.encode(&o.w)
		o.k++
	default:
		mark := len(o.w.b)
		o.w.str("req")
		if req.encodePatch(&o.w) {
			o.k++
		} else {
			o.w.b = o.w.b[:mark]
		}
	}
	return o.done()
}

// RunPreLlm is the body of the `pre_llm_hook` export (and of legacy `pre_hook`).
func RunPreLlm(fn PreLlmHandler) int32 { return send(handlePreLlm(readInput(), fn, outBuf[:0])) }

// HandlePostLlm runs a post_llm_hook (or legacy post_hook) handler on its input.
// It returns the output bytes (nil: continue, nothing changed).
func HandlePostLlm(input []byte, fn PostLlmHandler) []byte { return handlePostLlm(input, fn, nil) }

func handlePostLlm(input []byte, fn PostLlmHandler, buf []byte) []byte {
	var ctx *Context
	var resp *LlmResponse
	var llmErr *LlmError
	var respBytes, errBytes []byte
	envelope(input, func(rd *reader, key []byte) {
		switch string(key) {
		case "ctx":
			ctx = decodeCtx(rd)
		case "response":
			start := rd.pos
			if !rd.tryNil() {
				resp = decodeLlmResponse(rd)
				respBytes = rd.b[start:rd.pos]
			}
		case "error":
			start := rd.pos
			if !rd.tryNil() {
				llmErr = decodeLlmError(rd)
				errBytes = rd.b[start:rd.pos]
			}
		default:
			rd.skip()
		}
	})
	if ctx == nil {
		ctx = newContext(nil)
	}
	outResp, err := fn(ctx, resp, llmErr)
	o := newOutput(ctx, buf)
	// put writes a field unless it re-encodes to the bytes it came as.
	put := func(key string, encode func(w *writer), was []byte) {
		mark := len(o.w.b)
		o.w.str(key)
		valAt := len(o.w.b)
		encode(&o.w)
		if was != nil && string(o.w.b[valAt:]) == string(was) {
			o.w.b = o.w.b[:mark]
		} else {
			o.k++
		}
	}
	switch {
	case !isNil(err):
		e := toLlmError(err)
		var was []byte
		if e == llmErr {
			was = errBytes
		}
		put("error", e.encode, was)
	case outResp != nil:
		var was []byte
		if outResp == resp {
			was = respBytes
		}
		put("response", outResp.encode, was)
	}
	return o.done()
}

// RunPostLlm is the body of the `post_llm_hook` export (and of legacy `post_hook`).
func RunPostLlm(fn PostLlmHandler) int32 { return send(handlePostLlm(readInput(), fn, outBuf[:0])) }

// InterceptorRequest is the legacy transport_interceptor's view of a request
// (ABI.md §5.6): the URL, the whole header map and the JSON body parsed.
type InterceptorRequest struct {
	URL     string
	headers headerMap
	// Body is the JSON body as a map (nil when it was not a JSON object).
	Body *Map
}

// Header returns a header, looked up case-insensitively.
func (r *InterceptorRequest) Header(name string) (string, bool) { return r.headers.get(name) }

// SetHeader sets a header.
func (r *InterceptorRequest) SetHeader(name, value string) { r.headers.set(name, value) }

// RemoveHeader removes a header.
func (r *InterceptorRequest) RemoveHeader(name string) { r.headers.remove(name) }

// HandleTransportInterceptor runs a legacy transport_interceptor handler on its input.
// It returns the output bytes (nil: continue, nothing changed).
func HandleTransportInterceptor(input []byte, fn InterceptorHandler) []byte {
	return handleTransportInterceptor(input, fn, nil)
}

func handleTransportInterceptor(input []byte, fn InterceptorHandler, buf []byte) []byte {
	var ctx *Context
	req := &InterceptorRequest{}
	var headers []byte
	var bodyBytes []byte
	envelope(input, func(rd *reader, key []byte) {
		switch string(key) {
		case "ctx":
			ctx = decodeCtx(rd)
		case "url":
			req.URL = rd.str()
		case "headers":
			headers = rd.span()
		case "body":
			start := rd.pos
			req.Body, _ = rd.value(0).(*Map)
			bodyBytes = rd.b[start:rd.pos]
		default:
			rd.skip()
		}
	})
	if ctx == nil {
		ctx = newContext(nil)
	}
	req.headers = newHeaderMap(headers, true)
	err := fn(ctx, req)
	o := newOutput(ctx, buf)
	if !isNil(err) {
		o.w.str("error")
		toHookError(err).encode(&o.w)
		o.k++
		return o.done()
	}
	if req.headers.changed() { // the interceptor replaces all headers
		o.w.str("headers")
		o.w.value(req.headers.all())
		o.k++
	}
	if req.Body != nil {
		mark := len(o.w.b)
		o.w.str("body")
		valAt := len(o.w.b)
		o.w.strMap(req.Body)
		if string(o.w.b[valAt:]) == string(bodyBytes) {
			o.w.b = o.w.b[:mark]
		} else {
			o.k++
		}
	}
	return o.done()
}

// RunTransportInterceptor is the body of the legacy `transport_interceptor` export.
func RunTransportInterceptor(fn InterceptorHandler) int32 {
	return send(handleTransportInterceptor(readInput(), fn, outBuf[:0]))
}

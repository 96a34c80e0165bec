package pdk

import (
	"strconv"
	"strings"
	"unsafe"
)

// headerMap is a map of strings with case-insensitive lookup and a patch of
// the keys set (nil = removed), which is all that goes back to the host.
type headerMap struct {
	raw    []byte // the input's map: looked up in place, decoded only for all()
	values *Map
	patch  Map
	lower  bool // header names are lower-cased and looked up case-insensitively; query names are not
}

func (h *headerMap) norm(name string) string {
	if h.lower {
		return strings.ToLower(name)
	}
	return name
}

func (h *headerMap) get(name string) (string, bool) {
	n := h.norm(name)
	if v, ok := h.patch.Get(n); ok {
		s, isStr := v.(string)
		return s, isStr
	}
	v, ok := lookup(h.raw, name, h.lower)
	if !ok {
		return "", false
	}
	s, isStr := v.(string)
	return s, isStr
}

func (h *headerMap) changed() bool { return h.patch.Len() > 0 }

func (h *headerMap) set(name, value string) { h.patch.Set(h.norm(name), value) }
func (h *headerMap) remove(name string)     { h.patch.Set(h.norm(name), nil) }

func (h *headerMap) all() map[string]string {
	if h.values == nil {
		h.values = decodeMap(h.raw)
	}
	out := make(map[string]string, h.values.Len())
	h.values.Range(func(k string, v Value) bool {
		if s, ok := v.(string); ok {
			out[k] = s
		}
		return true
	})
	h.patch.Range(func(k string, v Value) bool {
		if s, ok := v.(string); ok {
			out[k] = s
		} else {
			delete(out, k)
		}
		return true
	})
	return out
}

func newHeaderMap(raw []byte, lower bool) headerMap { return headerMap{raw: raw, lower: lower} }

// sameBytes says whether b is the very slice that was received (not a copy
// with the same bytes: assigning a new slice is how a body is changed).
func sameBytes(a, b []byte) bool {
	return len(a) == len(b) && unsafe.SliceData(a) == unsafe.SliceData(b)
}

// HttpRequest is the client's HTTP request (ABI.md §5.1). Change it with the
// setters and by assigning Method, Path or Body; only changes go back.
type HttpRequest struct {
	Method string
	Path   string
	// Body is nil when the request has none or the plugin opted out of bodies
	// (InitOptions.NoRequestBody). Assign a new slice (or SetBodyText) to replace it.
	Body []byte

	headers, query       headerMap
	origMethod, origPath string
	origBody             []byte
}

// Header returns a request header, looked up case-insensitively.
func (r *HttpRequest) Header(name string) (string, bool) { return r.headers.get(name) }

// SetHeader sets a request header (the host lower-cases names).
func (r *HttpRequest) SetHeader(name, value string) { r.headers.set(name, value) }

// RemoveHeader removes a request header.
func (r *HttpRequest) RemoveHeader(name string) { r.headers.remove(name) }

// Headers returns a copy of the headers as they stand, names lower-cased.
func (r *HttpRequest) Headers() map[string]string { return r.headers.all() }

// QueryParam returns a query parameter (case-sensitive, as in URLs).
func (r *HttpRequest) QueryParam(name string) (string, bool) { return r.query.get(name) }

// SetQuery sets a query parameter.
func (r *HttpRequest) SetQuery(name, value string) { r.query.set(name, value) }

// RemoveQuery removes a query parameter.
func (r *HttpRequest) RemoveQuery(name string) { r.query.remove(name) }

// Query returns a copy of the query parameters as they stand.
func (r *HttpRequest) Query() map[string]string { return r.query.all() }

// BodyText is the body as a string ("" when there is none).
func (r *HttpRequest) BodyText() string { return string(r.Body) }

// SetBodyText replaces the body with text.
func (r *HttpRequest) SetBodyText(text string) { r.Body = []byte(text) }

func decodeHttpRequest(rd *reader) *HttpRequest {
	q := &HttpRequest{}
	var headers, query []byte
	n := rd.mapHeader()
	for i := 0; i < n; i++ {
		switch string(rd.keyBytes()) {
		case "method":
			q.Method = rd.str()
		case "path":
			q.Path = rd.str()
		case "headers":
			headers = rd.span()
		case "query":
			query = rd.span()
		case "body":
			q.Body = rd.bin()
		default:
			rd.skip()
		}
	}
	q.headers = newHeaderMap(headers, true)
	q.query = newHeaderMap(query, false)
	q.origMethod, q.origPath, q.origBody = q.Method, q.Path, q.Body
	return q
}

// encodePatch writes the request's changes as a map; returns false (and
// writes nothing) when nothing changed.
func (r *HttpRequest) encodePatch(w *writer) bool {
	at := w.beginMap()
	k := 0
	if r.Method != r.origMethod {
		w.str("method")
		w.str(r.Method)
		k++
	}
	if r.Path != r.origPath {
		w.str("path")
		w.str(r.Path)
		k++
	}
	if r.headers.changed() {
		w.str("headers")
		w.strMap(&r.headers.patch)
		k++
	}
	if r.query.changed() {
		w.str("query")
		w.strMap(&r.query.patch)
		k++
	}
	if !sameBytes(r.Body, r.origBody) {
		w.str("body")
		w.bin(r.Body)
		k++
	}
	if k == 0 {
		w.b = w.b[:at]
		return false
	}
	w.endMap(at, k)
	return true
}

// HttpResponse is an HTTP response: the upstream's in a post hook, or one a
// pre hook answers with (a short-circuit).
//
// @example
//
//	return pdk.JSONResponse(403, `{"error":"forbidden"}`), nil
type HttpResponse struct {
	Status int
	Body   []byte

	headers    headerMap
	origStatus int
	origBody   []byte
}

// NewResponse returns an empty response with a status.
func NewResponse(status int) *HttpResponse {
	return &HttpResponse{Status: status, headers: newHeaderMap(nil, true), origStatus: -1}
}

// JSONResponse returns a response with a JSON body and content-type.
func JSONResponse(status int, json string) *HttpResponse {
	r := NewResponse(status)
	r.SetHeader("content-type", "application/json")
	r.Body = []byte(json)
	return r
}

// TextResponse returns a response with a plain-text body and content-type.
func TextResponse(status int, text string) *HttpResponse {
	r := NewResponse(status)
	r.SetHeader("content-type", "text/plain; charset=utf-8")
	r.Body = []byte(text)
	return r
}

// Header returns a response header, looked up case-insensitively.
func (r *HttpResponse) Header(name string) (string, bool) { return r.headers.get(name) }

// SetHeader sets a response header.
func (r *HttpResponse) SetHeader(name, value string) { r.headers.set(name, value) }

// RemoveHeader removes a response header.
func (r *HttpResponse) RemoveHeader(name string) { r.headers.remove(name) }

// Headers returns a copy of the headers as they stand.
func (r *HttpResponse) Headers() map[string]string { return r.headers.all() }

// BodyText is the body as a string.
func (r *HttpResponse) BodyText() string { return string(r.Body) }

// SetBodyText replaces the body with text.
func (r *HttpResponse) SetBodyText(text string) { r.Body = []byte(text) }

func decodeHttpResponse(rd *reader) *HttpResponse {
	s := &HttpResponse{}
	var headers []byte
	n := rd.mapHeader()
	for i := 0; i < n; i++ {
		switch string(rd.keyBytes()) {
		case "status":
			s.Status = int(rd.int())
		case "headers":
			headers = rd.span()
		case "body":
			s.Body = rd.bin()
		default:
			rd.skip()
		}
	}
	s.headers = newHeaderMap(headers, true)
	s.origStatus, s.origBody = s.Status, s.Body
	return s
}

// encodeFull writes the whole response (a short-circuit).
func (r *HttpResponse) encodeFull(w *writer) {
	hs := r.Headers()
	n := 2
	if r.Body != nil {
		n = 3
	}
	w.mapHeader(n)
	w.str("status")
	w.int(int64(r.Status))
	w.str("headers")
	w.mapHeader(len(hs))
	for k, v := range hs {
		w.str(k)
		w.str(v)
	}
	if r.Body != nil {
		w.str("body")
		w.bin(r.Body)
	}
}

func (r *HttpResponse) encodePatch(w *writer) bool {
	at := w.beginMap()
	k := 0
	if r.Status != r.origStatus {
		w.str("status")
		w.int(int64(r.Status))
		k++
	}
	if r.headers.changed() {
		w.str("headers")
		w.strMap(&r.headers.patch)
		k++
	}
	if !sameBytes(r.Body, r.origBody) {
		w.str("body")
		w.bin(r.Body)
		k++
	}
	if k == 0 {
		w.b = w.b[:at]
		return false
	}
	w.endMap(at, k)
	return true
}

// HookError is a deliberate error from a transport hook: the client gets an
// HTTP error with Status (default 500) and Code (default plugin_rejected).
// It is a Go error: return it from a handler.
type HookError struct {
	Message string
	Status  int
	Code    string
}

func (e *HookError) Error() string {
	if e.Status != 0 {
		return strconv.Itoa(e.Status) + " " + e.Message
	}
	return e.Message
}

// Reject builds a HookError: a transport hook short-circuits with it.
//
// @example
//
//	return nil, pdk.Reject(401, "unauthorized", "missing or invalid API key")
func Reject(status int, code, message string) *HookError {
	return &HookError{Message: message, Status: status, Code: code}
}

func (e *HookError) encode(w *writer) {
	n := 1
	if e.Status != 0 {
		n++
	}
	if e.Code != "" {
		n++
	}
	w.mapHeader(n)
	w.str("message")
	w.str(e.Message)
	if e.Status != 0 {
		w.str("status")
		w.int(int64(e.Status))
	}
	if e.Code != "" {
		w.str("code")
		w.str(e.Code)
	}
}

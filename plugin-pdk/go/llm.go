package pdk

import "strconv"

// Message is an OpenAI chat message. Keys the kit does not name (tool_calls,
// refusal, ...) are kept in Extra, in order, and sent back as they came.
type Message struct {
	Role    string // "" when absent (a streamed delta after the first)
	Content Value  // a string, nil, or an array of parts
	Name    string
	Extra   *Map

	hasContent bool
}

// TextMessage returns a message with text content.
func TextMessage(role, text string) Message {
	return Message{Role: role, Content: text, hasContent: true}
}

// Text is the content when it is a string, else "".
func (m *Message) Text() string {
	s, _ := m.Content.(string)
	return s
}

// SetText replaces the content with text.
func (m *Message) SetText(text string) { m.Content = text; m.hasContent = true }

func decodeMessage(rd *reader) Message {
	var m Message
	n := rd.mapHeader()
	for i := 0; i < n; i++ {
		kb := rd.keyBytes()
		switch string(kb) {
		case "role":
			m.Role = rd.str()
		case "content":
			m.Content = rd.value(0)
			m.hasContent = true
		case "name":
			m.Name = rd.str()
		default:
			if m.Extra == nil {
				m.Extra = NewMap()
			}
			m.Extra.Set(string(kb), rd.value(0))
		}
	}
	return m
}

func (m *Message) encode(w *writer) {
	at := w.beginMapAny()
	k := 0
	if m.Role != "" {
		w.str("role")
		w.str(m.Role)
		k++
	}
	if m.hasContent || m.Content != nil || m.Role != "" {
		w.str("content")
		w.value(m.Content)
		k++
	}
	if m.Name != "" {
		w.str("name")
		w.str(m.Name)
		k++
	}
	for i, key := range m.Extra.Keys() {
		w.str(key)
		w.value(m.Extra.vals[i])
		k++
	}
	w.endMapAny(at, k)
}

// LlmRequest is the parsed chat request (ABI.md §5.4). Assign Provider or
// Model, edit Messages() in place or SetMessages, and change params with
// SetParam/RemoveParam: only the changes go back. The messages are decoded
// on first use (a hook that does not read them does not pay for them).
type LlmRequest struct {
	Provider string
	Model    string
	Stream   bool

	paramsRaw               []byte // looked up in place; decoded only for ParamKeys
	params                  *Map
	paramPatch              Map
	origProvider, origModel string
	messages                []Message
	messagesRead            bool   // Messages() or SetMessages was called
	origMessages            []byte // the messages' bytes as received
}

// Messages returns the chat messages, decoded on the first call. Edit them
// in place: they are compared with the input and sent back if they changed.
func (r *LlmRequest) Messages() []Message {
	if !r.messagesRead {
		r.messagesRead = true
		if len(r.origMessages) > 0 {
			r.messages = decodeMessages(&reader{b: r.origMessages})
		}
	}
	return r.messages
}

// SetMessages replaces the messages.
func (r *LlmRequest) SetMessages(ms []Message) { r.messages, r.messagesRead = ms, true }

// Param returns one of the request's other fields (temperature, max_tokens, ...).
func (r *LlmRequest) Param(key string) (Value, bool) {
	if v, ok := r.paramPatch.Get(key); ok {
		return v, v != nil
	}
	if r.params != nil {
		return r.params.Get(key)
	}
	return lookup(r.paramsRaw, key, false)
}

// SetParam sets a param; nil removes it.
func (r *LlmRequest) SetParam(key string, v Value) { r.paramPatch.Set(key, v) }

// RemoveParam removes a param.
func (r *LlmRequest) RemoveParam(key string) { r.paramPatch.Set(key, nil) }

// ParamKeys lists the params as received (before this call's changes).
func (r *LlmRequest) ParamKeys() []string {
	if r.params == nil {
		r.params = decodeMap(r.paramsRaw)
	}
	return r.params.Keys()
}

// LastUserText is the text of the last "user" message, or "".
func (r *LlmRequest) LastUserText() string {
	ms := r.Messages()
	for i := len(ms) - 1; i >= 0; i-- {
		if ms[i].Role == "user" {
			return ms[i].Text()
		}
	}
	return ""
}

func decodeLlmRequest(rd *reader) *LlmRequest {
	q := &LlmRequest{}
	n := rd.mapHeader()
	for i := 0; i < n; i++ {
		switch string(rd.keyBytes()) {
		case "provider":
			q.Provider = rd.str()
		case "model":
			q.Model = rd.str()
		case "stream":
			q.Stream = rd.bool()
		case "messages":
			q.origMessages = rd.span()
		case "params":
			q.paramsRaw = rd.span()
		default:
			rd.skip()
		}
	}
	q.origProvider, q.origModel = q.Provider, q.Model
	return q
}

func decodeMessages(rd *reader) []Message {
	n := rd.arrayHeader()
	ms := make([]Message, n)
	for i := range ms {
		ms[i] = decodeMessage(rd)
	}
	return ms
}

func encodeMessages(w *writer, ms []Message) {
	w.arrayHeader(len(ms))
	for i := range ms {
		ms[i].encode(w)
	}
}

func (r *LlmRequest) encodePatch(w *writer) bool {
	at := w.beginMap()
	k := 0
	if r.Provider != r.origProvider {
		w.str("provider")
		w.str(r.Provider)
		k++
	}
	if r.Model != r.origModel {
		w.str("model")
		w.str(r.Model)
		k++
	}
	if r.messagesRead {
		mark := len(w.b)
		w.str("messages")
		valAt := len(w.b)
		encodeMessages(w, r.messages)
		if string(w.b[valAt:]) == string(r.origMessages) {
			w.b = w.b[:mark]
		} else {
			k++
		}
	}
	if r.paramPatch.Len() > 0 {
		w.str("params")
		w.strMap(&r.paramPatch)
		k++
	}
	if k == 0 {
		w.b = w.b[:at]
		return false
	}
	w.endMap(at, k)
	return true
}

// Choice is one answer of a completion. A streamed chunk carries Delta
// instead of Message. FinishReason "" is sent as nil.
type Choice struct {
	Index        int
	Message      *Message
	Delta        *Message
	FinishReason string
	Extra        *Map
}

// Usage is a completion's token counts.
type Usage struct {
	PromptTokens, CompletionTokens, TotalTokens int64
	Extra                                       *Map
}

// LlmResponse is an OpenAI chat.completion (or, streamed, a
// chat.completion.chunk). Fields left empty are filled in by the host
// (id, object, created, model: ABI.md §5.4).
//
// @example
//
//	return pdk.TextResponse("mock-1", "Hello!"), nil
type LlmResponse struct {
	ID      string
	Object  string
	Created int64
	Model   string
	Choices []Choice
	Usage   *Usage
	Extra   *Map // other top-level keys (system_fingerprint, ...), in order
}

// NewTextResponse returns a completion with one assistant message.
func NewTextResponse(model, text string) *LlmResponse {
	msg := TextMessage("assistant", text)
	return &LlmResponse{Model: model, Choices: []Choice{{Index: 0, Message: &msg, FinishReason: "stop"}}}
}

// Text is the first choice's message (or delta) text, or "".
func (r *LlmResponse) Text() string {
	if len(r.Choices) == 0 {
		return ""
	}
	if c := r.Choices[0]; c.Message != nil {
		return c.Message.Text()
	} else if c.Delta != nil {
		return c.Delta.Text()
	}
	return ""
}

func decodeLlmResponse(rd *reader) *LlmResponse {
	s := &LlmResponse{}
	n := rd.mapHeader()
	for i := 0; i < n; i++ {
		kb := rd.keyBytes()
		switch string(kb) {
		case "id":
			s.ID = rd.str()
		case "object":
			s.Object = rd.str()
		case "created":
			s.Created = rd.int()
		case "model":
			s.Model = rd.str()
		case "choices":
			c := rd.arrayHeader()
			s.Choices = make([]Choice, c)
			for j := range s.Choices {
				s.Choices[j] = decodeChoice(rd)
			}
		case "usage":
			if !rd.tryNil() {
				s.Usage = decodeUsage(rd)
			}
		default:
			if s.Extra == nil {
				s.Extra = NewMap()
			}
			s.Extra.Set(string(kb), rd.value(0))
		}
	}
	return s
}

func decodeChoice(rd *reader) Choice {
	var c Choice
	n := rd.mapHeader()
	for i := 0; i < n; i++ {
		kb := rd.keyBytes()
		switch string(kb) {
		case "index":
			c.Index = int(rd.int())
		case "message":
			if !rd.tryNil() {
				m := decodeMessage(rd)
				c.Message = &m
			}
		case "delta":
			if !rd.tryNil() {
				m := decodeMessage(rd)
				c.Delta = &m
			}
		case "finish_reason":
			c.FinishReason = rd.str()
		default:
			if c.Extra == nil {
				c.Extra = NewMap()
			}
			c.Extra.Set(string(kb), rd.value(0))
		}
	}
	return c
}

func decodeUsage(rd *reader) *Usage {
	u := &Usage{}
	n := rd.mapHeader()
	for i := 0; i < n; i++ {
		kb := rd.keyBytes()
		switch string(kb) {
		case "prompt_tokens":
			u.PromptTokens = rd.int()
		case "completion_tokens":
			u.CompletionTokens = rd.int()
		case "total_tokens":
			u.TotalTokens = rd.int()
		default:
			if u.Extra == nil {
				u.Extra = NewMap()
			}
			u.Extra.Set(string(kb), rd.value(0))
		}
	}
	return u
}

func (r *LlmResponse) encode(w *writer) {
	at := w.beginMapAny()
	k := 0
	field := func(name, v string) {
		if v != "" {
			w.str(name)
			w.str(v)
			k++
		}
	}
	field("id", r.ID)
	field("object", r.Object)
	if r.Created != 0 {
		w.str("created")
		w.int(r.Created)
		k++
	}
	field("model", r.Model)
	w.str("choices")
	w.arrayHeader(len(r.Choices))
	for i := range r.Choices {
		r.Choices[i].encode(w)
	}
	k++
	if u := r.Usage; u != nil {
		w.str("usage")
		w.mapHeader(3 + u.Extra.Len())
		w.str("prompt_tokens")
		w.int(u.PromptTokens)
		w.str("completion_tokens")
		w.int(u.CompletionTokens)
		w.str("total_tokens")
		w.int(u.TotalTokens)
		for i, key := range u.Extra.Keys() {
			w.str(key)
			w.value(u.Extra.vals[i])
		}
		k++
	}
	for i, key := range r.Extra.Keys() {
		w.str(key)
		w.value(r.Extra.vals[i])
		k++
	}
	w.endMapAny(at, k)
}

func (c *Choice) encode(w *writer) {
	n := 2 + c.Extra.Len()
	if c.Message != nil {
		n++
	}
	if c.Delta != nil {
		n++
	}
	w.mapHeader(n)
	w.str("index")
	w.int(int64(c.Index))
	if c.Message != nil {
		w.str("message")
		c.Message.encode(w)
	}
	if c.Delta != nil {
		w.str("delta")
		c.Delta.encode(w)
	}
	w.str("finish_reason")
	if c.FinishReason == "" {
		w.nil()
	} else {
		w.str(c.FinishReason)
	}
	for i, key := range c.Extra.Keys() {
		w.str(key)
		w.value(c.Extra.vals[i])
	}
}

// LlmError is an error of an LLM attempt: the provider's (in post_llm_hook)
// or one a plugin answers with. Unset fields are sent as status 502, type
// and code "upstream_error". It is a Go error: return it from a handler.
//
// @example
//
//	return nil, &pdk.LlmError{Message: "blocked", Status: 403, Code: "content_blocked", AllowFallbacks: pdk.Bool(false)}
type LlmError struct {
	Message  string
	Type     string
	Code     string
	Status   int
	Provider string
	Model    string
	// AllowFallbacks: nil = fallbacks allowed; false = stop here.
	AllowFallbacks *bool

	nilFallbacks bool // allow_fallbacks arrived as nil: written back as nil
}

// Bool returns a pointer to b (for LlmError.AllowFallbacks).
func Bool(b bool) *bool { return &b }

func (e *LlmError) Error() string {
	if e.Status != 0 {
		return strconv.Itoa(e.Status) + " " + e.Message
	}
	return e.Message
}

func decodeLlmError(rd *reader) *LlmError {
	e := &LlmError{}
	n := rd.mapHeader()
	for i := 0; i < n; i++ {
		switch string(rd.keyBytes()) {
		case "message":
			e.Message = rd.str()
		case "type":
			e.Type = rd.str()
		case "code":
			e.Code = rd.str()
		case "status":
			e.Status = int(rd.int())
		case "provider":
			e.Provider = rd.str()
		case "model":
			e.Model = rd.str()
		case "allow_fallbacks":
			if rd.tryNil() {
				e.nilFallbacks = true
			} else {
				e.AllowFallbacks = Bool(rd.bool())
			}
		default:
			rd.skip()
		}
	}
	return e
}

func (e *LlmError) encode(w *writer) {
	at := w.beginMapAny()
	k := 1
	w.str("message")
	w.str(e.Message)
	field := func(name, v string) {
		if v != "" {
			w.str(name)
			w.str(v)
			k++
		}
	}
	field("type", e.Type)
	field("code", e.Code)
	if e.Status != 0 {
		w.str("status")
		w.int(int64(e.Status))
		k++
	}
	if e.AllowFallbacks != nil {
		w.str("allow_fallbacks")
		w.boolean(*e.AllowFallbacks)
		k++
	} else if e.nilFallbacks {
		w.str("allow_fallbacks")
		w.nil()
		k++
	}
	field("provider", e.Provider)
	field("model", e.Model)
	w.endMapAny(at, k)
}

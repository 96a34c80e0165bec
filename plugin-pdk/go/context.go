package pdk

import "strings"

// Reserved context keys, written by the host only (ABI.md §5.1).
const (
	KeyRequestID     = "sandgate.request_id"
	KeyFallbackIndex = "sandgate.fallback_index"
	KeyProvider      = "sandgate.provider"
	KeyModel         = "sandgate.model"
	KeyStreamEnd     = "sandgate.stream_end"
)

// Context is the per-request key/value map shared by every hook of every
// plugin. Reads see this call's changes; only the changes go back to the host.
//
// @example
//
//	ctx.Set("auth.user", "alice")
//	user, _ := ctx.GetString("auth.user")
type Context struct {
	raw    []byte // the input's ctx map: a key is decoded only when read
	values *Map   // all of it, decoded on first need
	patch  Map    // keys set in this call; nil value = deleted
}

func newContext(raw []byte) *Context { return &Context{raw: raw} }

// all decodes the whole input context (once).
func (c *Context) all() *Map {
	if c.values == nil {
		c.values = decodeMap(c.raw)
	}
	return c.values
}

// Get returns the value under key and whether it is there.
func (c *Context) Get(key string) (Value, bool) {
	if v, ok := c.patch.Get(key); ok {
		return v, v != nil
	}
	if c.values != nil {
		return c.values.Get(key)
	}
	return lookup(c.raw, key, false)
}

// GetString returns the value under key if it is a string.
func (c *Context) GetString(key string) (string, bool) {
	v, _ := c.Get(key)
	s, ok := v.(string)
	return s, ok
}

// GetInt returns the value under key if it is an integer (in any encoding).
func (c *Context) GetInt(key string) (int64, bool) {
	v, _ := c.Get(key)
	return AsInt(v)
}

// GetBool returns the value under key if it is a bool.
func (c *Context) GetBool(key string) (bool, bool) {
	v, _ := c.Get(key)
	b, ok := v.(bool)
	return b, ok
}

// Has says whether key has a value.
func (c *Context) Has(key string) bool {
	_, ok := c.Get(key)
	return ok
}

// Keys lists the keys that have a value, input order first.
func (c *Context) Keys() []string {
	var keys []string
	for _, k := range c.all().Keys() {
		if c.Has(k) {
			keys = append(keys, k)
		}
	}
	for _, k := range c.patch.Keys() {
		if !c.all().Has(k) && c.Has(k) {
			keys = append(keys, k)
		}
	}
	return keys
}

// Set stores a value (any Value: string, int64, bool, *Map, ...). Keys under
// "sandgate." are the host's: setting one is refused with a warning.
func (c *Context) Set(key string, v Value) {
	if strings.HasPrefix(key, "sandgate.") {
		LogWarn("context key " + key + " is reserved for the host; not set")
		return
	}
	if v == nil {
		c.Delete(key)
		return
	}
	c.patch.Set(key, v)
}

// Delete removes key from the context.
func (c *Context) Delete(key string) {
	if strings.HasPrefix(key, "sandgate.") {
		LogWarn("context key " + key + " is reserved for the host; not deleted")
		return
	}
	c.patch.Set(key, nil)
}

// Changed says whether this call set or deleted any key.
func (c *Context) Changed() bool { return c.patch.Len() > 0 }

// RequestID is the request id (also sent back to the client as x-request-id).
func (c *Context) RequestID() string { s, _ := c.GetString(KeyRequestID); return s }

// FallbackIndex is 0 for the primary attempt, 1.. for fallbacks.
func (c *Context) FallbackIndex() int { n, _ := c.GetInt(KeyFallbackIndex); return int(n) }

// StreamEnd is true on the last chunk of a stream.
func (c *Context) StreamEnd() bool { b, _ := c.GetBool(KeyStreamEnd); return b }

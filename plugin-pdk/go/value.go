package pdk

// A Value is any MessagePack value as the kit decodes it:
//
//	nil, bool, int64, uint64 (only above math.MaxInt64), float64, string,
//	[]byte (bin), []Value (array) or *Map (map with string keys, in order).
//
// Integers keep their exactness whatever their encoding on the wire (fixint,
// cc-cf, d0-d3); a float64 stays a float64 (ABI.md §5, §6). Use AsInt to read
// a number that may have arrived as either.
type Value = any

// Map is a MessagePack map with string keys that keeps its keys in order, so
// a decoded map re-encodes to the same bytes.
//
// @example
//
//	m := pdk.NewMap()
//	m.Set("model", "gpt-4o")
//	m.Get("model") // "gpt-4o", true
type Map struct {
	keys []string
	vals []Value
}

// NewMap returns an empty map.
func NewMap() *Map { return &Map{} }

// Len is the number of entries.
func (m *Map) Len() int {
	if m == nil {
		return 0
	}
	return len(m.keys)
}

// Keys returns the keys in order (do not modify the slice).
func (m *Map) Keys() []string {
	if m == nil {
		return nil
	}
	return m.keys
}

func (m *Map) index(key string) int {
	if m == nil {
		return -1
	}
	for i, k := range m.keys {
		if k == key {
			return i
		}
	}
	return -1
}

// Get returns the value under key and whether the key is there.
func (m *Map) Get(key string) (Value, bool) {
	if i := m.index(key); i >= 0 {
		return m.vals[i], true
	}
	return nil, false
}

// Has says whether the key is there (with any value, nil included).
func (m *Map) Has(key string) bool { return m.index(key) >= 0 }

// Set replaces the value under key, or appends the key.
func (m *Map) Set(key string, v Value) {
	if i := m.index(key); i >= 0 {
		m.vals[i] = v
		return
	}
	m.keys = append(m.keys, key)
	m.vals = append(m.vals, v)
}

// Delete removes key if it is there.
func (m *Map) Delete(key string) {
	if i := m.index(key); i >= 0 {
		m.keys = append(m.keys[:i], m.keys[i+1:]...)
		m.vals = append(m.vals[:i], m.vals[i+1:]...)
	}
}

// Range calls fn for every entry in order until fn returns false.
func (m *Map) Range(fn func(key string, v Value) bool) {
	for i := 0; i < m.Len(); i++ {
		if !fn(m.keys[i], m.vals[i]) {
			return
		}
	}
}

// AsInt reads a number written in any MessagePack integer encoding or as an
// integral float64 (the host writes integers beyond 32 bits as float64, ABI.md §5).
func AsInt(v Value) (int64, bool) {
	switch n := v.(type) {
	case int64:
		return n, true
	case uint64:
		return int64(n), n <= 1<<63-1
	case float64:
		if n == float64(int64(n)) {
			return int64(n), true
		}
	}
	return 0, false
}

// AsString returns v as a string when it is one.
func AsString(v Value) (string, bool) {
	s, ok := v.(string)
	return s, ok
}

// AsMap returns v as a map when it is one.
func AsMap(v Value) (*Map, bool) {
	m, ok := v.(*Map)
	return m, ok && m != nil
}

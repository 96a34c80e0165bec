package pdk

import (
	"errors"
	"math"
	"strconv"
)

// The kit's own MessagePack codec. Hand-written (no module to fetch) because
// the ABI needs things general-purpose Go encoders do not give by default:
// map keys in the order they came (so an unchanged value re-encodes to the
// same bytes), every integer encoding read as the same number (cf, d3, and
// the host's float64 cb, ABI.md §5), and the smallest encoding written (§6).

// maxDepth bounds nesting while decoding, so a hostile value cannot overflow
// the stack; the host never sends deeper than limits.max_json_depth + 2 (ABI.md §7.4).
const maxDepth = 256

// reader decodes MessagePack from a byte slice. Malformed input panics with
// a message saying where: the host only sends well-formed envelopes, so this
// is a bug worth a failed call with its reason in the log.
type reader struct {
	b   []byte
	pos int
}

func (r *reader) fail(msg string) {
	panic("sandgate pdk: msgpack at byte " + itoa(r.pos) + ": " + msg)
}

func (r *reader) need(n int) {
	if n < 0 || len(r.b)-r.pos < n {
		r.fail("the data ends inside a value (" + itoa(n) + " more bytes needed)")
	}
}

func (r *reader) byte1() byte {
	r.need(1)
	c := r.b[r.pos]
	r.pos++
	return c
}

func (r *reader) take(n int) []byte {
	r.need(n)
	s := r.b[r.pos : r.pos+n]
	r.pos += n
	return s
}

func (r *reader) u16() int { return int(be16(r.take(2))) }
func (r *reader) u32() int { return int(be32(r.take(4))) }

func (r *reader) peek() byte {
	r.need(1)
	return r.b[r.pos]
}

// tryNil consumes a nil and reports whether there was one.
func (r *reader) tryNil() bool {
	if r.peek() == 0xc0 {
		r.pos++
		return true
	}
	return false
}

// mapHeader reads a map header; nil reads as an empty map.
func (r *reader) mapHeader() int {
	c := r.byte1()
	switch {
	case c >= 0x80 && c <= 0x8f:
		return int(c & 0x0f)
	case c == 0xde:
		return r.u16()
	case c == 0xdf:
		return r.u32()
	case c == 0xc0:
		return 0
	}
	r.pos--
	r.fail("expected a map, got type byte " + hexByte(c))
	return 0
}

// arrayHeader reads an array header; nil reads as an empty array.
func (r *reader) arrayHeader() int {
	c := r.byte1()
	switch {
	case c >= 0x90 && c <= 0x9f:
		return int(c & 0x0f)
	case c == 0xdc:
		return r.u16()
	case c == 0xdd:
		return r.u32()
	case c == 0xc0:
		return 0
	}
	r.pos--
	r.fail("expected an array, got type byte " + hexByte(c))
	return 0
}

// str reads a string (str or bin bytes as text); nil reads as "".
func (r *reader) str() string {
	v := r.value(0)
	switch s := v.(type) {
	case string:
		return s
	case []byte:
		return string(s)
	case nil:
		return ""
	}
	r.fail("expected a string, got " + typeName(v))
	return ""
}

// key reads a map key; the ABI's keys are always strings.
func (r *reader) key() string {
	c := r.peek()
	if (c >= 0xa0 && c <= 0xbf) || c == 0xd9 || c == 0xda || c == 0xdb {
		return r.value(0).(string)
	}
	r.fail("expected a string map key, got type byte " + hexByte(c))
	return ""
}

// int reads an integer in any encoding, or an integral float64; nil reads as 0.
func (r *reader) int() int64 {
	v := r.value(0)
	if v == nil {
		return 0
	}
	if n, ok := AsInt(v); ok {
		return n
	}
	r.fail("expected an integer, got " + typeName(v))
	return 0
}

func (r *reader) bool() bool {
	v := r.value(0)
	b, _ := v.(bool)
	return b
}

// bin reads bytes (bin, or str bytes); nil reads as nil.
func (r *reader) bin() []byte {
	v := r.value(0)
	switch b := v.(type) {
	case []byte:
		return b
	case string:
		return []byte(b)
	}
	return nil
}

// skip steps over one value without allocating.
func (r *reader) skip() { r.skipValue(0) }

func (r *reader) skipValue(depth int) {
	if depth > maxDepth {
		r.fail("nesting deeper than " + itoa(maxDepth) + " levels")
	}
	c := r.byte1()
	n := 0 // bytes of payload
	items := 0
	switch {
	case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
	case c >= 0xa0 && c <= 0xbf:
		n = int(c & 0x1f)
	case c >= 0x80 && c <= 0x8f:
		items = 2 * int(c&0x0f)
	case c >= 0x90 && c <= 0x9f:
		items = int(c & 0x0f)
	case c == 0xc4 || c == 0xd9:
		n = int(r.byte1())
	case c == 0xc5 || c == 0xda:
		n = r.u16()
	case c == 0xc6 || c == 0xdb:
		n = r.u32()
	case c == 0xcc || c == 0xd0:
		n = 1
	case c == 0xcd || c == 0xd1:
		n = 2
	case c == 0xca || c == 0xce || c == 0xd2:
		n = 4
	case c == 0xcb || c == 0xcf || c == 0xd3:
		n = 8
	case c == 0xdc:
		items = r.u16()
	case c == 0xdd:
		items = r.u32()
	case c == 0xde:
		items = 2 * r.u16()
	case c == 0xdf:
		items = 2 * r.u32()
	default:
		r.pos--
		r.fail(hexByte(c) + " is not a type byte the ABI uses")
	}
	r.take(n)
	for i := 0; i < items; i++ {
		r.skipValue(depth + 1)
	}
}

// keyBytes reads a map key's bytes without allocating (a view of the input).
func (r *reader) keyBytes() []byte {
	c := r.byte1()
	switch {
	case c >= 0xa0 && c <= 0xbf:
		return r.take(int(c & 0x1f))
	case c == 0xd9:
		return r.take(int(r.byte1()))
	case c == 0xda:
		return r.take(r.u16())
	case c == 0xdb:
		return r.take(r.u32())
	}
	r.pos--
	r.fail("expected a string map key, got type byte " + hexByte(c))
	return nil
}

// span reads one value and returns its bytes (a view of the input).
func (r *reader) span() []byte {
	start := r.pos
	r.skip()
	return r.b[start:r.pos]
}

// lookup finds key in the encoded map m, comparing keys exactly or (fold)
// ASCII-case-insensitively, and decodes only its value.
func lookup(m []byte, key string, fold bool) (Value, bool) {
	if len(m) == 0 {
		return nil, false
	}
	r := &reader{b: m}
	n := r.mapHeader()
	for i := 0; i < n; i++ {
		k := r.keyBytes()
		if string(k) == key || (fold && equalFoldASCII(k, key)) {
			return r.value(0), true
		}
		r.skip()
	}
	return nil, false
}

func equalFoldASCII(a []byte, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x >= 'A' && x <= 'Z' {
			x += 'a' - 'A'
		}
		if y >= 'A' && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// decodeMap decodes an encoded map (nil bytes: an empty map).
func decodeMap(b []byte) *Map {
	if len(b) == 0 {
		return NewMap()
	}
	m, _ := (&reader{b: b}).value(0).(*Map)
	if m == nil {
		m = NewMap()
	}
	return m
}

// value decodes one value of any type.
func (r *reader) value(depth int) Value {
	if depth > maxDepth {
		r.fail("nesting deeper than " + itoa(maxDepth) + " levels")
	}
	c := r.byte1()
	switch {
	case c <= 0x7f:
		return int64(c)
	case c >= 0xe0:
		return int64(int8(c))
	case c >= 0xa0 && c <= 0xbf:
		return string(r.take(int(c & 0x1f)))
	case c >= 0x80 && c <= 0x8f:
		return r.mapBody(int(c&0x0f), depth)
	case c >= 0x90 && c <= 0x9f:
		return r.arrayBody(int(c&0x0f), depth)
	}
	switch c {
	case 0xc0:
		return nil
	case 0xc2:
		return false
	case 0xc3:
		return true
	case 0xc4:
		return cloneBytes(r.take(int(r.byte1())))
	case 0xc5:
		return cloneBytes(r.take(r.u16()))
	case 0xc6:
		return cloneBytes(r.take(r.u32()))
	case 0xca:
		return float64(math.Float32frombits(be32(r.take(4))))
	case 0xcb:
		return math.Float64frombits(be64(r.take(8)))
	case 0xcc:
		return int64(r.byte1())
	case 0xcd:
		return int64(r.u16())
	case 0xce:
		return int64(r.u32())
	case 0xcf:
		u := be64(r.take(8))
		if u > math.MaxInt64 {
			return u
		}
		return int64(u)
	case 0xd0:
		return int64(int8(r.byte1()))
	case 0xd1:
		return int64(int16(r.u16()))
	case 0xd2:
		return int64(int32(uint32(r.u32())))
	case 0xd3:
		return int64(be64(r.take(8)))
	case 0xd9:
		return string(r.take(int(r.byte1())))
	case 0xda:
		return string(r.take(r.u16()))
	case 0xdb:
		return string(r.take(r.u32()))
	case 0xdc:
		return r.arrayBody(r.u16(), depth)
	case 0xdd:
		return r.arrayBody(r.u32(), depth)
	case 0xde:
		return r.mapBody(r.u16(), depth)
	case 0xdf:
		return r.mapBody(r.u32(), depth)
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xc7, 0xc8, 0xc9:
		r.pos--
		r.fail("extension types (" + hexByte(c) + ") are not part of the ABI")
	}
	r.pos--
	r.fail(hexByte(c) + " is not a MessagePack type byte")
	return nil
}

func (r *reader) mapBody(n, depth int) *Map {
	m := &Map{keys: make([]string, 0, n), vals: make([]Value, 0, n)}
	for i := 0; i < n; i++ {
		k := r.key()
		m.keys = append(m.keys, k)
		m.vals = append(m.vals, r.value(depth+1))
	}
	return m
}

func (r *reader) arrayBody(n, depth int) []Value {
	if n > len(r.b)-r.pos { // every element takes at least one byte
		r.fail("an array announces " + itoa(n) + " elements but only " + itoa(len(r.b)-r.pos) + " bytes follow")
	}
	a := make([]Value, n)
	for i := range a {
		a[i] = r.value(depth + 1)
	}
	return a
}

func cloneBytes(b []byte) []byte {
	c := make([]byte, len(b))
	copy(c, b)
	return c
}

// Decode decodes one MessagePack value (see Value for the Go types).
// It returns an error for malformed data or trailing bytes.
func Decode(b []byte) (v Value, err error) {
	defer func() {
		if p := recover(); p != nil {
			s, _ := p.(string)
			err = errors.New(s)
		}
	}()
	r := &reader{b: b}
	v = r.value(0)
	if r.pos != len(b) {
		return nil, errors.New("sandgate pdk: one value ends at byte " + itoa(r.pos) + " but " + itoa(len(b)-r.pos) + " more byte(s) follow")
	}
	return v, nil
}

// writer encodes MessagePack in the smallest encoding of every value.
type writer struct{ b []byte }

func (w *writer) nil() { w.b = append(w.b, 0xc0) }
func (w *writer) boolean(v bool) {
	if v {
		w.b = append(w.b, 0xc3)
	} else {
		w.b = append(w.b, 0xc2)
	}
}

func (w *writer) u16(c byte, n int) { w.b = append(w.b, c, byte(n>>8), byte(n)) }
func (w *writer) u32(c byte, n int) {
	w.b = append(w.b, c, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// int writes n in the smallest integer type; beyond 32 bits as int64 d3 (ABI.md §6).
func (w *writer) int(n int64) {
	switch {
	case n >= 0 && n <= 0x7f:
		w.b = append(w.b, byte(n))
	case n >= -32 && n < 0:
		w.b = append(w.b, byte(int8(n)))
	case n >= 0 && n <= 0xff:
		w.b = append(w.b, 0xcc, byte(n))
	case n >= 0 && n <= 0xffff:
		w.u16(0xcd, int(n))
	case n >= 0 && n <= 0xffffffff:
		w.u32(0xce, int(n))
	case n >= -128 && n < 0:
		w.b = append(w.b, 0xd0, byte(n))
	case n >= -32768 && n < 0:
		w.u16(0xd1, int(n))
	case n >= -2147483648 && n < 0:
		w.u32(0xd2, int(n))
	default:
		w.b = append(w.b, 0xd3)
		w.b = appendBE64(w.b, uint64(n))
	}
}

func (w *writer) float(f float64) {
	w.b = append(w.b, 0xcb)
	w.b = appendBE64(w.b, math.Float64bits(f))
}

func (w *writer) str(s string) {
	n := len(s)
	switch {
	case n <= 31:
		w.b = append(w.b, 0xa0|byte(n))
	case n <= 0xff:
		w.b = append(w.b, 0xd9, byte(n))
	case n <= 0xffff:
		w.u16(0xda, n)
	default:
		w.u32(0xdb, n)
	}
	w.b = append(w.b, s...)
}

func (w *writer) bin(b []byte) {
	n := len(b)
	switch {
	case n <= 0xff:
		w.b = append(w.b, 0xc4, byte(n))
	case n <= 0xffff:
		w.u16(0xc5, n)
	default:
		w.u32(0xc6, n)
	}
	w.b = append(w.b, b...)
}

func (w *writer) mapHeader(n int) {
	switch {
	case n <= 15:
		w.b = append(w.b, 0x80|byte(n))
	case n <= 0xffff:
		w.u16(0xde, n)
	default:
		w.u32(0xdf, n)
	}
}

func (w *writer) arrayHeader(n int) {
	switch {
	case n <= 15:
		w.b = append(w.b, 0x90|byte(n))
	case n <= 0xffff:
		w.u16(0xdc, n)
	default:
		w.u32(0xdd, n)
	}
}

// beginMap reserves a fixmap header for at most 15 entries, to be filled in
// by endMap once the entries are counted (envelopes have few keys).
func (w *writer) beginMap() int {
	w.b = append(w.b, 0x80)
	return len(w.b) - 1
}

func (w *writer) endMap(at, n int) { w.b[at] = 0x80 | byte(n) }

func (w *writer) strMap(m *Map) {
	w.mapHeader(m.Len())
	for i, k := range m.Keys() {
		w.str(k)
		w.value(m.vals[i])
	}
}

// value writes any Value; other Go types are a programming error and panic
// with their type, so the failure names what to fix.
func (w *writer) value(v Value) {
	switch x := v.(type) {
	case nil:
		w.nil()
	case bool:
		w.boolean(x)
	case int64:
		w.int(x)
	case int:
		w.int(int64(x))
	case int32:
		w.int(int64(x))
	case uint64:
		if x > math.MaxInt64 {
			w.b = append(w.b, 0xcf)
			w.b = appendBE64(w.b, x)
		} else {
			w.int(int64(x))
		}
	case float64:
		w.float(x)
	case float32:
		w.float(float64(x))
	case string:
		w.str(x)
	case []byte:
		w.bin(x)
	case []Value:
		w.arrayHeader(len(x))
		for _, e := range x {
			w.value(e)
		}
	case []string:
		w.arrayHeader(len(x))
		for _, e := range x {
			w.str(e)
		}
	case *Map:
		if x == nil {
			w.nil()
		} else {
			w.strMap(x)
		}
	case map[string]Value: // key order is Go's (random); fine where order does not matter
		w.mapHeader(len(x))
		for k, e := range x {
			w.str(k)
			w.value(e)
		}
	case map[string]string:
		w.mapHeader(len(x))
		for k, e := range x {
			w.str(k)
			w.str(e)
		}
	default:
		panic("sandgate pdk: cannot encode a " + typeName(v) + " as MessagePack (use nil, bool, int64, float64, string, []byte, []pdk.Value or *pdk.Map)")
	}
}

// Encode encodes v in the smallest encoding of every value (ABI.md §6).
func Encode(v Value) []byte {
	w := &writer{}
	w.value(v)
	return w.b
}

// beginMapAny reserves a map16 header for a map whose entry count is known
// only at the end; endMapAny shrinks it to a fixmap when it fits, so the
// bytes are the smallest encoding (ABI.md §6).
func (w *writer) beginMapAny() int {
	w.b = append(w.b, 0xde, 0, 0)
	return len(w.b) - 3
}

func (w *writer) endMapAny(at, n int) {
	if n <= 15 {
		w.b[at] = 0x80 | byte(n)
		w.b = append(w.b[:at+1], w.b[at+3:]...)
		return
	}
	w.b[at+1], w.b[at+2] = byte(n>>8), byte(n)
}

// The kit avoids fmt: it would add its weight to every plugin's module.
func itoa(n int) string { return strconv.Itoa(n) }

func hexByte(c byte) string {
	const digits = "0123456789abcdef"
	return "0x" + string([]byte{digits[c>>4], digits[c&15]})
}

func typeName(v Value) string {
	switch v.(type) {
	case nil:
		return "nil"
	case bool:
		return "bool"
	case int64, uint64, int, int32:
		return "integer"
	case float64, float32:
		return "float"
	case string:
		return "string"
	case []byte:
		return "bin"
	case []Value:
		return "array"
	case *Map:
		return "map"
	}
	return "a Go value of another type"
}

// Big-endian helpers (encoding/binary would pull reflect into every plugin).
func be16(b []byte) uint16 { return uint16(b[0])<<8 | uint16(b[1]) }
func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}
func be64(b []byte) uint64 { return uint64(be32(b[:4]))<<32 | uint64(be32(b[4:8])) }
func appendBE64(b []byte, v uint64) []byte {
	return append(b, byte(v>>56), byte(v>>48), byte(v>>40), byte(v>>32), byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

//go:build wasip1

package pdk

import "unsafe"

// The sandgate:host/v1 fast path (ABI.md §4.2): whole envelopes in one copy.

//go:wasmimport sandgate:host/v1 input_length
func hostInputLength() int32

//go:wasmimport sandgate:host/v1 input_read
func hostInputRead(dst unsafe.Pointer)

//go:wasmimport sandgate:host/v1 output_write
func hostOutputWrite(src unsafe.Pointer, n int32)

//go:wasmimport sandgate:host/v1 log
func hostLog(level int32, src unsafe.Pointer, n int32)

// The ABI marker (ABI.md §2): exported by the kit, so every plugin that
// imports it declares ABI v1 without a line of its own.
//
//go:wasmexport sandgate_abi_v1
func sandgateABIv1() int32 { return ABIVersion }

// inputBuf is reused across calls: decoding copies every string and byte
// slice out of it, so nothing outlives the call that read it.
var inputBuf []byte

func readInput() []byte {
	n := int(uint32(hostInputLength()))
	if n == 0 {
		return nil
	}
	if cap(inputBuf) < n {
		inputBuf = make([]byte, n)
	}
	b := inputBuf[:n]
	hostInputRead(unsafe.Pointer(&b[0]))
	return b
}

func writeOutput(b []byte) {
	if len(b) > 0 {
		hostOutputWrite(unsafe.Pointer(&b[0]), int32(len(b)))
	}
}

func writeLog(level LogLevel, msg string) {
	if len(msg) == 0 {
		return
	}
	hostLog(int32(level), unsafe.Pointer(unsafe.StringData(msg)), int32(len(msg)))
}

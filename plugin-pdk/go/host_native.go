//go:build !wasip1

package pdk

import (
	"fmt"
	"os"
)

// Outside WebAssembly (go test on the author's machine) there is no gateway:
// the Run* functions have no input to read, and Handle* functions are what
// tests call. Log lines go to stderr so a test run shows them.

func readInput() []byte { return nil }

func writeOutput([]byte) {}

func writeLog(level LogLevel, msg string) {
	fmt.Fprintf(os.Stderr, "[%s] %s\n", level, msg)
}

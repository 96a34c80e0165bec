// A plugin for test/kit-go.test.ts: pre_llm_hook panics when the last user
// message is "panic: <text>", so the test sees what a Go panic inside a kit
// handler becomes at the gateway (a plugin_trap with the panic's message).
package main

import (
	"strings"

	pdk "sandgate.dev/pdk"
)

func onPreLlm(ctx *pdk.Context, req *pdk.LlmRequest) (*pdk.LlmResponse, error) {
	if text, found := strings.CutPrefix(req.LastUserText(), "panic: "); found {
		panic(text)
	}
	return nil, nil
}

//go:wasmexport pre_llm_hook
func preLlm() int32 { return pdk.RunPreLlm(onPreLlm) }

func main() {}

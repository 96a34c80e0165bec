// hello-world-go: the Go twin of sample-plugins/hello-world (AssemblyScript)
// and a port of the seeds' reference Go hello-world. It logs every hook, adds
// a request header, stores a context value in the pre-hook and reads it back
// in the post-hook (as the x-hello-context response header, so tests can see
// the value crossed hooks).
//
// Build (from this folder):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o build/hello-world-go.wasm .
package main

import pdk "sandgate.dev/pdk" // also exports the ABI marker sandgate_abi_v1

const contextKey = "hello-world.greeting"

func Init(config pdk.Value, name string) (pdk.InitOptions, error) {
	pdk.LogInfo("Init called")
	// This plugin only looks at headers: never send it bodies, whatever their size.
	// Its PostLLMHook does nothing with streamed deltas: no call per chunk.
	return pdk.InitOptions{NoRequestBody: true, NoResponseBody: true, NoStreamDeltas: true}, nil
}

func GetName() string { return "hello-world" }

func HTTPTransportPreHook(ctx *pdk.Context, req *pdk.HttpRequest) (*pdk.HttpResponse, error) {
	pdk.LogInfo("HTTPTransportPreHook called")
	contentType, ok := req.Header("Content-Type") // case-insensitive
	if !ok {
		contentType = "(none)"
	}
	pdk.LogDebug("Content-Type: " + contentType)
	req.SetHeader("x-custom-header", "custom-value")
	ctx.Set(contextKey, "pre-hook-value")
	return nil, nil
}

func HTTPTransportPostHook(ctx *pdk.Context, req *pdk.HttpRequest, resp *pdk.HttpResponse) error {
	pdk.LogInfo("HTTPTransportPostHook called")
	resp.SetHeader("x-processed-by", "hello-world")
	if greeting, ok := ctx.GetString(contextKey); ok {
		pdk.LogDebug("Context value: " + greeting)
		resp.SetHeader("x-hello-context", greeting)
	}
	return nil
}

func PreLLMHook(ctx *pdk.Context, req *pdk.LlmRequest) (*pdk.LlmResponse, error) {
	pdk.LogInfo("PreLLMHook called")
	return nil, nil
}

func PostLLMHook(ctx *pdk.Context, resp *pdk.LlmResponse, llmErr *pdk.LlmError) (*pdk.LlmResponse, error) {
	pdk.LogInfo("PostLLMHook called")
	return resp, llmErr
}

func Cleanup() { pdk.LogInfo("Cleanup called") }

// The exports: one line each, binding the ABI's names to the functions above.

//go:wasmexport init
func initExport() int32 { return pdk.RunInit(Init) }

//go:wasmexport get_name
func getNameExport() int32 { return pdk.RunGetName(GetName()) }

//go:wasmexport http_transport_pre_hook
func transportPreExport() int32 { return pdk.RunTransportPre(HTTPTransportPreHook) }

//go:wasmexport http_transport_post_hook
func transportPostExport() int32 { return pdk.RunTransportPost(HTTPTransportPostHook) }

//go:wasmexport pre_llm_hook
func preLLMExport() int32 { return pdk.RunPreLlm(PreLLMHook) }

//go:wasmexport post_llm_hook
func postLLMExport() int32 { return pdk.RunPostLlm(PostLLMHook) }

//go:wasmexport cleanup
func cleanupExport() int32 { return pdk.RunCleanup(Cleanup) }

// main is never run: the module is a reactor (-buildmode=c-shared).
func main() {}

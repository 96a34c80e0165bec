//! Every vector of plugin-pdk/conformance/vectors.json, decoded and
//! re-encoded by the kit (ABI.md §6), and the hook runners reproducing the
//! ABI's output vectors from its input vectors.

mod support;

use sandgate_pdk::host::testing;
use sandgate_pdk::msgpack::{Reader, Writer};
use sandgate_pdk::value::{read_value, write_value};
use sandgate_pdk::*;
use support::{hex, matches_json, vector, vectors};

#[test]
fn every_vector_decodes_to_its_value_and_reencodes() {
    let all = vectors();
    assert!(all.len() >= 22, "expected the full vector set, got {}", all.len());
    for v in &all {
        let decoded = Value::decode(&v.bytes).unwrap_or_else(|e| panic!("{}: {}", v.name, e));
        if let Err(why) = matches_json(&decoded, &v.value, &v.name) {
            panic!("{} decodes to another value: {}", v.name, why);
        }
        let again = decoded.encode();
        match &v.canonical {
            // The smallest encoding: byte for byte.
            None => assert_eq!(hex(&again), hex(&v.bytes), "{}: re-encoding differs", v.name),
            // A wider integer encoding: an untyped re-encode keeps the value (float64 stays a float).
            Some(c) => {
                let canonical = Value::decode(&vector(c).bytes).unwrap();
                assert!(Value::decode(&again).unwrap().same_as(&canonical), "{}: value changed", v.name);
            }
        }
    }
}

/// `LlmPostInput` with its `response` through the typed `LlmResponse`: every
/// integer encoding re-encodes to the canonical vector's bytes.
#[test]
fn typed_response_reencodes_every_integer_encoding_canonically() {
    let mut checked = 0;
    for v in vectors().iter().filter(|v| v.canonical.is_some()) {
        let want = vector(v.canonical.as_deref().unwrap()).bytes;
        let mut r = Reader::new(&v.bytes);
        let n = r.read_map_len().unwrap();
        let mut w = Writer::new();
        w.map_len(n);
        for _ in 0..n {
            let key = r.read_str().unwrap();
            w.str(&key);
            if key == "response" {
                let resp = run_typed_response(&mut r);
                assert_eq!(resp.created, 1732240000, "{}", v.name);
                assert_eq!(resp.usage.as_ref().unwrap().total_tokens, 16, "{}", v.name);
                w.raw(&resp.encode());
            } else {
                write_value(&mut w, &read_value(&mut r).unwrap());
            }
        }
        assert_eq!(hex(&w.buf), hex(&want), "{}: typed re-encoding is not canonical", v.name);
        checked += 1;
    }
    assert_eq!(checked, 3);
}

fn run_typed_response(r: &mut Reader) -> LlmResponse {
    // Decoding is crate-internal; go through the hook runner on a one-key envelope.
    let start = r.pos();
    read_value(r).unwrap();
    let mut input = vec![0x81, 0xa8];
    input.extend_from_slice(b"response");
    input.extend_from_slice(r.since(start));
    let mut got = None;
    testing::call(&input, || {
        run_post_llm(|_, resp, _| {
            got = resp.cloned();
            LlmPostResult::Continue
        })
    });
    got.expect("a response")
}

#[test]
fn transport_pre_reproduces_the_worked_example() {
    let input = vector("transport-pre-input").bytes;
    let r = testing::call(&input, || {
        run_transport_pre(|ctx, req| {
            assert_eq!(ctx.request_id(), "r1");
            assert_eq!((req.method.as_str(), req.path.as_str()), ("POST", "/v1/chat"));
            assert_eq!(req.header("X-A"), Some("1"));
            assert!(req.body.is_none());
            req.set_header("X-Custom-Header", "custom-value");
            ctx.set("greeting", "hi");
            PreResult::Continue
        })
    });
    assert_eq!(hex(&r.output.unwrap()), hex(&vector("transport-pre-output").bytes));
}

#[test]
fn transport_pre_continue_unchanged_writes_nothing() {
    let r = testing::call(&vector("transport-pre-input").bytes, || run_transport_pre(|_, _| PreResult::Continue));
    assert_eq!(r.output, None);
}

#[test]
fn transport_pre_short_circuit_vector() {
    let r = testing::call(&vector("transport-pre-input").bytes, || {
        run_transport_pre(|ctx, _| {
            ctx.set("auth.denied", true);
            PreResult::Respond(HttpResponse::text(403, "forbidden ⛔"))
        })
    });
    assert_eq!(hex(&r.output.unwrap()), hex(&vector("transport-pre-output-short-circuit").bytes));
}

#[test]
fn transport_post_reads_bodies_and_errors_as_the_vector() {
    let r = testing::call(&vector("transport-post-input-body-utf8").bytes, || {
        run_transport_post(|ctx, req, resp| {
            assert_eq!(ctx.get_str("user.name"), Some("Zoë 😀"));
            assert_eq!(req.query_param("lang"), Some("français"));
            assert!(req.body_text().unwrap().contains("Grüße 👋"));
            assert_eq!(resp.status, 200);
            assert_eq!(resp.body_text(), Some(r#"{"reply":"héllo wörld ✓ 日本語 😀"}"#));
            PostResult::error("upstream said no", 502, Some("bad_gateway"))
        })
    });
    assert_eq!(hex(&r.output.unwrap()), hex(&vector("transport-post-output-error").bytes));
}

#[test]
fn pre_llm_patch_and_error_vectors() {
    let input = vector("llm-pre-input").bytes;
    let r = testing::call(&input, || {
        run_pre_llm(|ctx, req| {
            assert_eq!(ctx.get_str("sandgate.provider"), Some("openai"));
            assert_eq!(req.model, "gpt-4o-mini");
            assert_eq!(req.messages.len(), 3);
            assert_eq!(req.messages[1].name.as_deref(), Some("alice"));
            assert!(req.messages[2].content.is_none());
            assert!(req.messages[2].get_extra("tool_calls").is_some());
            assert_eq!(req.param("max_tokens").and_then(|v| v.as_int()), Some(256));
            ctx.set("guard.checked", true);
            req.model = "gpt-4o".to_string();
            req.set_param("temperature", 0.2);
            req.remove_param("max_tokens");
            LlmPreResult::Continue
        })
    });
    assert_eq!(hex(&r.output.unwrap()), hex(&vector("llm-pre-output-patch").bytes));

    let r = testing::call(&input, || {
        run_pre_llm(|ctx, _| {
            ctx.set("guard.verdict", "deny");
            LlmPreResult::Error(
                LlmError::no_fallbacks("blocked by policy", 403).with_type("policy_error").with_code("content_blocked"),
            )
        })
    });
    assert_eq!(hex(&r.output.unwrap()), hex(&vector("llm-pre-output-error-no-fallbacks").bytes));

    // Messages read but not changed: nothing goes back.
    let r = testing::call(&input, || run_pre_llm(|_, req| {
        assert_eq!(req.last_message("user").unwrap().content.as_deref(), Some("Hello!"));
        LlmPreResult::Continue
    }));
    assert_eq!(r.output, None);
}

#[test]
fn post_llm_inputs_round_trip_unchanged() {
    for name in ["llm-post-input-response", "llm-post-input-error-nil-fallbacks"] {
        let r = testing::call(&vector(name).bytes, || {
            run_post_llm(|ctx, resp, err| {
                assert!(resp.is_some() != err.is_some(), "exactly one of response and error");
                if let Some(e) = err {
                    assert_eq!(ctx.fallback_index(), 1);
                    assert_eq!((e.status, e.allow_fallbacks), (Some(504), None));
                }
                LlmPostResult::Continue
            })
        });
        assert_eq!(r.output, None, "{}: an untouched result is sent back", name);
    }
}

#[test]
fn chunk_and_init_vectors() {
    let r = testing::call(&vector("chunk-input").bytes, || {
        run_stream_chunk(|ctx, chunk| {
            assert!(!ctx.stream_end());
            assert_eq!(chunk.get_str("object"), Some("chat.completion.chunk"));
            ChunkResult::Pass
        })
    });
    assert_eq!(r.output, None);

    let r = testing::call(&vector("init-input").bytes, || {
        run_init(|config, name| {
            assert_eq!(name, "hello-world");
            assert_eq!(config.get("limits").and_then(|l| l.get("burst")).and_then(|b| b.as_float()), Some(1.5));
            InitResult::ok().request_body(false).response_body(false).stream_deltas(false)
        })
    });
    assert_eq!(hex(&r.output.unwrap()), hex(&vector("init-output").bytes));
}

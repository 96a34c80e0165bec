//! The kit's API beyond the vectors: results of every hook, case-insensitive
//! headers, the context's reserved keys, panics and bad input.

mod support;

use sandgate_pdk::host::testing;
use sandgate_pdk::*;
use support::vector;

fn envelope(v: Value) -> Vec<u8> {
    v.encode()
}

fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

fn output(r: &testing::CallResult) -> Value {
    Value::decode(r.output.as_ref().expect("an output")).unwrap()
}

#[test]
fn headers_are_case_insensitive_and_patched_lower_case() {
    let input = envelope(map(vec![(
        "req",
        map(vec![("headers", map(vec![("content-type", "text/plain".into()), ("x-old", "1".into())]))]),
    )]));
    let r = testing::call(&input, || {
        run_transport_pre(|_, req| {
            assert_eq!(req.header("CONTENT-TYPE"), Some("text/plain"));
            req.remove_header("X-Old");
            req.set_header("X-New", "2");
            assert_eq!(req.header("x-old"), None);
            assert_eq!(req.headers(), vec![("content-type", "text/plain"), ("x-new", "2")]);
            PreResult::Continue
        })
    });
    let patch = output(&r);
    let headers = patch.get("req").unwrap().get("headers").unwrap();
    assert_eq!(headers.get("x-old"), Some(&Value::Nil));
    assert_eq!(headers.get_str("x-new"), Some("2"));
}

#[test]
fn reserved_context_keys_are_refused_with_a_warning() {
    let r = testing::call(&vector("transport-pre-input").bytes, || {
        run_transport_pre(|ctx, _| {
            ctx.set("sandgate.request_id", "forged");
            assert_eq!(ctx.request_id(), "r1");
            PreResult::Continue
        })
    });
    assert_eq!(r.output, None);
    assert_eq!(r.logs.len(), 1);
    assert_eq!(r.logs[0].0, LogLevel::Warn);
    assert!(r.logs[0].1.contains("reserved"), "{}", r.logs[0].1);
}

#[test]
fn a_panic_is_logged_with_its_message_and_fails_the_call() {
    let r = testing::call(&vector("transport-pre-input").bytes, || {
        run_transport_pre(|ctx, _| {
            ctx.set("never", "sent");
            panic!("no route for model {}", "x")
        })
    });
    assert_eq!(r.panic.as_deref(), Some("no route for model x"));
    assert_eq!(r.output, None, "a failed call sends nothing");
    let (level, line) = r.logs.last().expect("the panic is logged");
    assert_eq!(*level, LogLevel::Error);
    assert!(line.contains("panicked at") && line.contains("no route for model x"), "{}", line);
}

#[test]
fn bad_input_fails_the_call_with_a_message_naming_the_offset() {
    let r = testing::call(&[0x82, 0xa3, b'c', b't', b'x'], || run_transport_pre(|_, _| PreResult::Continue));
    let msg = r.panic.expect("bad input must fail the call");
    assert!(msg.contains("cannot read the http_transport_pre_hook input envelope"), "{}", msg);
    assert!(msg.contains("at byte 5"), "{}", msg);
    assert!(r.logs.iter().any(|(l, m)| *l == LogLevel::Error && m.contains("at byte 5")));
}

#[test]
fn chunk_results() {
    let input = vector("chunk-input").bytes;
    let r = testing::call(&input, || run_stream_chunk(|_, _| ChunkResult::Drop));
    assert_eq!(output(&r).get("drop"), Some(&Value::Bool(true)));

    let r = testing::call(&input, || {
        run_stream_chunk(|_, chunk| {
            chunk.set("model", "edited");
            ChunkResult::Pass
        })
    });
    assert_eq!(output(&r).get("chunk").unwrap().get_str("model"), Some("edited"));

    let r = testing::call(&input, || run_stream_chunk(|_, _| ChunkResult::error("stop", 400, None)));
    let e = output(&r);
    assert_eq!(e.get("error").unwrap().get("status").and_then(|s| s.as_int()), Some(400));
    assert!(e.get("chunk").is_none());
}

#[test]
fn post_llm_edit_in_place_recover_and_fail() {
    let input = vector("llm-post-input-response").bytes;
    let r = testing::call(&input, || {
        run_post_llm(|_, resp, _| {
            let resp = resp.unwrap();
            assert_eq!(resp.text(), Some("Hi! How can I help? 🙂"));
            resp.set_text("redacted");
            LlmPostResult::Continue
        })
    });
    let out = output(&r);
    let msg = out.get("response").unwrap().get("choices").unwrap().at(0).unwrap().get("message").unwrap();
    assert_eq!(msg.get_str("content"), Some("redacted"));
    // Unmodelled keys are kept.
    assert_eq!(out.get("response").unwrap().get_str("system_fingerprint"), Some("fp_44709d6fcb"));

    let r = testing::call(&vector("llm-post-input-error-nil-fallbacks").bytes, || {
        run_post_llm(|_, _, err| {
            assert!(err.is_some());
            LlmPostResult::Respond(LlmResponse::assistant("cache", "from cache"))
        })
    });
    let out = output(&r);
    let resp = out.get("response").unwrap();
    assert_eq!(resp.get_str("model"), Some("cache"));
    assert!(resp.get("created").is_none(), "created left for the host to fill in");

    let r = testing::call(&input, || run_post_llm(|_, _, _| LlmPostResult::Error(LlmError::new("no"))));
    assert_eq!(output(&r).get("error").unwrap().get_str("message"), Some("no"));
}

#[test]
fn transport_post_patches_only_what_changed() {
    let r = testing::call(&vector("transport-post-input-body-utf8").bytes, || {
        run_transport_post(|_, _, resp| {
            resp.status = 201;
            resp.set_header("X-Processed-By", "rust");
            PostResult::Continue
        })
    });
    let out = output(&r);
    let resp = out.get("resp").unwrap();
    assert_eq!(resp.get("status").and_then(|s| s.as_int()), Some(201));
    assert_eq!(resp.get("headers").unwrap().get_str("x-processed-by"), Some("rust"));
    assert!(resp.get("body").is_none());
}

#[test]
fn legacy_interceptor_sends_changed_headers_and_body() {
    let input = envelope(map(vec![
        ("url", "/v1/chat/completions".into()),
        ("headers", map(vec![("authorization", "Bearer x".into())])),
        ("body", map(vec![("model", "a".into())])),
    ]));
    let r = testing::call(&input, || run_transport_interceptor(|_, _| InterceptorResult::Continue));
    assert_eq!(r.output, None);
    let r = testing::call(&input, || {
        run_transport_interceptor(|_, req| {
            assert_eq!(req.header("Authorization"), Some("Bearer x"));
            req.set_header("x-routed", "1");
            req.body.set("model", "b");
            InterceptorResult::Continue
        })
    });
    let out = output(&r);
    assert_eq!(out.get("headers").unwrap().get_str("x-routed"), Some("1"));
    assert_eq!(out.get("body").unwrap().get_str("model"), Some("b"));
}

#[test]
fn init_error_get_name_and_cleanup() {
    let r = testing::call(&[], || run_init(|config, _| {
        assert!(config.is_nil());
        InitResult::error("config.rules is required")
    }));
    assert_eq!(output(&r).get_str("error"), Some("config.rules is required"));
    let r = testing::call(&[], || run_get_name("router"));
    assert_eq!(output(&r), Value::Str("router".into()));
    let r = testing::call(&[], || run_cleanup(|| log_info("bye")));
    assert_eq!(r.output, None);
    assert_eq!(r.logs, vec![(LogLevel::Info, "bye".to_string())]);
}

#[test]
fn nesting_past_max_depth_is_refused_with_the_bound() {
    let depth = sandgate_pdk::value::MAX_DEPTH + 1;
    let mut bytes = vec![0x91; depth];
    bytes.push(0xc0);
    let err = Value::decode(&bytes).unwrap_err();
    assert!(err.message.contains("MAX_DEPTH"), "{}", err);
    let mut ok = vec![0x91; depth - 1];
    ok.push(0xc0);
    assert!(Value::decode(&ok).is_ok());
}

//! model-router: rewrites the model of every LLM attempt by rules in its config.
//!
//! The gateway calls `pre_llm_hook` once per attempt: the client's `model`
//! (attempt 0), then each of the client's `fallbacks` after a failure
//! (`sandgate.fallback_index` 1, 2, ...). On attempt 0 the first rule whose
//! `match` fits the client's "provider/model" is chosen (kept in the context);
//! attempt 0 goes to the rule's `route`, attempt k to its `fallbacks[k-1]`.
//! A rule with `deny` refuses the request with 403 and no fallbacks.
//!
//! ```json
//! { "rules": [
//!     { "match": "mock/smart*", "route": "mock/fail-503", "fallbacks": ["mock/echo-backup"] },
//!     { "match": "openai/gpt-4", "deny": "gpt-4 is retired here: ask for openai/gpt-4o" } ] }
//! ```

use sandgate_pdk::*;

/// Where the chosen rule's index is kept between attempts (attempts of one
/// request may run on different instances, so not in a module variable).
const RULE_KEY: &str = "model-router.rule";

struct Target {
    provider: String,
    model: String,
}

struct Rule {
    pattern: String,
    route: Option<Target>,
    fallbacks: Vec<Target>,
    deny: Option<String>,
}

impl Rule {
    /// `match` is a "provider/model" string; a trailing `*` matches any rest.
    fn matches(&self, target: &str) -> bool {
        match self.pattern.strip_suffix('*') {
            Some(prefix) => target.starts_with(prefix),
            None => target == self.pattern,
        }
    }
}

/// The rules, read once per instance in `init`.
static mut RULES: Vec<Rule> = Vec::new();

fn rules() -> &'static [Rule] {
    // Safety: a wasm instance is single-threaded; RULES is written only in `init`, before any hook.
    unsafe { &*std::ptr::addr_of!(RULES) }
}

fn target(v: Option<&Value>, path: &str) -> Result<Target, String> {
    let s = v.and_then(|v| v.as_str()).ok_or_else(|| format!("{} must be a \"provider/model\" string", path))?;
    match s.split_once('/') {
        Some((p, m)) if !p.is_empty() && !m.is_empty() => Ok(Target { provider: p.to_string(), model: m.to_string() }),
        _ => Err(format!("{} must be \"provider/model\", got \"{}\"", path, s)),
    }
}

fn parse_rules(config: &Value) -> Result<Vec<Rule>, String> {
    let list = config
        .get("rules")
        .and_then(|r| r.as_array())
        .ok_or("config.rules must be an array of rules, e.g. [{\"match\": \"mock/fast\", \"route\": \"mock/echo\"}]")?;
    let mut rules = Vec::new();
    for (i, r) in list.iter().enumerate() {
        let at = format!("config.rules[{}]", i);
        let pattern = r.get_str("match").ok_or_else(|| format!("{}.match must be a \"provider/model\" string (a trailing * matches any rest)", at))?;
        let deny = r.get_str("deny").map(|s| s.to_string());
        let route = match r.get("route") {
            None | Some(Value::Nil) => None,
            v => Some(target(v, &format!("{}.route", at))?),
        };
        let mut fallbacks = Vec::new();
        if let Some(list) = r.get("fallbacks") {
            let list = list.as_array().ok_or_else(|| format!("{}.fallbacks must be an array of \"provider/model\" strings", at))?;
            for (j, f) in list.iter().enumerate() {
                fallbacks.push(target(Some(f), &format!("{}.fallbacks[{}]", at, j))?);
            }
        }
        if route.is_none() && deny.is_none() && fallbacks.is_empty() {
            return Err(format!("{} needs \"route\", \"fallbacks\" or \"deny\"", at));
        }
        rules.push(Rule { pattern: pattern.to_string(), route, fallbacks, deny });
    }
    Ok(rules)
}

#[no_mangle]
pub extern "C" fn init() -> i32 {
    run_init(|config, _name| match parse_rules(config) {
        Ok(parsed) => {
            log_info(&format!("model-router: {} rule(s)", parsed.len()));
            unsafe { RULES = parsed };
            // Routing needs no HTTP bodies: the LLM hooks always get the parsed request.
            InitResult::ok().request_body(false).response_body(false)
        }
        Err(why) => InitResult::error(&why),
    })
}

#[no_mangle]
pub extern "C" fn get_name() -> i32 {
    run_get_name("model-router")
}

#[no_mangle]
pub extern "C" fn pre_llm_hook() -> i32 {
    run_pre_llm(|ctx, req| {
        let attempt = ctx.fallback_index();
        let asked = format!("{}/{}", req.provider, req.model);
        let rule_index = if attempt == 0 {
            match rules().iter().position(|r| r.matches(&asked)) {
                Some(i) => {
                    ctx.set(RULE_KEY, i as i64);
                    i
                }
                None => return LlmPreResult::Continue,
            }
        } else {
            match ctx.get_int(RULE_KEY) {
                Some(i) if (i as usize) < rules().len() => i as usize,
                _ => return LlmPreResult::Continue,
            }
        };
        let rule = &rules()[rule_index];
        if let Some(reason) = &rule.deny {
            log_info(&format!("model-router: {} denied by rule {}", asked, rule_index));
            return LlmPreResult::Error(
                LlmError::no_fallbacks(reason, 403).with_type("invalid_request_error").with_code("model_denied"),
            );
        }
        let to = if attempt == 0 { rule.route.as_ref() } else { rule.fallbacks.get(attempt as usize - 1) };
        if let Some(to) = to {
            log_info(&format!("model-router: attempt {} {} -> {}/{} (rule {})", attempt, asked, to.provider, to.model, rule_index));
            req.provider = to.provider.clone();
            req.model = to.model.clone();
        }
        LlmPreResult::Continue
    })
}

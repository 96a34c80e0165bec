//! The four `sandgate:host/v1` functions (ABI.md §4.2), logging, and the panic
//! hook. Built for anything but wasm32, the same functions run against an
//! in-process test host (`testing`), so the kit's native `cargo test` drives
//! the real hook runners.

#[cfg(target_arch = "wasm32")]
mod imports {
    #[link(wasm_import_module = "sandgate:host/v1")]
    extern "C" {
        pub fn input_length() -> i32;
        pub fn input_read(dst: *mut u8);
        pub fn output_write(src: *const u8, len: i32);
        pub fn log(level: i32, src: *const u8, len: i32);
    }
}

/// The call's whole input envelope (empty for `get_name` and `cleanup`).
#[cfg(target_arch = "wasm32")]
pub fn read_input() -> Vec<u8> {
    // Lengths are unsigned 32-bit (ABI.md §4).
    let n = unsafe { imports::input_length() } as u32 as usize;
    let mut buf = vec![0u8; n];
    if n > 0 {
        unsafe { imports::input_read(buf.as_mut_ptr()) };
    }
    buf
}

/// Sets the call's output (replacing any earlier one); empty means "continue, nothing changed".
#[cfg(target_arch = "wasm32")]
pub fn write_output(bytes: &[u8]) {
    unsafe { imports::output_write(bytes.as_ptr(), bytes.len() as i32) }
}

#[cfg(target_arch = "wasm32")]
fn host_log(level: LogLevel, msg: &str) {
    unsafe { imports::log(level as i32, msg.as_ptr(), msg.len() as i32) }
}

/// Log levels of the host's `log` (ABI.md §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Debug = 0,
    Info = 1,
    Warn = 2,
    Error = 3,
}

/// Writes `msg` to the gateway log, tagged with the plugin name and request id.
pub fn log(level: LogLevel, msg: &str) {
    host_log(level, msg)
}
pub fn log_debug(msg: &str) {
    log(LogLevel::Debug, msg)
}
pub fn log_info(msg: &str) {
    log(LogLevel::Info, msg)
}
pub fn log_warn(msg: &str) {
    log(LogLevel::Warn, msg)
}
pub fn log_error(msg: &str) {
    log(LogLevel::Error, msg)
}

/// Installs (once) the panic hook that writes the panic's message and location
/// to the gateway log at level error. With `panic = "abort"` the call then
/// traps, the gateway counts a plugin failure (`plugin_trap`) and applies the
/// plugin's `on_error`; wasm32-unknown-unknown has no stderr, so without this
/// the log would only say "unreachable".
pub fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        #[cfg(not(target_arch = "wasm32"))]
        let previous = std::panic::take_hook(); // native tests: still print as usual
        std::panic::set_hook(Box::new(move |info| {
            log_error(&format!("{}", info));
            #[cfg(not(target_arch = "wasm32"))]
            previous(info);
        }));
    });
}

#[cfg(not(target_arch = "wasm32"))]
pub use self::testing::{read_input, write_output};

#[cfg(not(target_arch = "wasm32"))]
fn host_log(level: LogLevel, msg: &str) {
    testing::STATE.with(|s| s.borrow_mut().logs.push((level, msg.to_string())));
}

/// A host in the test process, for native tests of hooks (not part of a wasm build).
#[cfg(not(target_arch = "wasm32"))]
pub mod testing {
    use super::LogLevel;
    use std::cell::RefCell;

    #[derive(Default)]
    pub(super) struct State {
        input: Vec<u8>,
        output: Option<Vec<u8>>,
        pub(super) logs: Vec<(LogLevel, String)>,
    }

    thread_local! {
        pub(super) static STATE: RefCell<State> = RefCell::new(State::default());
    }

    /// What one call left behind: its output (None if it set none), its log
    /// lines, and the panic message if it failed (in wasm: a trap).
    #[derive(Debug)]
    pub struct CallResult {
        pub output: Option<Vec<u8>>,
        pub logs: Vec<(LogLevel, String)>,
        pub panic: Option<String>,
    }

    /// Runs `export` (a hook function) with `input` as the call's input envelope, as the gateway would.
    ///
    /// ```
    /// use sandgate_pdk::{host::testing, run_get_name};
    /// let r = testing::call(&[], || run_get_name("demo"));
    /// assert_eq!(r.output.unwrap(), b"\xa4demo");
    /// ```
    pub fn call(input: &[u8], export: impl FnOnce() -> i32) -> CallResult {
        STATE.with(|s| *s.borrow_mut() = State { input: input.to_vec(), ..State::default() });
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(export));
        let panic = outcome.err().map(|e| {
            e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default()
        });
        STATE.with(|s| {
            let mut s = s.borrow_mut();
            CallResult { output: s.output.take(), logs: std::mem::take(&mut s.logs), panic }
        })
    }

    pub fn read_input() -> Vec<u8> {
        STATE.with(|s| s.borrow().input.clone())
    }

    pub fn write_output(bytes: &[u8]) {
        STATE.with(|s| s.borrow_mut().output = Some(bytes.to_vec()));
    }
}

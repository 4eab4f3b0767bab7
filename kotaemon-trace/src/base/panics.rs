//! The panic message for spans a panic unwinds through.
//!
//! A `Drop` impl cannot see the panic payload, so `init` installs a panic hook (once, chained in front of
//! whatever hook was there, which still runs) that keeps the message in a thread-local for the spans
//! being unwound on that thread.

use std::cell::RefCell;
use std::sync::Once;

thread_local! {
    static LAST: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Longest panic message kept (characters); the rest is cut.
const MAX_MESSAGE: usize = 2048;

pub(crate) fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("panic with a non-string payload");
            let message: String = message.chars().take(MAX_MESSAGE).collect();
            let _ = LAST.try_with(|last| {
                if let Ok(mut last) = last.try_borrow_mut() {
                    *last = Some(message);
                }
            });
            previous(info);
        }));
    });
}

/// The message of the panic unwinding on this thread, if the hook saw it.
pub(crate) fn last_message() -> Option<String> {
    LAST.try_with(|last| last.borrow().clone()).ok().flatten()
}

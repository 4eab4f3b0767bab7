//! `Redactor::redact` on clean input allocates nothing: the hot case (a short clean attribute) must cost a
//! scan, not a trip to the allocator. Counted per thread by a wrapper around the system allocator.

use kotaemon_trace::redact::Redactor;
use std::alloc::{GlobalAlloc, Layout, System};
use std::borrow::Cow;
use std::cell::Cell;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to `System`; the counter is a const-initialised thread-local
// `Cell`, which neither allocates nor re-enters the allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: the caller's contract is passed through to `System`.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: as for `dealloc`; `new_size` is the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn clean_values_are_borrowed_without_allocating() {
    let redactor = Redactor::default();
    let prompt = "Refunds reach your card 5 to 7 days after we receive the return. ".repeat(32);
    let clean: &[(&str, &str)] = &[
        ("user.query", "where is my order 90320"),
        ("input.value", "How does retrieval-augmented generation work?"),
        ("note", "reset your password from the account page"),
        ("note", "Error: invalid token (expired 5 minutes ago)"),
        ("note", "max_tokens=512, temperature=0.7"),
        ("note", "2026-01-08T10:14:00Z"),
        ("note", "d3fc4d83-cee9-4b9b-acca-0fce9594dc72"),
        ("note", "tracking number 8596581537520229"),
        ("document.author", "Jane Austen"),
        ("llm.token_count.prompt", "1200"),
        ("exception.type", "std::io::Error"),
        ("input.value", &prompt),
    ];
    // The first calls on a thread may fill caches (regex scratch space, the key-word buffer).
    for (key, value) in clean {
        let _ = redactor.redact(key, value);
    }
    for (key, value) in clean {
        let mut result = None;
        let n = allocations_during(|| result = Some(redactor.redact(key, value)));
        assert!(matches!(result, Some(Cow::Borrowed(_))), "{key} = {value:?} was changed");
        assert_eq!(n, 0, "{key} = {value:?} allocated {n} times");
    }
}

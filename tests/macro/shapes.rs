//! Function shapes: methods, trait impls, `impl Trait`, lifetimes, `unsafe`, recursion, early return,
//! borrowed returns with `ret`/`err`, other attributes kept.

use kotaemon_trace::trace_with_otel;
use kotaemon_trace_tests::capture::{attr, capture, named};
use opentelemetry::Value;

#[derive(Default)]
struct Index {
    docs: Vec<String>,
}

impl Index {
    #[trace_with_otel]
    fn len(&self) -> usize {
        self.docs.len()
    }

    #[trace_with_otel]
    fn add(&mut self, doc: &str) {
        self.docs.push(doc.to_owned());
    }

    #[trace_with_otel]
    fn into_docs(self) -> Vec<String> {
        self.docs
    }

    #[trace_with_otel(ret, err)]
    fn first(&self) -> Result<&str, String> {
        self.docs.first().map(String::as_str).ok_or_else(|| "empty index".to_owned())
    }

    #[trace_with_otel(ret, err)]
    fn first_mut(&mut self) -> Result<&mut String, String> {
        match self.docs.first_mut() {
            Some(doc) => Ok(doc),
            None => Err("empty index".to_owned()),
        }
    }
}

#[test]
fn methods_with_every_receiver_and_borrowed_returns() {
    let (docs, spans) = capture(|| {
        let mut index = Index::default();
        index.add("refunds");
        assert_eq!(index.len(), 1);
        assert_eq!(index.first().unwrap(), "refunds");
        index.first_mut().unwrap().push_str(" policy");
        index.into_docs()
    });
    assert_eq!(docs, ["refunds policy"]);
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_ref()).collect();
    assert_eq!(names, ["add", "len", "first", "first_mut", "into_docs"]);
    assert_eq!(attr(named(&spans, "first"), "output.value"), Some(&Value::from("refunds")));
    assert_eq!(attr(named(&spans, "add"), "doc"), Some(&Value::from("refunds")));
}

#[trace_with_otel(ret)]
fn longest<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.len() >= b.len() {
        a
    } else {
        b
    }
}

#[trace_with_otel(ret, err)]
fn pick<'a>(items: &'a mut Vec<u8>, i: usize) -> Result<&'a mut u8, String> {
    let len = items.len();
    items.get_mut(i).ok_or(format!("index {i} out of {len}"))
}

#[test]
fn lifetimes_and_references_into_arguments() {
    let ((), spans) = capture(|| {
        assert_eq!(longest("abc", "de"), "abc");
        let mut v = vec![1, 2];
        *pick(&mut v, 1).unwrap() = 9;
        assert_eq!(v, [1, 9]);
        assert!(pick(&mut v, 5).is_err());
    });
    assert_eq!(attr(named(&spans, "longest"), "output.value"), Some(&Value::from("abc")));
    assert_eq!(spans.iter().filter(|s| s.name == "pick").count(), 2);
}

#[trace_with_otel]
fn sum_all(items: impl IntoIterator<Item = u32>) -> u32 {
    items.into_iter().sum()
}

#[trace_with_otel(ret)]
fn evens(limit: u32) -> impl Iterator<Item = u32> {
    (0..limit).filter(|n| n % 2 == 0)
}

#[test]
fn impl_trait_in_arguments_and_return() {
    let (total, spans) = capture(|| sum_all(evens(7)));
    assert_eq!(total, 12);
    assert_eq!(attr(named(&spans, "evens"), "limit"), Some(&Value::I64(7)));
    assert!(attr(named(&spans, "evens"), "output.value").is_some(), "Filter is Debug");
    assert_eq!(attr(named(&spans, "sum_all"), "items"), None, "an opaque impl Trait is not recorded");
}

/// # Safety
/// `ptr` must be valid for reads.
#[trace_with_otel]
unsafe fn read(ptr: *const u32) -> u32 {
    unsafe { *ptr }
}

#[test]
fn unsafe_fn() {
    let value = 7u32;
    let (read_back, spans) = capture(|| unsafe { read(&value) });
    assert_eq!(read_back, 7);
    assert_eq!(spans.len(), 1);
}

#[trace_with_otel]
fn fib(n: u32) -> u64 {
    if n < 2 {
        return u64::from(n);
    }
    fib(n - 1) + fib(n - 2)
}

#[test]
fn recursion_nests_and_early_return_ends_the_span() {
    let (value, spans) = capture(|| fib(4));
    assert_eq!(value, 3);
    assert_eq!(spans.len(), 9, "fib(4) makes 9 calls");
    let root = spans.iter().find(|s| attr(s, "n") == Some(&Value::I64(4))).unwrap();
    let children: Vec<_> = spans.iter().filter(|s| s.parent_span_id == root.span_context.span_id()).collect();
    assert_eq!(children.len(), 2);
}

trait Retriever {
    fn retrieve(&self, query: &str) -> Vec<String>;
}

struct Keyword;

impl Retriever for Keyword {
    #[trace_with_otel("retriever.keyword")]
    fn retrieve(&self, query: &str) -> Vec<String> {
        vec![query.to_uppercase()]
    }
}

#[test]
fn trait_impl_methods_and_dyn_dispatch() {
    let retriever: Box<dyn Retriever> = Box::new(Keyword);
    let (docs, spans) = capture(|| retriever.retrieve("q"));
    assert_eq!(docs, ["Q"]);
    assert_eq!(spans[0].name, "retriever.keyword");
}

/// Docs stay, and so do other attributes in either order.
#[must_use]
#[trace_with_otel]
#[inline]
fn kept_attributes() -> u8 {
    1
}

#[trace_with_otel]
#[cfg(test)]
fn cfg_after() -> u8 {
    2
}

#[test]
fn other_attributes_are_kept() {
    let (v, spans) = capture(|| kept_attributes() + cfg_after());
    assert_eq!(v, 3);
    assert_eq!(spans.len(), 2);
}

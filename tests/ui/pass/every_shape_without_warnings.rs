//! Every supported shape, compiled with warnings denied: the expansion adds no warning or lint.
//!
//! trybuild builds it as a program; the `macro` test binary also includes it as a module (so clippy,
//! run with `-D warnings` over the tests, checks every shape too) and runs its `main`.
#![deny(warnings)]
// The user code below is deliberately unusual (a `cfg(all())` argument, a `name @ _` binding); these
// three lints judge that user code, not the expansion.
#![allow(clippy::non_minimal_cfg, clippy::redundant_pattern, clippy::map_clone)]

use kotaemon_trace::trace_with_otel;
use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;

#[derive(Debug)]
pub struct Failure;

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("failure")
    }
}

#[trace_with_otel]
fn plain(x: u32) -> u32 {
    x
}

#[trace_with_otel]
fn no_arguments() {}

#[trace_with_otel(ret, err)]
fn fallible(x: u32) -> Result<u32, Failure> {
    if x == 0 {
        return Err(Failure);
    }
    Ok(x)
}

fn step(x: u32) -> Result<u32, Failure> {
    fallible(x)
}

#[trace_with_otel(err)]
fn question_mark(x: u32) -> Result<u32, Failure> {
    let y = step(x)?;
    Ok(y + 1)
}

#[trace_with_otel(skip_all, ret)]
fn unit_return(_unused: u32) {}

#[trace_with_otel(ret)]
fn unit_return_with_semicolon(x: u32) {
    let _ = x;
}

#[trace_with_otel(ret, err)]
async fn async_fallible(x: u32) -> Result<u32, Failure> {
    let y = step(x)?;
    Ok(y)
}

#[trace_with_otel]
async fn async_unit() {}

#[trace_with_otel(ret)]
async fn async_borrowed(text: &str) -> &str {
    text.trim()
}

#[trace_with_otel("retriever.invoke", skip(_unused), fields(retriever.k = 3, "http.route" = "/ask"), ret)]
fn every_option(query: &str, _unused: u8) -> usize {
    query.len()
}

#[trace_with_otel(ret, name = "named.last")]
fn name_after_other_options() -> u8 {
    1
}

pub struct S {
    k: u32,
}

impl S {
    #[trace_with_otel(skip(self), fields(k = self.k))]
    fn by_ref(&self) -> u32 {
        self.k
    }

    #[trace_with_otel(ret)]
    fn by_mut(&mut self) -> &mut u32 {
        &mut self.k
    }

    #[trace_with_otel]
    fn by_value(self) -> u32 {
        self.k
    }

    #[trace_with_otel(ret, err)]
    fn borrowed_result(&self, key: &str) -> Result<&u32, Failure> {
        if key.is_empty() {
            return Err(Failure);
        }
        Ok(&self.k)
    }

    #[trace_with_otel]
    fn associated() -> Self {
        S { k: 0 }
    }
}

pub trait Tool {
    fn run<'a>(&'a self, x: u32) -> Pin<Box<dyn Future<Output = u32> + Send + 'a>>;
    fn run_fallible<'a>(&'a self, x: u32) -> Pin<Box<dyn Future<Output = Result<u32, Failure>> + Send + 'a>>;
    fn run_later(&self, x: u32) -> impl Future<Output = Result<u32, Failure>> + Send;
    #[allow(async_fn_in_trait)]
    async fn run_native(&self, x: u32) -> Result<u32, Failure>;
}

impl Tool for S {
    #[trace_with_otel]
    fn run<'a>(&'a self, x: u32) -> Pin<Box<dyn Future<Output = u32> + Send + 'a>> {
        Box::pin(async move { self.k + x })
    }

    // `?` inside the future: its error type comes from the signature's `Output = …`.
    #[trace_with_otel(ret, err)]
    fn run_fallible<'a>(&'a self, x: u32) -> Pin<Box<dyn Future<Output = Result<u32, Failure>> + Send + 'a>> {
        let k = self.k;
        Box::pin(async move {
            let y = step(x)?;
            Ok(k + y)
        })
    }

    #[trace_with_otel(ret, err)]
    fn run_later(&self, x: u32) -> impl Future<Output = Result<u32, Failure>> + Send {
        let k = self.k;
        async move { Ok(k + step(x)?) }
    }

    #[trace_with_otel(ret, err)]
    async fn run_native(&self, x: u32) -> Result<u32, Failure> {
        Ok(self.k + step(x)?)
    }
}

#[trace_with_otel]
fn generic<T: Clone, U>(t: T, _u: U) -> T
where
    U: Send,
{
    t.clone()
}

/// No `Debug` on `T`: recorded as nothing, and no compile error.
#[trace_with_otel(ret, err)]
fn generic_without_debug<T, E: fmt::Display>(t: Result<T, E>) -> Result<T, E> {
    t
}

#[trace_with_otel(ret)]
fn iter(n: u32) -> impl Iterator<Item = u32> {
    0..n
}

#[trace_with_otel]
fn impl_argument(items: impl IntoIterator<Item = u32>) -> u32 {
    items.into_iter().sum()
}

#[trace_with_otel(ret)]
fn longest<'a, 'b: 'a>(a: &'a str, b: &'b str) -> &'a str {
    if a.len() >= b.len() {
        a
    } else {
        b
    }
}

#[trace_with_otel(ret)]
fn cow(text: &str) -> Cow<'_, str> {
    Cow::Borrowed(text)
}

#[trace_with_otel]
#[allow(clippy::too_many_arguments)]
fn destructured(
    (a, b): (u32, u32),
    S { k }: S,
    [first, ..]: [u8; 2],
    mut counter: u32,
    ref_arg @ _: u8,
    _: bool,
) -> u32 {
    counter += 1;
    a + b + k + u32::from(first) + counter + u32::from(ref_arg)
}

/// # Safety
/// `ptr` must be valid for reads.
#[trace_with_otel]
unsafe fn read(ptr: *const u32) -> u32 {
    unsafe { *ptr }
}

/// # Safety
/// `ptr` must be valid for reads.
#[trace_with_otel(ret)]
unsafe fn read_ret(ptr: *const u32) -> u32 {
    unsafe { *ptr }
}

#[trace_with_otel]
fn recursive(n: u32) -> u32 {
    if n == 0 {
        return 0;
    }
    recursive(n - 1) + 1
}

/// Documentation stays.
#[must_use]
#[trace_with_otel]
#[inline]
fn attributes_before_and_after() -> u8 {
    1
}

#[trace_with_otel]
#[must_use = "keep it"]
#[cfg(all())]
#[inline(never)]
fn attributes_after() -> u8 {
    2
}

#[trace_with_otel]
#[cfg(any())]
fn compiled_out() -> u8 {
    3
}

#[trace_with_otel]
pub(crate) extern "C" fn extern_c(x: u32) -> u32 {
    x
}

#[trace_with_otel]
fn r#match(r#type: u8) -> u8 {
    r#type
}

/// A user's own items named like what the expansion uses cannot break it: generated code uses absolute
/// paths (`::kotaemon_trace::__private`, `::core`) and mixed-site hygiene for its locals.
mod shadowing {
    #![allow(dead_code, non_camel_case_types)]
    mod kotaemon_trace {}
    mod opentelemetry {}
    mod core {}
    struct Option;
    struct Result;
    struct __KT_CALLSITE;
    fn call_once() {}

    #[super::trace_with_otel(ret, err)]
    pub fn shadowed(__kt_span: u32, __kt_ret: u32) -> ::core::result::Result<u32, super::Failure> {
        let __kt_attrs = __kt_span + __kt_ret;
        ::core::result::Result::Ok(__kt_attrs)
    }
}

/// Calls every shape once (without a pipeline: the inert path).
pub fn main() {
    let _ = plain(1) + fallible(1).unwrap_or(0) + question_mark(0).unwrap_or(0);
    no_arguments();
    unit_return(3);
    unit_return_with_semicolon(4);
    let _ = every_option("q", 1) + usize::from(name_after_other_options());
    let mut s = S { k: 1 };
    *s.by_mut() += 1;
    let _ = s.by_ref() + generic(1u8, "u") as u32 + iter(3).sum::<u32>() + impl_argument([1, 2]);
    let _ = s.borrowed_result("k").map(|k| *k);
    drop(s.run(2));
    drop(s.run_fallible(2));
    drop(s.run_later(2));
    drop(s.run_native(2));
    drop(async_fallible(1));
    drop(async_unit());
    drop(async_borrowed(" x "));
    let _ = s.by_value() + S::associated().k;
    struct NoDebug;
    let _ = generic_without_debug::<NoDebug, Failure>(Ok(NoDebug)).is_ok();
    let _ = longest("a", "bc").len() + cow("c").len();
    let _ = destructured((1, 2), S { k: 3 }, [4, 5], 6, 7, true);
    let value = 7;
    // SAFETY: `&value` is valid for reads.
    let _ = unsafe { read(&value) + read_ret(&value) };
    let _ = recursive(3) + u32::from(attributes_before_and_after() + attributes_after()) + extern_c(1);
    let _ = r#match(1);
    let _ = shadowing::shadowed(1, 2);
}

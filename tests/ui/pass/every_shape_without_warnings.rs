//! Every supported shape, compiled with warnings denied: the expansion adds no warning or lint.
#![deny(warnings)]

use kotaemon_trace::trace_with_otel;
use std::future::Future;
use std::pin::Pin;

#[derive(Debug)]
pub struct Failure;

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("failure")
    }
}

#[trace_with_otel]
fn plain(x: u32) -> u32 {
    x
}

#[trace_with_otel(ret, err)]
fn fallible(x: u32) -> Result<u32, Failure> {
    if x == 0 {
        return Err(Failure);
    }
    Ok(x)
}

#[trace_with_otel(skip_all, ret)]
fn unit_return(_unused: u32) {}

#[trace_with_otel(ret, err)]
async fn async_fallible(x: u32) -> Result<u32, Failure> {
    fallible(x)
}

#[trace_with_otel]
async fn async_unit() {}

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
}

pub trait Tool {
    fn run<'a>(&'a self, x: u32) -> Pin<Box<dyn Future<Output = u32> + Send + 'a>>;
}

impl Tool for S {
    #[trace_with_otel]
    fn run<'a>(&'a self, x: u32) -> Pin<Box<dyn Future<Output = u32> + Send + 'a>> {
        Box::pin(async move { self.k + x })
    }
}

#[trace_with_otel]
fn generic<T: Clone, U>(t: T, _u: U) -> T
where
    U: Send,
{
    t.clone()
}

#[trace_with_otel(ret)]
fn iter(n: u32) -> impl Iterator<Item = u32> {
    0..n
}

fn main() {
    let _ = plain(1) + fallible(1).unwrap_or(0);
    unit_return(3);
    let mut s = S { k: 1 };
    *s.by_mut() += 1;
    let _ = s.by_ref() + generic(1u8, "u") as u32 + iter(3).sum::<u32>();
    let fut = s.run(2);
    drop(fut);
    drop(async_fallible(1));
    drop(async_unit());
    let _ = s.by_value();
}

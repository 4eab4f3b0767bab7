//! The `#[trace_with_otel]` attribute of kotaemon-trace.
//!
//! Depend on `kotaemon-trace`, which re-exports it as `kotaemon_trace::trace_with_otel` and documents
//! it with runnable examples. This crate only parses (`parse.rs`), checks the options against the
//! function (`validate.rs`) and generates code (`expand.rs`); the generated code calls the runtime
//! through `::kotaemon_trace::__private`.
//!
//! | option | effect |
//! |---|---|
//! | `"name"` / `name = "..."` | span name (default: the function's name) |
//! | `skip(a, b)`, `skip_all` | arguments not recorded (`self` never is) |
//! | `fields(key.path = expr, ...)` | extra attributes, evaluated at entry when the span is sampled |
//! | `ret` | the return value as `output.value` |
//! | `err` | an `Err` sets status Error and adds an `exception` event |
//! | `sample = "always"` / `"never"` | record whatever the sampler says / never record |
//!
//! Without the `enabled` feature (the runtime's default feature of the same name) the options are still
//! checked, and the function is returned unchanged.
#![forbid(unsafe_code)]

mod expand;
mod parse;
mod validate;

use proc_macro::TokenStream;

/// Traces every call of the function as an OpenTelemetry span. See `kotaemon_trace::trace_with_otel`.
#[proc_macro_attribute]
pub fn trace_with_otel(args: TokenStream, item: TokenStream) -> TokenStream {
    let args = match syn::parse::<parse::Args>(args) {
        Ok(args) => args,
        Err(error) => return with_item(error, item),
    };
    let function = match syn::parse::<syn::ItemFn>(item.clone()) {
        Ok(function) => function,
        Err(_) => {
            let item2: proc_macro2::TokenStream = item.clone().into();
            let error = syn::Error::new_spanned(
                first_tokens(item2),
                "#[trace_with_otel] goes on a function (fn, async fn or method); this item is not one",
            );
            return with_item(error, item);
        }
    };
    let plan = match validate::validate(&args, &function) {
        Ok(plan) => plan,
        Err(error) => return with_item(error, item),
    };
    if cfg!(feature = "enabled") {
        expand::expand(&args, &plan, function).into()
    } else {
        item
    }
}

/// The error, plus the item unchanged, so one mistake in the attribute does not cascade into "cannot
/// find function" errors wherever the function is used.
fn with_item(error: syn::Error, item: TokenStream) -> TokenStream {
    let mut out: proc_macro2::TokenStream = error.to_compile_error();
    out.extend(proc_macro2::TokenStream::from(item));
    out.into()
}

/// The item's first tokens (its keyword and name), for pointing at it without underlining all of it.
fn first_tokens(item: proc_macro2::TokenStream) -> proc_macro2::TokenStream {
    item.into_iter()
        .skip_while(|t| matches!(t, proc_macro2::TokenTree::Punct(p) if p.as_char() == '#'))
        .skip_while(|t| matches!(t, proc_macro2::TokenTree::Group(_)))
        .take(2)
        .collect()
}

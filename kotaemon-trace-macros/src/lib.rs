//! The `#[trace_with_otel]` attribute of kotaemon-trace.
//!
//! Depend on `kotaemon-trace`, which re-exports it as `kotaemon_trace::trace_with_otel` and documents it
//! with a runnable example (a proc-macro crate cannot run its own attribute in doc tests).
//!
//! ```text
//! #[trace_with_otel]                                  // span name = the function's name
//! #[trace_with_otel("retriever.invoke")]              // explicit name; also name = "retriever.invoke"
//! #[trace_with_otel("retriever.invoke",
//!     skip(self, client),                             // arguments not recorded (self never is)
//!     skip_all,                                       // no argument recorded
//!     fields(retriever.type = "vector", retriever.k = self.k as i64),   // evaluated at entry
//!     ret,                                            // the return value as `output.value`
//!     err,                                            // Err(e): status Error + `exception` event
//!     redact(phone),                                  // recorded as a pseudonym
//!     sample = "always",                              // or "never"
//!     kind = "retriever",                             // llm, tool, embedding, reranker, chain, agent, guardrail
//!     span_kind = "client",                           // server, client, producer, consumer, internal
//! )]
//! ```
//!
//! | option | effect |
//! |---|---|
//! | `"name"` / `name = "..."` | span name (default: the function's name) |
//! | `skip(a, b)`, `skip_all` | arguments not recorded (`self` never is) |
//! | `fields(key.path = expr, ...)` | extra attributes, evaluated at entry when the span is sampled; a field named like an argument replaces it |
//! | `ret` | the return value as `output.value` (with `err`, the `Ok` value) |
//! | `err` | an `Err` sets status Error and adds an `exception` event |
//! | `redact(a)` | the argument as a pseudonym |
//! | `sample = "always"` / `"never"` | record whatever the sampler says / never record |
//! | `kind = "llm"` | `openinference.span.kind`, `gen_ai.operation.name`, CLIENT for llm/embedding/tool |
//! | `span_kind = "server"` | the OpenTelemetry span kind |
//!
//! ```ignore
//! use kotaemon_trace::trace_with_otel;
//!
//! #[trace_with_otel("retrieve.knowledge_base", skip(kb), fields(retriever.type = "vector"), ret)]
//! fn retrieve(kb: &KnowledgeBase, query: &str, k: usize) -> Vec<String> {
//!     kb.search(query, k)
//! }
//! ```
//!
//! Layout: `parse.rs` reads the options (one `Opt` per option; all mistakes reported together, each on
//! its token), `validate.rs` checks them against the function (skipped names exist, `self` only with a
//! receiver, no `const fn`) and lists the bindings to record, `expand.rs` generates the code. Generated
//! code names only `::kotaemon_trace::__private::…`, so a user's own module named `opentelemetry` or
//! `kotaemon_trace` cannot break it, and re-emits the user's tokens with their spans, so errors in the
//! body point at the user's lines.
//!
//! Without the `enabled` feature (set by the runtime's default feature of the same name) the options are
//! still checked, and the function is returned unchanged.
#![forbid(unsafe_code)]

mod expand;
mod parse;
mod validate;

use proc_macro::TokenStream;

/// (Defined in `kotaemon-trace-macros`; use it through `kotaemon_trace::trace_with_otel`.)
#[proc_macro_attribute]
pub fn trace_with_otel(args: TokenStream, item: TokenStream) -> TokenStream {
    // Both halves are checked before giving up, so a bad option and a bad item are reported together.
    let args = syn::parse::<parse::Args>(args);
    let function = syn::parse::<syn::ItemFn>(item.clone()).map_err(|_| not_a_function(item.clone().into()));
    let (args, function) = match (args, function) {
        (Ok(args), Ok(function)) => (args, function),
        (Err(mut first), Err(second)) => {
            first.combine(second);
            return with_item(first, item);
        }
        (Err(error), _) | (_, Err(error)) => return with_item(error, item),
    };
    let plan = match validate::validate(&args, &function) {
        Ok(plan) => plan,
        Err(error) => return with_item(error, item),
    };
    if cfg!(feature = "enabled") { expand::expand(&args, &plan, function).into() } else { item }
}

/// The error for an item that is not a function with a body, at its first tokens.
fn not_a_function(item: proc_macro2::TokenStream) -> syn::Error {
    if let Ok(method) = syn::parse2::<syn::TraitItemFn>(item.clone())
        && method.default.is_none()
    {
        let (fn_token, ident) = (&method.sig.fn_token, &method.sig.ident);
        return syn::Error::new_spanned(
            quote::quote!(#fn_token #ident),
            "#[trace_with_otel] needs a function body: put it on the method in each `impl`, not on its declaration in the trait",
        );
    }
    syn::Error::new_spanned(
        first_tokens(item),
        "#[trace_with_otel] goes on a function (fn, async fn or method); this item is not one",
    )
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

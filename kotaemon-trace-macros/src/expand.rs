//! Code generation. The user's tokens are re-emitted with their own spans (so errors in the body point at
//! the user's lines); everything generated names `::kotaemon_trace::__private::…` and uses mixed-site
//! hygiene for its locals, so it can neither collide with nor be broken by the user's names.

use crate::parse::{Args, Sample};
use crate::validate::Plan;
use proc_macro2::{Span, TokenStream};
use quote::{ToTokens as _, quote, quote_spanned};
use syn::spanned::Spanned as _;
use syn::visit::Visit;
use syn::{Block, Expr, ItemFn, ReturnType, Stmt, Type};

fn local(name: &str) -> syn::Ident {
    syn::Ident::new(name, Span::mixed_site())
}

/// `Some(value)` for anything: typed, else `Debug`, else `None`, chosen at compile time.
fn probe(value: TokenStream) -> TokenStream {
    quote! {
        {
            #[allow(unused_imports)]
            use ::kotaemon_trace::__private::{ViaDebug as _, ViaNothing as _, ViaTyped as _};
            (&&&::kotaemon_trace::__private::Probe(#value)).__kt_value()
        }
    }
}

/// Whether a type mentions `impl Trait` (which cannot be named in a `let`).
fn has_impl_trait(ty: &Type) -> bool {
    struct Finder(bool);
    impl<'a> Visit<'a> for Finder {
        fn visit_type_impl_trait(&mut self, _: &'a syn::TypeImplTrait) {
            self.0 = true;
        }
    }
    let mut finder = Finder(false);
    finder.visit_type(ty);
    finder.0
}

/// Pins a closure's or async block's return type to `ty` (the function's), so `?` and `return` infer as
/// they did before the body was wrapped. Elided lifetimes in a `let` type are inferred, so they work too.
/// Spanned at the return type: "return type inferred to be `T` here" points at the user's `-> T`.
/// Nothing for `impl Trait` (not nameable in a `let`) or `!` (not a stable `let` type).
fn fake_return(ty: Option<&Type>) -> TokenStream {
    let (ty, span) = match ty {
        None => (quote!(()), Span::call_site()),
        Some(ty) if has_impl_trait(ty) || matches!(ty, Type::Never(_)) => return TokenStream::new(),
        Some(ty) => (ty.to_token_stream(), ty.span()),
    };
    // Mixed-site hygiene, located at the return type: the user cannot name it, and rustc's note on
    // the inferred return type points at the signature.
    let fake = syn::Ident::new("__kt_fake_return", Span::mixed_site().located_at(span));
    quote_spanned! {span=>
        #[allow(
            unknown_lints,
            unreachable_code,
            clippy::diverging_sub_expression,
            clippy::empty_loop,
            clippy::let_unit_value,
            clippy::needless_return,
            clippy::unreachable
        )]
        if false {
            let #fake: #ty = loop {};
            return #fake;
        }
    }
}

/// The function's declared return type, if any.
fn return_type(output: &ReturnType) -> Option<&Type> {
    match output {
        ReturnType::Default => None,
        ReturnType::Type(_, ty) => Some(ty),
    }
}

/// `T` in a return type such as `Pin<Box<dyn Future<Output = T> + Send + 'a>>` or
/// `impl Future<Output = T>`: what the returned future yields, when the signature says it.
fn future_output(ty: &Type) -> Option<&Type> {
    fn in_bounds<'a>(bounds: impl IntoIterator<Item = &'a syn::TypeParamBound>) -> Option<&'a Type> {
        bounds.into_iter().find_map(|bound| {
            let syn::TypeParamBound::Trait(bound) = bound else { return None };
            let last = bound.path.segments.last()?;
            if last.ident != "Future" {
                return None;
            }
            let syn::PathArguments::AngleBracketed(generic) = &last.arguments else { return None };
            generic.args.iter().find_map(|arg| match arg {
                syn::GenericArgument::AssocType(assoc) if assoc.ident == "Output" => Some(&assoc.ty),
                _ => None,
            })
        })
    }
    match ty {
        Type::ImplTrait(t) => in_bounds(&t.bounds),
        Type::TraitObject(t) => in_bounds(&t.bounds),
        Type::Paren(t) => future_output(&t.elem),
        Type::Group(t) => future_output(&t.elem),
        // `Pin<Box<…>>`, `Box<…>`, or any other wrapper: look at its one type argument.
        Type::Path(p) => {
            let last = p.path.segments.last()?;
            if !matches!(last.ident.to_string().as_str(), "Pin" | "Box") {
                return None;
            }
            let syn::PathArguments::AngleBracketed(generic) = &last.arguments else { return None };
            generic.args.iter().find_map(|arg| match arg {
                syn::GenericArgument::Type(inner) => future_output(inner),
                _ => None,
            })
        }
        _ => None,
    }
}

/// The `async move { ... }` a non-async function returns as its final expression, bare or inside
/// `Box::pin(...)`: the shape `#[async_trait]` and hand-written trait objects produce.
fn async_tail(block: &mut Block) -> Option<&mut syn::ExprAsync> {
    let Some(Stmt::Expr(tail, None)) = block.stmts.last_mut() else { return None };
    let inner = match tail {
        Expr::Call(call) => {
            let Expr::Path(path) = &*call.func else { return None };
            let segments = &path.path.segments;
            let n = segments.len();
            let is_box_pin = n >= 2 && segments[n - 2].ident == "Box" && segments[n - 1].ident == "pin";
            if !is_box_pin || call.args.len() != 1 {
                return None;
            }
            call.args.first_mut()?
        }
        async_block @ Expr::Async(_) => async_block,
        _ => return None,
    };
    match inner {
        Expr::Async(inner) if inner.capture.is_some() => Some(inner),
        _ => None,
    }
}

pub(crate) fn expand(args: &Args, plan: &Plan, mut function: ItemFn) -> TokenStream {
    let name = match &args.name {
        Some(lit) => lit.value(),
        None => function.sig.ident.unraw_name(),
    };
    let span_var = local("__kt_span");
    let ret_var = local("__kt_ret");
    let attrs_var = local("__kt_attrs");
    let site = local("__KT_CALLSITE");

    // A model call's text arguments and result are content (prompts, completions, input to embed): they
    // follow the content-capture switch, as the `llm::prompt` helpers do.
    let content = matches!(args.kind, Some("llm" | "embedding"));
    let mut pushes = Vec::new();
    for arg in &plan.recorded {
        let key = arg.unraw_name();
        let value = probe(quote!(&#arg));
        if content {
            pushes.push(quote!(#attrs_var.push_content_arg(#key, || #value);));
        } else {
            pushes.push(quote!(#attrs_var.push_arg(#key, || #value);));
        }
    }
    for arg in &plan.pseudonyms {
        let key = arg.unraw_name();
        let value = probe(quote!(&#arg));
        pushes.push(quote!(#attrs_var.push_pseudonym(#key, #value);));
    }
    for field in &args.fields {
        let key = &field.key.text;
        let expr = &field.value;
        let value = match expr {
            // A string literal is `'static`: the value borrows it instead of copying it into a `String`
            // (one allocation fewer per call, on the caller's thread).
            Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(text), attrs }) if attrs.is_empty() => {
                quote_spanned!(text.span()=> ::core::option::Option::Some(::kotaemon_trace::__private::Value::from(#text)))
            }
            _ => probe(quote!(&(#expr))),
        };
        pushes.push(quote!(#attrs_var.push(#key, #value);));
    }
    let capacity = pushes.len();
    let sample = match args.sample {
        None => quote!(Default),
        Some(Sample::Always) => quote!(Always),
        Some(Sample::Never) => quote!(Never),
    };
    let semantic = match args.kind {
        Some(kind) => {
            let variant = syn::Ident::new(semantic_variant(kind), Span::call_site());
            quote!(::core::option::Option::Some(::kotaemon_trace::__private::Semantic::#variant))
        }
        None => quote!(::core::option::Option::None),
    };
    let span_kind = syn::Ident::new(span_kind_variant(args.span_kind, args.kind), Span::call_site());
    let kind_explicit = args.span_kind.is_some();
    let capacity = capacity + if args.kind.is_some() { 2 } else { 0 };
    let callsite = quote! {
        static #site: ::kotaemon_trace::__private::Callsite = ::kotaemon_trace::__private::Callsite {
            name: #name,
            kind: ::kotaemon_trace::__private::SpanKind::#span_kind,
            kind_explicit: #kind_explicit,
            semantic: #semantic,
            metrics: ::kotaemon_trace::__private::CallsiteMetrics::new(),
            attributes: #capacity,
            sample: ::kotaemon_trace::__private::Sample::#sample,
        };
    };
    let record = quote!(|#attrs_var: &mut ::kotaemon_trace::__private::Attributes| { #(#pushes)* });

    // What to do with the value before returning it. Everything that needs a `Result` goes through
    // `ErrResult` at the `err` token, so a function that does not return one gets one error, there.
    let at_err = args.err.map(|span| Span::mixed_site().located_at(span));
    let record_ret = args.ret.map(|span| {
        let value = match at_err {
            Some(at_err) => {
                let ok = local("__kt_ok");
                let probe_ok = probe(quote!(#ok));
                let ret_at_err = syn::Ident::new("__kt_ret", at_err);
                quote_spanned! {at_err=>
                    match ::kotaemon_trace::__private::ErrResult::__kt_ok(&#ret_at_err) {
                        ::core::option::Option::Some(#ok) => #probe_ok,
                        ::core::option::Option::None => ::core::option::Option::None,
                    }
                }
            }
            None => probe(quote!(&#ret_var)),
        };
        if content {
            quote_spanned!(span=> #span_var.record_content_ret(#value);)
        } else {
            quote_spanned!(span=> #span_var.record_ret(#value);)
        }
    });
    let record_err = at_err.map(|at_err| {
        let ret_at_err = syn::Ident::new("__kt_ret", at_err);
        quote_spanned!(at_err=> ::kotaemon_trace::__private::ErrResult::__kt_record_err(&#ret_at_err, &#span_var);)
    });
    let records_result = record_ret.is_some() || record_err.is_some();

    let output = function.sig.output.clone();
    let returns = return_type(&output);
    let body = &mut function.block;

    let new_body = if function.sig.asyncness.is_some() {
        let fake = fake_return(returns);
        let stmts = &body.stmts;
        let inner = quote!(async move { #fake #(#stmts)* });
        if records_result {
            quote! {{
                #callsite
                let (#ret_var, #span_var) = ::kotaemon_trace::__private::ActiveSpan::start(&#site, #record).run(#inner).await;
                #record_ret
                #record_err
                #ret_var
            }}
        } else {
            quote! {{
                #callsite
                ::kotaemon_trace::__private::ActiveSpan::start(&#site, #record).run(#inner).await.0
            }}
        }
    } else if let Some(inner) = async_tail(body) {
        // The span starts at the call, is current while the statements before the future run, and is
        // moved into the future, which it covers to the end.
        let fake = returns.and_then(future_output).map(|ty| fake_return(Some(ty)));
        let inner_stmts = &inner.block.stmts;
        let wrapped: syn::ExprAsync = syn::parse_quote! {
            async move {
                let (#ret_var, #span_var) = #span_var.run(async move { #fake #(#inner_stmts)* }).await;
                #record_ret
                #record_err
                #ret_var
            }
        };
        *inner = wrapped;
        let entered = local("__kt_entered");
        let stmts = &body.stmts;
        quote! {{
            #callsite
            let #span_var = ::kotaemon_trace::__private::ActiveSpan::start(&#site, #record);
            let #entered = #span_var.enter();
            #(#stmts)*
        }}
    } else if records_result {
        let fake = fake_return(returns);
        let stmts = &body.stmts;
        quote! {{
            #callsite
            let #span_var = ::kotaemon_trace::__private::SpanGuard::enter(&#site, #record);
            #[allow(clippy::redundant_closure_call)]
            let #ret_var = ::kotaemon_trace::__private::call_once(move || { #fake #(#stmts)* });
            #record_ret
            #record_err
            #ret_var
        }}
    } else {
        let stmts = &body.stmts;
        quote! {{
            #callsite
            let #span_var = ::kotaemon_trace::__private::SpanGuard::enter(&#site, #record);
            #(#stmts)*
        }}
    };

    let attrs = &function.attrs;
    let vis = &function.vis;
    let sig = &function.sig;
    quote! {
        #(#attrs)*
        #vis #sig #new_body
    }
}

trait UnrawName {
    fn unraw_name(&self) -> String;
}

impl UnrawName for syn::Ident {
    fn unraw_name(&self) -> String {
        use syn::ext::IdentExt as _;
        self.unraw().to_string()
    }
}

/// The runtime's `Semantic` variant for a `kind = "…"` value (one of `parse::KINDS`).
fn semantic_variant(kind: &str) -> &'static str {
    match kind {
        "retriever" => "Retriever",
        "reranker" => "Reranker",
        "embedding" => "Embedding",
        "llm" => "Llm",
        "tool" => "Tool",
        "chain" => "Chain",
        "agent" => "Agent",
        _ => "Guardrail",
    }
}

/// The OpenTelemetry span kind: `span_kind` when given, else CLIENT for the calls that leave the process
/// in the GenAI conventions (model, embedding and tool calls), else INTERNAL.
fn span_kind_variant(span_kind: Option<&str>, kind: Option<&str>) -> &'static str {
    match (span_kind, kind) {
        (Some("server"), _) => "Server",
        (Some("client"), _) => "Client",
        (Some("producer"), _) => "Producer",
        (Some("consumer"), _) => "Consumer",
        (Some(_), _) => "Internal",
        (None, Some("llm" | "embedding" | "tool")) => "Client",
        (None, _) => "Internal",
    }
}

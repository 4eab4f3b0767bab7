//! Code generation. The user's tokens are re-emitted with their own spans (so errors in the body point at
//! the user's lines); everything generated names `::kotaemon_trace::__private::…` and uses mixed-site
//! hygiene for its locals, so it can neither collide with nor be broken by the user's names.

use crate::parse::{Args, Sample};
use crate::validate::Plan;
use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens as _};
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

/// Pins a closure's or async block's return type to the function's, so `?` and `return` infer as they
/// did before the body was wrapped. Elided lifetimes in a `let` type are inferred, so they work too.
fn fake_return(output: &ReturnType) -> TokenStream {
    let ty = match output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, ty) if has_impl_trait(ty) => return TokenStream::new(),
        ReturnType::Type(_, ty) => ty.to_token_stream(),
    };
    let fake = local("__kt_fake_return");
    quote! {
        #[allow(unreachable_code, clippy::diverging_sub_expression, clippy::needless_return)]
        if false {
            let #fake: #ty = loop {};
            return #fake;
        }
    }
}

/// The `async move { ... }` inside `Box::pin(...)` when it is the function's final expression: the shape
/// `#[async_trait]` and hand-written trait objects produce.
fn boxed_async_tail(block: &mut Block) -> Option<&mut syn::ExprAsync> {
    let Some(Stmt::Expr(Expr::Call(call), None)) = block.stmts.last_mut() else { return None };
    let Expr::Path(path) = &*call.func else { return None };
    let segments: Vec<String> = path.path.segments.iter().map(|s| s.ident.to_string()).collect();
    let is_box_pin = segments.len() >= 2 && segments[segments.len() - 2] == "Box" && segments[segments.len() - 1] == "pin";
    if !is_box_pin || call.args.len() != 1 {
        return None;
    }
    match call.args.first_mut() {
        Some(Expr::Async(inner)) if inner.capture.is_some() => Some(inner),
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

    let mut pushes = Vec::new();
    for arg in &plan.recorded {
        let key = arg.unraw_name();
        let value = probe(quote!(&#arg));
        pushes.push(quote!(#attrs_var.push_arg(#key, || #value);));
    }
    for arg in &plan.pseudonyms {
        let key = arg.unraw_name();
        let value = probe(quote!(&#arg));
        pushes.push(quote!(#attrs_var.push_pseudonym(#key, #value);));
    }
    for field in &args.fields {
        let key = &field.key.text;
        let expr = &field.value;
        let value = probe(quote!(&(#expr)));
        pushes.push(quote!(#attrs_var.push(#key, #value);));
    }
    let capacity = pushes.len();
    let sample = match args.sample {
        None => quote!(Default),
        Some(Sample::Always) => quote!(Always),
        Some(Sample::Never) => quote!(Never),
    };
    let callsite = quote! {
        static #site: ::kotaemon_trace::__private::Callsite = ::kotaemon_trace::__private::Callsite {
            name: #name,
            kind: ::kotaemon_trace::__private::SpanKind::Internal,
            attributes: #capacity,
            sample: ::kotaemon_trace::__private::Sample::#sample,
        };
    };
    let record = quote!(|#attrs_var: &mut ::kotaemon_trace::__private::Attributes| { #(#pushes)* });

    // What to do with the value before returning it.
    let record_ret = args.ret.map(|span| {
        let value = if args.err.is_some() {
            let ok = local("__kt_ok");
            let probe_ok = probe(quote!(#ok));
            quote_spanned! {span=> match &#ret_var {
                ::core::result::Result::Ok(#ok) => #probe_ok,
                ::core::result::Result::Err(_) => ::core::option::Option::None,
            }}
        } else {
            probe(quote!(&#ret_var))
        };
        quote_spanned!(span=> #span_var.record_ret(#value);)
    });
    let record_err = args.err.map(|span| {
        // Located at `err`, so a return type that is not a `Result` is reported there.
        let at_err = Span::mixed_site().located_at(span);
        let ret_at_err = syn::Ident::new("__kt_ret", at_err);
        quote_spanned!(at_err=> ::kotaemon_trace::__private::ErrResult::__kt_record_err(&#ret_at_err, &#span_var);)
    });
    let records_result = record_ret.is_some() || record_err.is_some();

    let output = function.sig.output.clone();
    let body = &mut function.block;

    let new_body = if function.sig.asyncness.is_some() {
        let fake = fake_return(&output);
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
    } else if let Some(inner) = boxed_async_tail(body) {
        let inner_block = &inner.block;
        let inner_stmts = &inner_block.stmts;
        let wrapped: Expr = syn::parse_quote! {
            async move {
                let (#ret_var, #span_var) = #span_var.run(async move { #(#inner_stmts)* }).await;
                #record_ret
                #record_err
                #ret_var
            }
        };
        *inner = match wrapped {
            Expr::Async(a) => a,
            _ => unreachable!("parse_quote of an async block"),
        };
        let stmts = &body.stmts;
        quote! {{
            #callsite
            let #span_var = ::kotaemon_trace::__private::ActiveSpan::start(&#site, #record);
            #(#stmts)*
        }}
    } else if records_result {
        let fake = fake_return(&output);
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

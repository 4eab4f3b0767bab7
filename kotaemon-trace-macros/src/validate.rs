//! Checks the options against the function they annotate and works out what to record.

use crate::parse::Args;
use syn::{FnArg, Ident, ItemFn, Pat};

/// What expansion needs beyond the options: the argument bindings to record, in order.
pub(crate) struct Plan {
    pub(crate) recorded: Vec<Ident>,
    /// Arguments recorded as pseudonyms (`redact(...)`), never raw.
    pub(crate) pseudonyms: Vec<Ident>,
}

/// Every name a pattern binds, e.g. `(a, Point { x, y: mut yy })` → a, x, yy.
fn bindings(pat: &Pat, out: &mut Vec<Ident>) {
    match pat {
        Pat::Ident(p) => {
            out.push(p.ident.clone());
            if let Some((_, sub)) = &p.subpat {
                bindings(sub, out);
            }
        }
        Pat::Tuple(t) => t.elems.iter().for_each(|p| bindings(p, out)),
        Pat::TupleStruct(t) => t.elems.iter().for_each(|p| bindings(p, out)),
        Pat::Struct(s) => s.fields.iter().for_each(|f| bindings(&f.pat, out)),
        Pat::Slice(s) => s.elems.iter().for_each(|p| bindings(p, out)),
        Pat::Reference(r) => bindings(&r.pat, out),
        Pat::Paren(p) => bindings(&p.pat, out),
        Pat::Type(t) => bindings(&t.pat, out),
        Pat::Or(o) => {
            if let Some(first) = o.cases.first() {
                bindings(first, out);
            }
        }
        _ => {}
    }
}

pub(crate) fn validate(args: &Args, function: &ItemFn) -> syn::Result<Plan> {
    let mut errors: Option<syn::Error> = None;
    let mut push = |e: syn::Error| match &mut errors {
        Some(all) => all.combine(e),
        None => errors = Some(e),
    };

    if let Some(constness) = &function.sig.constness {
        push(syn::Error::new(constness.span, "#[trace_with_otel] cannot instrument a `const fn`: spans are made at run time"));
    }
    if let (Some(skip_all), Some((skip, _))) = (args.skip_all, &args.skip) {
        let _ = skip_all;
        push(syn::Error::new(*skip, "`skip(...)` together with `skip_all`: `skip_all` already skips every argument; keep one"));
    }

    let has_receiver = function.sig.receiver().is_some();
    let mut names = Vec::new();
    for input in &function.sig.inputs {
        if let FnArg::Typed(pat_type) = input {
            bindings(&pat_type.pat, &mut names);
        }
    }

    let mut skipped: Vec<&Ident> = Vec::new();
    if let Some((_, list)) = &args.skip {
        for name in list {
            if name == "self" {
                if !has_receiver {
                    push(syn::Error::new(name.span(), "`skip(self)` on a function without a `self` argument"));
                }
            } else if !names.iter().any(|n| n == name) {
                let known: Vec<String> = names.iter().map(ToString::to_string).collect();
                let accepted = if known.is_empty() { "this function has no arguments to skip".to_owned() } else { format!("expected one of: {}", known.join(", ")) };
                push(syn::Error::new(name.span(), format!("`{name}` is not an argument of this function; {accepted}")));
            }
            skipped.push(name);
        }
    }

    let mut pseudonyms: Vec<Ident> = Vec::new();
    if let Some((_, list)) = &args.redact {
        for name in list {
            if !names.iter().any(|n| n == name) {
                let known: Vec<String> = names.iter().map(ToString::to_string).collect();
                push(syn::Error::new(name.span(), format!("`{name}` is not an argument of this function; `redact` takes arguments: {}", known.join(", "))));
            } else if skipped.contains(&name) {
                push(syn::Error::new(name.span(), format!("`{name}` is both skipped and redacted; `skip` records nothing, `redact` records a pseudonym: keep one")));
            } else {
                pseudonyms.push(name.clone());
            }
        }
    }

    if let Some(errors) = errors {
        return Err(errors);
    }
    let recorded = if args.skip_all.is_some() {
        Vec::new()
    } else {
        names.into_iter().filter(|n| !skipped.contains(&n) && !pseudonyms.contains(n)).collect()
    };
    Ok(Plan { recorded, pseudonyms })
}

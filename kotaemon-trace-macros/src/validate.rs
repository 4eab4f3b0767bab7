//! Checks the options against the function they annotate and works out what to record.
//!
//! Every problem found is reported, each at its own token, in one pass.

use crate::parse::{Args, Errors};
use syn::ext::IdentExt as _;
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
        // Every alternative binds the same names.
        Pat::Or(o) => {
            if let Some(first) = o.cases.first() {
                bindings(first, out);
            }
        }
        _ => {}
    }
}

/// "expected one of: a, b" or why there is nothing to expect.
fn accepted(option: &str, names: &[Ident]) -> String {
    if names.is_empty() {
        format!("this function has no arguments to {option}")
    } else {
        let known: Vec<String> = names.iter().map(ToString::to_string).collect();
        format!("`{option}` takes argument names: {}", known.join(", "))
    }
}

pub(crate) fn validate(args: &Args, function: &ItemFn) -> syn::Result<Plan> {
    let mut errors = Errors::default();

    if let Some(constness) = &function.sig.constness {
        errors.push(syn::Error::new(
            constness.span,
            "#[trace_with_otel] cannot instrument a `const fn`: spans are made at run time; remove `const` or the attribute",
        ));
    }
    if let (Some(_), Some((skip, _))) = (args.skip_all, &args.skip) {
        errors.push(syn::Error::new(
            *skip,
            "`skip(...)` together with `skip_all`: `skip_all` already skips every argument; keep one",
        ));
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
                    errors.push(syn::Error::new(
                        name.span(),
                        "`skip(self)` on a function without a `self` argument: remove it (`self` is never recorded anyway)",
                    ));
                }
            } else if !names.iter().any(|n| n == name) {
                let message = format!("`{name}` is not an argument of this function; {}", accepted("skip", &names));
                errors.push(syn::Error::new(name.span(), message));
            }
            skipped.push(name);
        }
    }

    let mut pseudonyms: Vec<Ident> = Vec::new();
    if let Some((_, list)) = &args.redact {
        for name in list {
            if !names.iter().any(|n| n == name) {
                let message = format!("`{name}` is not an argument of this function; {}", accepted("redact", &names));
                errors.push(syn::Error::new(name.span(), message));
            } else if skipped.contains(&name) {
                errors.push(syn::Error::new(
                    name.span(),
                    format!("`{name}` is both skipped and redacted; `skip` records nothing, `redact` records a pseudonym: keep one"),
                ));
            } else {
                pseudonyms.push(name.clone());
            }
        }
    }

    let mut keys: Vec<&str> = Vec::new();
    for field in &args.fields {
        if keys.contains(&field.key.text.as_str()) {
            errors.push(syn::Error::new(
                field.key.span,
                format!("duplicate field `{}`: each attribute key may appear once in `fields(...)`", field.key.text),
            ));
        }
        keys.push(&field.key.text);
    }

    let recorded = if args.skip_all.is_some() {
        Vec::new()
    } else {
        // A field named like an argument replaces the argument's automatic record.
        names
            .into_iter()
            .filter(|n| {
                !skipped.contains(&n) && !pseudonyms.contains(n) && !keys.contains(&n.unraw().to_string().as_str())
            })
            .collect()
    };
    errors.finish(Plan { recorded, pseudonyms })
}

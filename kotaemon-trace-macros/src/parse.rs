//! The option grammar of `#[trace_with_otel(...)]`.
//!
//! One `Parse` impl reads a comma-separated list; each option is one variant, so a new option is one
//! variant and one match arm. Duplicates and unknown options are errors at the offending token.

use proc_macro2::Span;
use syn::ext::IdentExt as _;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, Ident, LitStr, Token};

mod kw {
    syn::custom_keyword!(name);
    syn::custom_keyword!(skip);
    syn::custom_keyword!(skip_all);
    syn::custom_keyword!(fields);
    syn::custom_keyword!(ret);
    syn::custom_keyword!(err);
    syn::custom_keyword!(sample);
    syn::custom_keyword!(redact);
}

const OPTIONS: &str = "a span name (\"name\" or name = \"...\"), skip(...), skip_all, fields(...), ret, err, redact(...), sample = \"always\" | \"never\"";

/// An attribute key in `fields(...)`: dotted identifiers (`retriever.type`, keywords allowed) or a string.
pub(crate) struct FieldKey {
    pub(crate) text: String,
    pub(crate) span: Span,
}

impl Parse for FieldKey {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        if input.peek(LitStr) {
            let lit: LitStr = input.parse()?;
            if lit.value().is_empty() {
                return Err(syn::Error::new(lit.span(), "an attribute key must not be empty"));
            }
            return Ok(FieldKey { text: lit.value(), span: lit.span() });
        }
        let first = Ident::parse_any(input)
            .map_err(|e| syn::Error::new(e.span(), "expected an attribute key such as `retriever.type` or \"http.route\""))?;
        let span = first.span();
        let mut text = first.unraw().to_string();
        while input.peek(Token![.]) {
            input.parse::<Token![.]>()?;
            let part = Ident::parse_any(input)?;
            text.push('.');
            text.push_str(&part.unraw().to_string());
        }
        Ok(FieldKey { text, span })
    }
}

/// `key = expression` inside `fields(...)`.
pub(crate) struct Field {
    pub(crate) key: FieldKey,
    pub(crate) value: Expr,
}

impl Parse for Field {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let key: FieldKey = input.parse()?;
        if !input.peek(Token![=]) {
            return Err(syn::Error::new(key.span, format!("`{}` needs a value: `{} = <expression>`", key.text, key.text)));
        }
        input.parse::<Token![=]>()?;
        let value: Expr = input.parse()?;
        Ok(Field { key, value })
    }
}

/// `sample = "always" | "never"`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sample {
    Always,
    Never,
}

/// The parsed options, each at most once; the span of each keyword is kept for later errors.
#[derive(Default)]
pub(crate) struct Args {
    pub(crate) name: Option<LitStr>,
    pub(crate) skip: Option<(Span, Vec<Ident>)>,
    pub(crate) skip_all: Option<Span>,
    pub(crate) fields: Vec<Field>,
    pub(crate) ret: Option<Span>,
    pub(crate) err: Option<Span>,
    pub(crate) sample: Option<Sample>,
    pub(crate) redact: Option<(Span, Vec<Ident>)>,
}

fn duplicate(span: Span, option: &str) -> syn::Error {
    syn::Error::new(span, format!("duplicate option `{option}`: each option may appear once"))
}

impl Parse for Args {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut args = Args::default();
        let mut seen_fields: Option<Span> = None;
        let mut first = true;
        while !input.is_empty() {
            let lookahead = input.lookahead1();
            if input.peek(LitStr) {
                let lit: LitStr = input.parse()?;
                if !first || args.name.is_some() {
                    return Err(syn::Error::new(lit.span(), "the span name may only be given once, as the first argument or as `name = \"...\"`"));
                }
                args.name = Some(lit);
            } else if lookahead.peek(kw::name) {
                let kw: kw::name = input.parse()?;
                if args.name.is_some() {
                    return Err(duplicate(kw.span, "name"));
                }
                input.parse::<Token![=]>()?;
                args.name = Some(input.parse()?);
            } else if lookahead.peek(kw::skip_all) {
                let kw: kw::skip_all = input.parse()?;
                if args.skip_all.replace(kw.span).is_some() {
                    return Err(duplicate(kw.span, "skip_all"));
                }
            } else if lookahead.peek(kw::skip) {
                let kw: kw::skip = input.parse()?;
                if args.skip.is_some() {
                    return Err(duplicate(kw.span, "skip"));
                }
                let content;
                syn::parenthesized!(content in input);
                let names: Punctuated<Ident, Token![,]> = content.parse_terminated(Ident::parse_any, Token![,])?;
                args.skip = Some((kw.span, names.into_iter().collect()));
            } else if lookahead.peek(kw::redact) {
                let kw: kw::redact = input.parse()?;
                if args.redact.is_some() {
                    return Err(duplicate(kw.span, "redact"));
                }
                let content;
                syn::parenthesized!(content in input);
                let names: Punctuated<Ident, Token![,]> = content.parse_terminated(Ident::parse_any, Token![,])?;
                args.redact = Some((kw.span, names.into_iter().collect()));
            } else if lookahead.peek(kw::fields) {
                let kw: kw::fields = input.parse()?;
                if seen_fields.replace(kw.span).is_some() {
                    return Err(duplicate(kw.span, "fields"));
                }
                let content;
                syn::parenthesized!(content in input);
                let fields: Punctuated<Field, Token![,]> = content.parse_terminated(Field::parse, Token![,])?;
                args.fields = fields.into_iter().collect();
            } else if lookahead.peek(kw::ret) {
                let kw: kw::ret = input.parse()?;
                if args.ret.replace(kw.span).is_some() {
                    return Err(duplicate(kw.span, "ret"));
                }
            } else if lookahead.peek(kw::err) {
                let kw: kw::err = input.parse()?;
                if args.err.replace(kw.span).is_some() {
                    return Err(duplicate(kw.span, "err"));
                }
            } else if lookahead.peek(kw::sample) {
                let kw: kw::sample = input.parse()?;
                if args.sample.is_some() {
                    return Err(duplicate(kw.span, "sample"));
                }
                input.parse::<Token![=]>()?;
                let value: LitStr = input.parse()?;
                args.sample = Some(match value.value().as_str() {
                    "always" => Sample::Always,
                    "never" => Sample::Never,
                    other => {
                        return Err(syn::Error::new(
                            value.span(),
                            format!("unknown sample mode \"{other}\": expected \"always\" or \"never\""),
                        ))
                    }
                });
            } else if input.peek(Ident::peek_any) {
                let unknown = Ident::parse_any(input)?;
                return Err(syn::Error::new(unknown.span(), format!("unknown option `{unknown}`: expected {OPTIONS}")));
            } else {
                return Err(lookahead.error());
            }
            first = false;
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        Ok(args)
    }
}

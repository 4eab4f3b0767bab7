//! The option grammar of `#[trace_with_otel(...)]`.
//!
//! One `Parse` impl reads one option ([`Opt`]); [`Args`] reads the comma-separated list, keeps going after
//! a mistake so that several mistakes are reported at once, and folds the options into one value. Adding an
//! option is one [`Opt`] variant, one arm in `Opt::parse` and one in `Args::apply`. Every error sits on the
//! offending token: the unknown keyword, the repeated option, the bad value.

use proc_macro2::{Span, TokenTree};
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
    syn::custom_keyword!(kind);
    syn::custom_keyword!(span_kind);
}

/// What the attribute accepts, for the "unknown option" message.
const OPTIONS: &str = "a span name (\"name\" or name = \"...\"), skip(...), skip_all, fields(...), ret, err, redact(...), sample = \"always\" | \"never\", kind = \"llm\" | ..., span_kind = \"server\" | ...";

/// The `kind = "…"` values: what a step is in RAG terms (OpenInference's span kinds, lower case).
pub(crate) const KINDS: &[&str] = &["retriever", "reranker", "embedding", "llm", "tool", "chain", "agent", "guardrail"];

/// The `span_kind = "…"` values: the OpenTelemetry span kinds.
pub(crate) const SPAN_KINDS: &[&str] = &["server", "client", "producer", "consumer", "internal"];

/// Several errors, reported together.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub(crate) fn finish<T>(self, value: T) -> syn::Result<T> {
        match self.0 {
            Some(errors) => Err(errors),
            None => Ok(value),
        }
    }
}

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
        let expected = |e: syn::Error| {
            syn::Error::new(e.span(), "expected an attribute key such as `retriever.type` or \"http.route\"")
        };
        let first = Ident::parse_any(input).map_err(expected)?;
        let span = first.span();
        let mut text = first.unraw().to_string();
        while input.peek(Token![.]) {
            input.parse::<Token![.]>()?;
            let part = Ident::parse_any(input).map_err(expected)?;
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
            return Err(syn::Error::new(
                key.span,
                format!("`{}` needs a value: `{} = <expression>`", key.text, key.text),
            ));
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

/// One option, with the span of the token that introduced it (for "duplicate" errors).
pub(crate) enum Opt {
    /// `"name"` or `name = "name"`.
    Name(LitStr, Span),
    Skip(Span, Vec<Ident>),
    SkipAll(Span),
    Fields(Span, Vec<Field>),
    Ret(Span),
    Err(Span),
    Sample(Span, Sample),
    Redact(Span, Vec<Ident>),
    /// `kind = "llm"`: one of [`KINDS`].
    Kind(Span, &'static str),
    /// `span_kind = "client"`: one of [`SPAN_KINDS`].
    SpanKind(Span, &'static str),
}

impl Opt {
    /// The option's name, as the user writes it, and where it starts.
    fn keyword(&self) -> (&'static str, Span) {
        match self {
            Opt::Name(_, span) => ("name", *span),
            Opt::Skip(span, _) => ("skip", *span),
            Opt::SkipAll(span) => ("skip_all", *span),
            Opt::Fields(span, _) => ("fields", *span),
            Opt::Ret(span) => ("ret", *span),
            Opt::Err(span) => ("err", *span),
            Opt::Sample(span, _) => ("sample", *span),
            Opt::Redact(span, _) => ("redact", *span),
            Opt::Kind(span, _) => ("kind", *span),
            Opt::SpanKind(span, _) => ("span_kind", *span),
        }
    }
}

/// `= "value"` where the value is one of `accepted`; an error at the literal names the option and lists
/// what it accepts.
fn one_of(input: ParseStream, option: &str, accepted: &'static [&'static str]) -> syn::Result<&'static str> {
    input.parse::<Token![=]>()?;
    let expected = || accepted.iter().map(|v| format!("\"{v}\"")).collect::<Vec<_>>().join(", ");
    let value: LitStr = input
        .parse()
        .map_err(|e| syn::Error::new(e.span(), format!("`{option}` takes a string: one of {}", expected())))?;
    let text = value.value();
    accepted.iter().copied().find(|v| *v == text).ok_or_else(|| {
        syn::Error::new(value.span(), format!("unknown {option} \"{text}\": expected one of {}", expected()))
    })
}

/// `(a, b, self)`: argument names.
fn names(input: ParseStream) -> syn::Result<Vec<Ident>> {
    let content;
    syn::parenthesized!(content in input);
    let names: Punctuated<Ident, Token![,]> = content.parse_terminated(Ident::parse_any, Token![,])?;
    Ok(names.into_iter().collect())
}

impl Parse for Opt {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let lookahead = input.lookahead1();
        if lookahead.peek(LitStr) {
            let lit: LitStr = input.parse()?;
            let span = lit.span();
            Ok(Opt::Name(lit, span))
        } else if lookahead.peek(kw::name) {
            let kw: kw::name = input.parse()?;
            input.parse::<Token![=]>()?;
            let lit = input.parse::<LitStr>().map_err(|e| {
                syn::Error::new(e.span(), "the span name is a string literal: name = \"retriever.invoke\"")
            })?;
            Ok(Opt::Name(lit, kw.span))
        } else if lookahead.peek(kw::skip_all) {
            Ok(Opt::SkipAll(input.parse::<kw::skip_all>()?.span))
        } else if lookahead.peek(kw::skip) {
            let kw: kw::skip = input.parse()?;
            Ok(Opt::Skip(kw.span, names(input)?))
        } else if lookahead.peek(kw::redact) {
            let kw: kw::redact = input.parse()?;
            Ok(Opt::Redact(kw.span, names(input)?))
        } else if lookahead.peek(kw::fields) {
            let kw: kw::fields = input.parse()?;
            let content;
            syn::parenthesized!(content in input);
            let fields: Punctuated<Field, Token![,]> = content.parse_terminated(Field::parse, Token![,])?;
            Ok(Opt::Fields(kw.span, fields.into_iter().collect()))
        } else if lookahead.peek(kw::ret) {
            Ok(Opt::Ret(input.parse::<kw::ret>()?.span))
        } else if lookahead.peek(kw::err) {
            Ok(Opt::Err(input.parse::<kw::err>()?.span))
        } else if lookahead.peek(kw::sample) {
            let kw: kw::sample = input.parse()?;
            input.parse::<Token![=]>()?;
            let value: LitStr = input.parse()?;
            let mode = match value.value().as_str() {
                "always" => Sample::Always,
                "never" => Sample::Never,
                other => {
                    let message = format!("unknown sample mode \"{other}\": expected \"always\" or \"never\"");
                    return Err(syn::Error::new(value.span(), message));
                }
            };
            Ok(Opt::Sample(kw.span, mode))
        } else if lookahead.peek(kw::span_kind) {
            let kw: kw::span_kind = input.parse()?;
            Ok(Opt::SpanKind(kw.span, one_of(input, "span_kind", SPAN_KINDS)?))
        } else if lookahead.peek(kw::kind) {
            let kw: kw::kind = input.parse()?;
            Ok(Opt::Kind(kw.span, one_of(input, "kind", KINDS)?))
        } else if input.peek(Ident::peek_any) {
            let unknown = Ident::parse_any(input)?;
            Err(syn::Error::new(unknown.span(), format!("unknown option `{unknown}`: expected {OPTIONS}")))
        } else {
            Err(lookahead.error())
        }
    }
}

/// The parsed options, each at most once.
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
    pub(crate) kind: Option<&'static str>,
    pub(crate) span_kind: Option<&'static str>,
}

impl Args {
    fn apply(&mut self, opt: Opt) {
        match opt {
            Opt::Name(lit, _) => self.name = Some(lit),
            Opt::Skip(span, names) => self.skip = Some((span, names)),
            Opt::SkipAll(span) => self.skip_all = Some(span),
            Opt::Fields(_, fields) => self.fields = fields,
            Opt::Ret(span) => self.ret = Some(span),
            Opt::Err(span) => self.err = Some(span),
            Opt::Sample(_, mode) => self.sample = Some(mode),
            Opt::Redact(span, names) => self.redact = Some((span, names)),
            Opt::Kind(_, kind) => self.kind = Some(kind),
            Opt::SpanKind(_, kind) => self.span_kind = Some(kind),
        }
    }
}

/// Skips what is left of a malformed option, up to the next top-level comma.
fn skip_to_comma(input: ParseStream) {
    let _ = input.step(|cursor| {
        let mut rest = *cursor;
        while let Some((tt, next)) = rest.token_tree() {
            if matches!(&tt, TokenTree::Punct(p) if p.as_char() == ',') {
                break;
            }
            rest = next;
        }
        Ok(((), rest))
    });
}

impl Parse for Args {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut args = Args::default();
        let mut errors = Errors::default();
        let mut seen: Vec<&'static str> = Vec::new();
        while !input.is_empty() {
            match input.parse::<Opt>() {
                Ok(opt) => {
                    let (keyword, span) = opt.keyword();
                    if seen.contains(&keyword) {
                        let message = if keyword == "name" {
                            "duplicate option `name`: the span name is given once, as \"...\" or name = \"...\""
                                .to_owned()
                        } else {
                            format!("duplicate option `{keyword}`: each option may appear once")
                        };
                        errors.push(syn::Error::new(span, message));
                    } else {
                        seen.push(keyword);
                        args.apply(opt);
                    }
                }
                Err(error) => {
                    errors.push(error);
                    skip_to_comma(input);
                }
            }
            if input.is_empty() {
                break;
            }
            if let Err(error) = input.parse::<Token![,]>() {
                errors.push(syn::Error::new(error.span(), "expected `,` between options"));
                skip_to_comma(input);
                let _ = input.parse::<Option<Token![,]>>();
            }
        }
        errors.finish(args)
    }
}

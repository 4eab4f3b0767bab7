//! The catalogue of provider token formats, as data.
//!
//! Each rule names a format (its name is the marker, `[REDACTED:<name>]`, the audit entry and the metric
//! label), the literal anchors one of which every token of that format contains, the shape as a regular
//! expression and a validator for what a regular expression cannot say (checksums, structure, a body that
//! is not a placeholder). The facts come from the providers' documentation and from the public
//! secret-scanner rule sets (gitleaks, detect-secrets), which are cited per rule as `source`; the rules
//! and tests here are written from those facts.
//!
//! Compiled once per process: one Aho-Corasick automaton over every anchor says which rules can match a
//! value (a clean value costs that one pass), and only those rules' regexes run, each compiled on first
//! use.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::Regex;
use std::ops::Range;
use std::sync::OnceLock;

/// What a rule checks beyond its regex.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Check {
    /// The shape is specific enough on its own (a long literal prefix and a fixed length).
    Shape,
    /// The body (after the anchor) looks random: at least two of upper case, lower case and digits, no
    /// run of five equal characters, no placeholder word. Keeps `ghp_xxxxxxxx…` and `sk_live_YOUR_KEY…`.
    Random,
    /// GitHub's tokens: the last six characters are the CRC32 of the rest of the body in base62. A valid
    /// checksum confirms any body; without one the body must look random (test fixtures are often made
    /// without the checksum, and real ones must not slip through because a scanner's example lacked it).
    GithubCrc,
    /// Discord bot tokens: the first segment is the bot's numeric id in base64.
    DiscordId,
    /// Slack tokens: numeric workspace/user segments after the prefix, or a random body.
    Slack,
    /// `sk-` keys: random mixed-case body or 32+ hex digits (`sk-learn-pipeline` is not a key).
    OpenAi,
}

/// One token format.
#[derive(Debug)]
pub(crate) struct Rule {
    /// The kind: marker `[REDACTED:<name>]`, audit entry and metric label.
    pub(crate) name: &'static str,
    pub(crate) marker: &'static str,
    /// Literals one of which every match contains (case-sensitive).
    pub(crate) anchors: &'static [&'static str],
    /// The shape; capture group 1, when present, is the part replaced (the rest is context).
    pub(crate) pattern: &'static str,
    pub(crate) check: Check,
    /// Where the format is described.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) source: &'static str,
    /// A generator of examples for the tests: literal text with `{class:len}` or `{class:min-max}` holes
    /// (classes: `d` digit, `h` lower hex, `H` upper hex, `a` letters and digits, `l` lower letters and
    /// digits, `u` upper letters and digits, `A` letters, `w` letters, digits, `_`, `-`, `b` base64,
    /// `3` base32, `B` bech32).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) sample: &'static str,
}

macro_rules! rule {
    ($name:literal, [$($anchor:literal),+], $pattern:expr, $check:ident, $source:literal, $sample:literal) => {
        Rule {
            name: $name,
            marker: concat!("[REDACTED:", $name, "]"),
            anchors: &[$($anchor),+],
            pattern: $pattern,
            check: Check::$check,
            source: $source,
            sample: $sample,
        }
    };
}

/// Ordered most specific first: where two rules match the same text, the earlier wins.
pub(crate) static RULES: &[Rule] = &[
    rule!(
        "anthropic_api_key",
        ["sk-ant-"],
        r"sk-ant-(?:api\d{2}-|admin\d{2}-)?[A-Za-z0-9_\-]{20,}",
        Random,
        "docs.anthropic.com API keys; gitleaks anthropic-api-key",
        "sk-ant-api03-{w:93}AA"
    ),
    rule!(
        "langfuse_key",
        ["sk-lf-", "pk-lf-"],
        r"sk-lf-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        Shape,
        "langfuse.com docs: secret keys sk-lf-<uuid>",
        "sk-lf-{h:8}-{h:4}-{h:4}-{h:4}-{h:12}"
    ),
    rule!(
        "openai_api_key",
        ["sk-"],
        r"sk-(?:proj-|svcacct-|admin-|None-)?[A-Za-z0-9_\-]{20,}",
        OpenAi,
        "platform.openai.com API keys; gitleaks openai-api-key (T3BlbkFJ marker)",
        "sk-proj-{a:48}T3BlbkFJ{a:20}"
    ),
    rule!(
        "stripe_key",
        ["sk_live_", "sk_test_", "sk_prod_", "rk_live_", "rk_test_", "rk_prod_"],
        r"[sr]k_(?:live|test|prod)_[A-Za-z0-9]{10,99}",
        Random,
        "stripe.com/docs/keys; gitleaks stripe-access-token",
        "sk_live_{a:24}"
    ),
    rule!(
        "stripe_webhook_secret",
        ["whsec_"],
        r"whsec_[A-Za-z0-9+/=]{24,}",
        Random,
        "stripe.com/docs/webhooks",
        "whsec_{a:32}"
    ),
    rule!(
        "aws_access_key",
        ["AKIA", "ASIA", "ABIA", "ACCA", "A3T"],
        r"(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}",
        Shape,
        "AWS IAM identifiers (docs.aws.amazon.com); gitleaks aws-access-token",
        "AKIA{u:16}"
    ),
    rule!(
        "gcp_api_key",
        ["AIza"],
        r"AIza[0-9A-Za-z_\-]{35}",
        Shape,
        "cloud.google.com API keys; gitleaks gcp-api-key",
        "AIza{w:35}"
    ),
    rule!(
        "google_oauth_secret",
        ["GOCSPX-"],
        r"GOCSPX-[A-Za-z0-9_\-]{28}",
        Shape,
        "Google OAuth client secrets (GOCSPX- prefix)",
        "GOCSPX-{w:28}"
    ),
    rule!(
        "google_oauth_token",
        ["ya29."],
        r"ya29\.[A-Za-z0-9_\-]{30,}",
        Random,
        "Google OAuth 2.0 access tokens",
        "ya29.{w:120}"
    ),
    rule!(
        "github_token",
        ["ghp_", "gho_", "ghu_", "ghs_", "ghr_"],
        r"gh[pousr]_[A-Za-z0-9]{36}",
        GithubCrc,
        "github.blog 2021-04-05 token format (prefix, base62, CRC32); gitleaks github-pat",
        "ghp_{a:30}"
    ),
    rule!(
        "github_pat",
        ["github_pat_"],
        r"github_pat_[A-Za-z0-9_]{22,}",
        Random,
        "GitHub fine-grained tokens; gitleaks github-fine-grained-pat",
        "github_pat_{a:22}_{a:59}"
    ),
    rule!(
        "gitlab_token",
        [
            "glpat-",
            "glptt-",
            "gldt-",
            "glrt-",
            "glcbt-",
            "gloas-",
            "glsoat-",
            "glffct-",
            "glimt-",
            "glagent-",
            "glft-",
            "glwt-",
            "GR1348941"
        ],
        r"(?:gl(?:pat|ptt|dt|rt|soat|ffct|imt|agent|ft|wt|oas)-|glcbt-[0-9A-Za-z]{1,5}_|GR1348941)[0-9A-Za-z_\-]{20,}(?:\.[0-9a-z]{2}\.[0-9a-z]{7,9})?",
        Random,
        "docs.gitlab.com token prefixes; gitleaks gitlab-* rules",
        "glpat-{w:20}"
    ),
    rule!(
        "slack_webhook",
        ["hooks.slack.com/"],
        r"(?:https?://)?hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9+/_\-]{20,}",
        Shape,
        "api.slack.com incoming webhooks; gitleaks slack-webhook-url",
        "https://hooks.slack.com/services/T{u:10}/B{u:10}/{a:24}"
    ),
    rule!(
        "slack_token",
        ["xoxb-", "xoxp-", "xoxa-", "xoxo-", "xoxs-", "xoxr-", "xoxe-", "xoxe.", "xapp-"],
        r"(?:xox[baposre]|xoxe\.xox[bp]|xapp)-[0-9A-Za-z\-]{10,}",
        Slack,
        "api.slack.com token types; gitleaks slack-* rules",
        "xoxb-{d:12}-{d:13}-{a:24}"
    ),
    rule!(
        "discord_webhook",
        ["discord.com/api/webhooks/", "discordapp.com/api/webhooks/"],
        r"(?:https?://)?(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/\d{17,20}/[A-Za-z0-9_\-]{60,68}",
        Shape,
        "discord.com/developers webhooks; gitleaks discord-webhook",
        "https://discord.com/api/webhooks/{d:18}/{w:68}"
    ),
    rule!(
        "discord_bot_token",
        ["MT", "Mj", "Mz", "ND", "NT", "Nj", "Nz", "OD", "OT"],
        r"[MNO][A-Za-z0-9_\-]{23,27}\.[A-Za-z0-9_\-]{6}\.[A-Za-z0-9_\-]{27,38}",
        DiscordId,
        "Discord bot tokens (base64 id . timestamp . HMAC); detect-secrets DiscordBotTokenDetector",
        "MTE{a:23}.{w:6}.{w:38}"
    ),
    rule!(
        "telegram_bot_token",
        [":A"],
        r"(?-u:\b)\d{5,16}:A[A-Za-z0-9_\-]{34}",
        Random,
        "core.telegram.org/bots (id:secret); gitleaks telegram-bot-api-token",
        "{d:10}:AA{w:33}"
    ),
    rule!(
        "npm_token",
        ["npm_"],
        r"npm_[A-Za-z0-9]{36}",
        Random,
        "docs.npmjs.com access tokens; gitleaks npm-access-token",
        "npm_{a:36}"
    ),
    rule!(
        "pypi_token",
        ["pypi-AgEIcHlwaS5vcmc"],
        r"pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{50,}",
        Shape,
        "pypi.org API tokens (macaroon); gitleaks pypi-upload-token",
        "pypi-AgEIcHlwaS5vcmc{w:70}"
    ),
    rule!(
        "nuget_api_key",
        ["oy2"],
        r"(?-u:\b)oy2[a-z0-9]{43}",
        Random,
        "NuGet.org API keys; gitleaks nuget? (oy2 prefix)",
        "oy2{l:43}"
    ),
    rule!(
        "rubygems_token",
        ["rubygems_"],
        r"rubygems_[a-f0-9]{48}",
        Shape,
        "guides.rubygems.org API keys",
        "rubygems_{h:48}"
    ),
    rule!(
        "clojars_token",
        ["CLOJARS_"],
        r"CLOJARS_[a-z0-9]{60}",
        Shape,
        "gitleaks clojars-api-token",
        "CLOJARS_{l:60}"
    ),
    rule!(
        "sendgrid_key",
        ["SG."],
        r"SG\.[A-Za-z0-9_\-]{16,}\.[A-Za-z0-9_\-]{16,}",
        Random,
        "docs.sendgrid.com API keys; gitleaks sendgrid-api-token",
        "SG.{w:22}.{w:43}"
    ),
    rule!(
        "sendinblue_key",
        ["xkeysib-"],
        r"xkeysib-[a-f0-9]{64}-[A-Za-z0-9]{16}",
        Shape,
        "gitleaks sendinblue-api-token",
        "xkeysib-{h:64}-{a:16}"
    ),
    rule!(
        "mailgun_key",
        ["key-", "pubkey-"],
        r"(?-u:\b)(?:pub)?key-[a-f0-9]{32}",
        Random,
        "gitleaks mailgun-* rules",
        "key-{h:32}"
    ),
    rule!(
        "huggingface_token",
        ["hf_"],
        r"(?-u:\b)hf_[A-Za-z0-9]{30,}",
        Random,
        "huggingface.co/docs/hub/security-tokens; gitleaks huggingface-access-token",
        "hf_{A:34}"
    ),
    rule!(
        "huggingface_org_token",
        ["api_org_"],
        r"api_org_[A-Za-z0-9]{30,}",
        Random,
        "gitleaks huggingface-organization-api-token",
        "api_org_{A:34}"
    ),
    rule!(
        "alibaba_access_key",
        ["LTAI"],
        r"(?-u:\b)LTAI[A-Za-z0-9]{12,24}(?-u:\b)",
        Random,
        "Alibaba Cloud AccessKey ID; gitleaks alibaba-access-key-id",
        "LTAI{a:20}"
    ),
    rule!(
        "tencent_secret_id",
        ["AKID"],
        r"(?-u:\b)AKID[A-Za-z0-9]{32}(?-u:\b)",
        Random,
        "Tencent Cloud SecretId",
        "AKID{a:32}"
    ),
    rule!(
        "jfrog_token",
        ["AKCp", "cmVmdGtu"],
        r"(?:AKCp[A-Za-z0-9]{69}|cmVmdGtu[A-Za-z0-9]{56})",
        Random,
        "JFrog API keys (AKCp) and reference tokens (base64 of reftkn); gitleaks jfrog-*",
        "AKCp{a:69}"
    ),
    rule!(
        "onepassword_token",
        ["ops_eyJ", "A3-"],
        r"(?:ops_eyJ[A-Za-z0-9+/]{250,}={0,3}|(?-u:\b)A3-[A-Z0-9]{6}-(?:[A-Z0-9]{11}|[A-Z0-9]{6}-[A-Z0-9]{5})-[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{5})",
        Random,
        "1Password service account tokens and Secret Keys; gitleaks 1password-*",
        "A3-{u:6}-{u:11}-{u:5}-{u:5}-{u:5}"
    ),
    rule!(
        "flyio_token",
        ["fo1_", "fm1a_", "fm1r_", "fm2_"],
        r"(?:fo1_[A-Za-z0-9_\-]{43}|fm1[ar]_[A-Za-z0-9+/]{100,}={0,3}|fm2_[A-Za-z0-9+/]{100,}={0,3})",
        Random,
        "fly.io access tokens; gitleaks flyio-access-token",
        "fm2_{b:120}"
    ),
    rule!(
        "planetscale_token",
        ["pscale_pw_", "pscale_tkn_", "pscale_oauth_"],
        r"pscale_(?:pw|tkn|oauth)_[A-Za-z0-9_=\-]{32,64}",
        Random,
        "planetscale.com docs; gitleaks planetscale-*",
        "pscale_pw_{w:43}"
    ),
    rule!(
        "sourcegraph_token",
        ["sgp_"],
        r"sgp_(?:(?:[a-fA-F0-9]{16}|local)_)?[a-fA-F0-9]{40}",
        Shape,
        "sourcegraph.com access tokens; gitleaks sourcegraph-access-token",
        "sgp_{h:16}_{h:40}"
    ),
    rule!(
        "sentry_token",
        ["sntrys_eyJ", "sntryu_"],
        r"(?:sntrys_eyJ[A-Za-z0-9+/=_]{50,}|sntryu_[a-f0-9]{64})",
        Shape,
        "docs.sentry.io auth tokens; gitleaks sentry-*",
        "sntryu_{h:64}"
    ),
    rule!(
        "easypost_key",
        ["EZAK", "EZTK"],
        r"EZ[AT]K[A-Za-z0-9]{54}",
        Random,
        "gitleaks easypost-api-token",
        "EZAK{a:54}"
    ),
    rule!(
        "shippo_token",
        ["shippo_live_", "shippo_test_"],
        r"shippo_(?:live|test)_[a-fA-F0-9]{40}",
        Shape,
        "goshippo.com API tokens; gitleaks shippo-api-token",
        "shippo_live_{h:40}"
    ),
    rule!(
        "sidekiq_secret",
        ["CONTRIBSYS__COM", "contribsys__com"],
        r"(?i)BUNDLE_(?:ENTERPRISE|GEMS)__CONTRIBSYS__COM['\x22]?\s*[:=]\s*['\x22]?([a-f0-9]{8}:[a-f0-9]{8})",
        Shape,
        "sidekiq.org Enterprise credentials; gitleaks sidekiq-secret",
        "BUNDLE_GEMS__CONTRIBSYS__COM={h:8}:{h:8}"
    ),
    rule!(
        "shopify_token",
        ["shpat_", "shpca_", "shppa_", "shpss_"],
        r"shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}",
        Shape,
        "shopify.dev access tokens; gitleaks shopify-*",
        "shpat_{h:32}"
    ),
    rule!(
        "twilio_key",
        ["SK"],
        r"(?-u:\b)SK[0-9a-fA-F]{32}(?-u:\b)",
        Random,
        "twilio.com API keys; gitleaks twilio-api-key",
        "SK{h:32}"
    ),
    rule!(
        "digitalocean_token",
        ["dop_v1_", "doo_v1_", "dor_v1_"],
        r"do[opr]_v1_[a-f0-9]{64}",
        Shape,
        "docs.digitalocean.com tokens; gitleaks digitalocean-*",
        "dop_v1_{h:64}"
    ),
    rule!(
        "databricks_token",
        ["dapi"],
        r"(?-u:\b)dapi[a-f0-9]{32}(?:-\d)?",
        Random,
        "gitleaks databricks-api-token",
        "dapi{h:32}"
    ),
    rule!(
        "dynatrace_token",
        ["dt0c01."],
        r"dt0c01\.[A-Za-z0-9]{24}\.[A-Za-z0-9]{64}",
        Shape,
        "docs.dynatrace.com token format; gitleaks dynatrace-api-token",
        "dt0c01.{u:24}.{u:64}"
    ),
    rule!(
        "postman_key",
        ["PMAK-"],
        r"PMAK-[a-fA-F0-9]{24}-[a-fA-F0-9]{34}",
        Shape,
        "gitleaks postman-api-token",
        "PMAK-{h:24}-{h:34}"
    ),
    rule!("linear_key", ["lin_api_"], r"lin_api_[A-Za-z0-9]{40}", Random, "gitleaks linear-api-key", "lin_api_{a:40}"),
    rule!(
        "newrelic_key",
        ["NRAK-", "NRJS-", "NRII-", "NRAA-"],
        r"NR(?:AK|II|AA)-[A-Za-z0-9]{27}|NRJS-[a-f0-9]{19}",
        Random,
        "docs.newrelic.com API keys; gitleaks new-relic-*",
        "NRAK-{u:27}"
    ),
    rule!(
        "doppler_token",
        ["dp.pt.", "dp.st.", "dp.sa.", "dp.ct.", "dp.scim.", "dp.audit."],
        r"dp\.(?:pt|st|sa|ct|scim|audit)\.[A-Za-z0-9]{40,44}",
        Random,
        "docs.doppler.com token formats; gitleaks doppler-api-token",
        "dp.pt.{a:43}"
    ),
    rule!(
        "age_secret_key",
        ["AGE-SECRET-KEY-1"],
        r"AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}",
        Shape,
        "age-encryption.org spec (Bech32 secret keys); gitleaks age-secret-key",
        "AGE-SECRET-KEY-1{B:58}"
    ),
    rule!(
        "vault_token",
        ["hvs.", "hvb."],
        r"hv[sb]\.[A-Za-z0-9_\-]{90,300}",
        Random,
        "developer.hashicorp.com/vault token prefixes; gitleaks vault-*",
        "hvs.{w:95}"
    ),
    rule!(
        "terraform_token",
        [".atlasv1."],
        r"[a-z0-9]{14}\.atlasv1\.[A-Za-z0-9_=\-]{60,70}",
        Shape,
        "HCP Terraform API tokens; gitleaks hashicorp-tf-api-token",
        "{l:14}.atlasv1.{w:67}"
    ),
    rule!(
        "grafana_token",
        ["glc_", "glsa_", "eyJrIjoi"],
        r"(?:glc_[A-Za-z0-9+/]{32,400}={0,2}|glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}|eyJrIjoi[A-Za-z0-9]{70,400}={0,2})",
        Random,
        "grafana.com API keys and service account tokens; gitleaks grafana-*",
        "glsa_{a:32}_{h:8}"
    ),
    rule!(
        "mapbox_token",
        ["sk.eyJ", "pk.eyJ", "tk.eyJ"],
        r"[spt]k\.eyJ[A-Za-z0-9_\-]{50,}\.[A-Za-z0-9_\-]{20,}",
        Shape,
        "docs.mapbox.com access tokens",
        "sk.eyJ{a:60}.{w:22}"
    ),
    rule!(
        "azure_ad_client_secret",
        ["Q~"],
        r"[A-Za-z0-9_~.]{3}\dQ~[A-Za-z0-9_~.\-]{31,34}",
        Random,
        "Microsoft Entra client secrets; gitleaks azure-ad-client-secret",
        "{a:3}8Q~{a:34}"
    ),
    rule!(
        "azure_storage_key",
        ["AccountKey=", "SharedAccessKey="],
        r"(?:AccountKey|SharedAccessKey)=([A-Za-z0-9+/]{40,}={0,2})",
        Shape,
        "learn.microsoft.com storage connection strings",
        "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={b:86}=="
    ),
    rule!(
        "azure_sas_signature",
        ["sig="],
        r"[?&]sig=([A-Za-z0-9%+/=]{40,})",
        Shape,
        "learn.microsoft.com shared access signatures",
        "https://acct.blob.core.windows.net/c?sv=2022-11-02&sig={b:44}"
    ),
    rule!("pulumi_token", ["pul-"], r"pul-[a-f0-9]{40}", Shape, "gitleaks pulumi-api-token", "pul-{h:40}"),
    rule!("prefect_token", ["pnu_"], r"pnu_[A-Za-z0-9]{36}", Random, "gitleaks prefect-api-token", "pnu_{a:36}"),
    rule!("readme_key", ["rdme_"], r"rdme_[a-z0-9]{70}", Shape, "gitleaks readme-api-token", "rdme_{l:70}"),
    rule!("infracost_key", ["ico-"], r"ico-[A-Za-z0-9]{32}", Random, "gitleaks infracost-api-token", "ico-{a:32}"),
    rule!("typeform_token", ["tfp_"], r"tfp_[A-Za-z0-9_\-=.]{59}", Random, "gitleaks typeform-api-token", "tfp_{w:59}"),
    rule!(
        "frameio_token",
        ["fio-u-"],
        r"fio-u-[A-Za-z0-9_\-=]{64}",
        Random,
        "gitleaks frameio-api-token",
        "fio-u-{w:64}"
    ),
    rule!(
        "duffel_token",
        ["duffel_test_", "duffel_live_"],
        r"duffel_(?:test|live)_[A-Za-z0-9_\-=]{43}",
        Random,
        "gitleaks duffel-api-token",
        "duffel_live_{w:43}"
    ),
    rule!(
        "scalingo_token",
        ["tk-us-"],
        r"tk-us-[A-Za-z0-9_\-]{48}",
        Random,
        "gitleaks scalingo-api-token",
        "tk-us-{w:48}"
    ),
    rule!(
        "adobe_client_secret",
        ["p8e-"],
        r"(?-u:\b)p8e-[A-Za-z0-9]{32}",
        Random,
        "gitleaks adobe-client-secret",
        "p8e-{a:32}"
    ),
    rule!(
        "defined_networking_key",
        ["dnkey-"],
        r"dnkey-[A-Za-z0-9=_\-]{26}-[A-Za-z0-9=_\-]{52}",
        Random,
        "gitleaks defined-networking-api-token",
        "dnkey-{l:26}-{l:52}"
    ),
    rule!(
        "flutterwave_key",
        ["FLWSECK_TEST-", "FLWPUBK_TEST-", "FLWSECK-"],
        r"FLW(?:SECK|PUBK)(?:_TEST)?-[a-h0-9]{12,32}(?:-X)?",
        Random,
        "gitleaks flutterwave-*",
        "FLWSECK_TEST-{h:32}-X"
    ),
    rule!(
        "atlassian_token",
        ["ATATT3"],
        r"ATATT3[A-Za-z0-9_\-=]{186}",
        Random,
        "Atlassian API tokens; gitleaks atlassian-api-token",
        "ATATT3{w:186}"
    ),
    rule!(
        "cloudflare_origin_ca_key",
        ["v1.0-"],
        r"v1\.0-[a-f0-9]{24}-[a-f0-9]{146}",
        Shape,
        "gitleaks cloudflare-origin-ca-key",
        "v1.0-{h:24}-{h:146}"
    ),
    rule!(
        "heroku_key",
        ["HRKU-"],
        r"HRKU-[A-Za-z0-9_\-]{58,60}",
        Random,
        "devcenter.heroku.com API tokens (HRKU- prefix)",
        "HRKU-AA{w:58}"
    ),
    rule!(
        "square_token",
        ["sq0atp-", "sq0csp-", "EAAA"],
        r"(?:sq0atp-[A-Za-z0-9_\-]{22}|sq0csp-[A-Za-z0-9_\-]{43}|EAAA[A-Za-z0-9_\-]{60})",
        Random,
        "developer.squareup.com access tokens; gitleaks square-*",
        "EAAA{w:60}"
    ),
    rule!(
        "facebook_token",
        ["EAAC", "EAAM"],
        r"EAA[MC][A-Za-z0-9]{100,}",
        Random,
        "gitleaks facebook-access-token",
        "EAAC{a:120}"
    ),
    rule!(
        "harness_token",
        ["pat."],
        r"pat\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9]{24}\.[A-Za-z0-9]{20}",
        Random,
        "gitleaks harness-api-key",
        "pat.{w:22}.{a:24}.{a:20}"
    ),
    rule!(
        "airtable_token",
        ["pat"],
        r"(?-u:\b)pat[A-Za-z0-9]{14}\.[a-f0-9]{64}",
        Random,
        "airtable.com personal access tokens; gitleaks airtable-personnal-access-token",
        "pat{a:14}.{h:64}"
    ),
    rule!(
        "openshift_token",
        ["sha256~"],
        r"sha256~[A-Za-z0-9_\-]{43}",
        Random,
        "gitleaks openshift-user-token",
        "sha256~{w:43}"
    ),
    rule!(
        "octopus_key",
        ["API-"],
        r"(?-u:\b)API-[A-Z0-9]{26}(?-u:\b)",
        Random,
        "gitleaks octopus-deploy-api-key",
        "API-{u:26}"
    ),
    rule!(
        "notion_token",
        ["ntn_", "secret_"],
        r"(?:ntn_[0-9]{11}[A-Za-z0-9]{35}|(?-u:\b)secret_[A-Za-z0-9]{43}(?-u:\b))",
        Random,
        "developers.notion.com integration tokens",
        "ntn_{d:11}{a:35}"
    ),
    rule!("groq_key", ["gsk_"], r"gsk_[A-Za-z0-9]{52}", Random, "console.groq.com API keys", "gsk_{a:52}"),
    rule!("xai_key", ["xai-"], r"xai-[A-Za-z0-9]{80}", Random, "docs.x.ai API keys", "xai-{a:80}"),
    rule!("perplexity_key", ["pplx-"], r"pplx-[A-Za-z0-9]{48}", Random, "docs.perplexity.ai API keys", "pplx-{a:48}"),
    rule!("replicate_token", ["r8_"], r"(?-u:\b)r8_[A-Za-z0-9]{37}", Random, "replicate.com API tokens", "r8_{a:37}"),
    rule!(
        "langsmith_key",
        ["lsv2_pt_", "lsv2_sk_"],
        r"lsv2_(?:pt|sk)_[a-f0-9]{32}_[a-f0-9]{10}",
        Shape,
        "docs.smith.langchain.com API keys",
        "lsv2_pt_{h:32}_{h:10}"
    ),
    rule!(
        "pinecone_key",
        ["pcsk_"],
        r"pcsk_[A-Za-z0-9]{5,8}_[A-Za-z0-9]{60,}",
        Random,
        "docs.pinecone.io API keys",
        "pcsk_{a:6}_{a:63}"
    ),
];

/// Placeholder words inside a token body: documentation and templates, not credentials.
const PLACEHOLDER_WORDS: &[&str] = &[
    "your",
    "YOUR",
    "here",
    "HERE",
    "example_",
    "EXAMPLE_",
    "placeholder",
    "PLACEHOLDER",
    "xxxxx",
    "XXXXX",
    "redacted",
];

/// The catalogue compiled: the anchor automaton and each rule's regex (compiled on first use).
pub(crate) struct Catalogue {
    anchors: AhoCorasick,
    /// Which rule each anchor pattern belongs to.
    anchor_rule: Vec<u16>,
    regexes: Vec<OnceLock<Regex>>,
}

impl Catalogue {
    pub(crate) fn new() -> Self {
        let mut patterns = Vec::new();
        let mut anchor_rule = Vec::new();
        for (i, rule) in RULES.iter().enumerate() {
            for anchor in rule.anchors {
                patterns.push(*anchor);
                anchor_rule.push(i as u16);
            }
        }
        let anchors = AhoCorasickBuilder::new()
            .match_kind(MatchKind::Standard)
            .build(&patterns)
            .expect("the catalogue's anchors are plain literals");
        Catalogue { anchors, anchor_rule, regexes: RULES.iter().map(|_| OnceLock::new()).collect() }
    }

    fn regex(&self, i: usize) -> &Regex {
        self.regexes[i].get_or_init(|| {
            Regex::new(RULES[i].pattern)
                .unwrap_or_else(|e| panic!("catalogue rule {} has an invalid pattern: {e}", RULES[i].name))
        })
    }

    /// Every token in `value`: the rule index and the range replaced, in rule order (each rule's left to
    /// right).
    pub(crate) fn find(&self, value: &str, mut add: impl FnMut(Range<usize>, u16)) {
        // Rules whose anchor occurs; overlapping search so a short anchor inside a longer one still counts.
        let mut hit = [0u64; RULES_WORDS];
        let mut any = false;
        for m in self.anchors.find_overlapping_iter(value) {
            let rule = usize::from(self.anchor_rule[m.pattern().as_usize()]);
            hit[rule / 64] |= 1 << (rule % 64);
            any = true;
        }
        if !any {
            return;
        }
        let b = value.as_bytes();
        for (i, rule) in RULES.iter().enumerate() {
            if hit[i / 64] & (1 << (i % 64)) == 0 {
                continue;
            }
            for c in self.regex(i).captures_iter(value) {
                let whole = c.get(0).expect("group 0 always matches");
                // Tokens are whole words: not cut from a longer run of token characters.
                let before = whole.start().checked_sub(1).map(|j| b[j]);
                let after = b.get(whole.end()).copied();
                let glued = |x: Option<u8>| x.is_some_and(|x| x.is_ascii_alphanumeric() || x == b'_');
                let starts_with_letter = b[whole.start()].is_ascii_alphanumeric();
                if (starts_with_letter && glued(before) && !rule.pattern.starts_with("(?i)")) || glued(after) {
                    continue;
                }
                let secret = c.get(1).unwrap_or(whole);
                if validate(rule, secret.as_str()) {
                    add(secret.range(), i as u16);
                }
            }
        }
    }
}

const RULES_WORDS: usize = 2;
const _: () = assert!(RULES_WORDS * 64 >= 128, "the hit set holds up to 128 rules");

impl std::fmt::Debug for Catalogue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Catalogue({} rules)", RULES.len())
    }
}

/// The body of a token: what follows its longest anchor-like prefix (up to the first `_`, `-` or `.`
/// within the first 16 characters), or the whole token.
fn body(token: &str) -> &str {
    let head = &token.as_bytes()[..token.len().min(16)];
    // The separators are ASCII, so the byte after one starts a character.
    match head.iter().rposition(|b| matches!(b, b'_' | b'-' | b'.')) {
        Some(i) if i + 1 < token.len() => &token[i + 1..],
        _ => token,
    }
}

/// A random-looking body: two character classes or more, no run of five equal characters, no
/// placeholder word.
pub(crate) fn looks_random(body: &str) -> bool {
    let b = body.as_bytes();
    let classes = [u8::is_ascii_uppercase, u8::is_ascii_lowercase, u8::is_ascii_digit]
        .iter()
        .filter(|f| b.iter().any(**f))
        .count();
    let mut run = 1;
    for w in b.windows(2) {
        run = if w[0] == w[1] { run + 1 } else { 1 };
        if run >= 5 {
            return false;
        }
    }
    classes >= 2 && !PLACEHOLDER_WORDS.iter().any(|p| body.contains(p))
}

fn validate(rule: &Rule, token: &str) -> bool {
    if PLACEHOLDER_WORDS.iter().any(|p| token.contains(p)) {
        return false;
    }
    match rule.check {
        Check::Shape => true,
        Check::Random => looks_random(body(token)),
        Check::GithubCrc => github_checksum_ok(token) || looks_random(body(token)),
        Check::DiscordId => discord_id_ok(token),
        Check::Slack => slack_ok(token),
        Check::OpenAi => {
            let body = token.strip_prefix("sk-").unwrap_or(token);
            let body =
                ["proj-", "svcacct-", "admin-", "None-"].iter().find_map(|p| body.strip_prefix(p)).unwrap_or(body);
            let b = body.as_bytes();
            let hex = b.len() >= 32 && b.iter().all(u8::is_ascii_hexdigit);
            hex || (b.iter().any(u8::is_ascii_digit)
                && b.iter().any(u8::is_ascii_uppercase)
                && b.iter().any(u8::is_ascii_lowercase)
                && looks_random(body))
        }
    }
}

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// CRC-32 (IEEE), bitwise: only run on the few GitHub-shaped candidates.
pub(crate) fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// `n` in base62, left-padded with `0` to six characters (GitHub's checksum encoding).
pub(crate) fn base62_6(mut n: u32) -> [u8; 6] {
    let mut out = [b'0'; 6];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out
}

/// `ghp_` + 30 random characters + the CRC32 of those 30 in base62 (6 characters).
fn github_checksum_ok(token: &str) -> bool {
    let Some(body) = token.get(4..) else { return false };
    if body.len() != 36 {
        return false;
    }
    let (random, check) = body.split_at(30);
    base62_6(crc32(random.as_bytes())) == check.as_bytes()
}

/// The first segment of a Discord bot token is the bot's snowflake id, in decimal, base64-encoded.
fn discord_id_ok(token: &str) -> bool {
    let first = token.split('.').next().unwrap_or("");
    let decoded = super::detect::base64_decode(first);
    (17..=20).contains(&decoded.len()) && decoded.iter().all(u8::is_ascii_digit)
}

/// `xoxb-<team id>-<bot id>-<secret>`: after the type, a numeric segment; or a random body.
fn slack_ok(token: &str) -> bool {
    let mut parts = token.split('-').skip(1);
    let numeric = parts.next().is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let rest: Vec<&str> = token.split('-').skip(1).collect();
    let last = rest.last().copied().unwrap_or("");
    (numeric && last.len() >= 4 && !PLACEHOLDER_WORDS.iter().any(|p| last.contains(p))) || looks_random(&rest.concat())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A seeded generator (xorshift): examples differ per seed, never per run.
    pub(crate) struct Gen(pub(crate) u64);

    impl Gen {
        pub(crate) fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn pick(&mut self, alphabet: &[u8]) -> char {
            char::from(alphabet[(self.next() % alphabet.len() as u64) as usize])
        }

        /// Expands a sample template (see [`Rule::sample`]).
        pub(crate) fn expand(&mut self, template: &str) -> String {
            let mut out = String::new();
            let mut rest = template;
            while let Some(open) = rest.find('{') {
                out.push_str(&rest[..open]);
                let close = open + rest[open..].find('}').expect("closed hole");
                let (class, len) = rest[open + 1..close].split_once(':').expect("class:len");
                let len = match len.split_once('-') {
                    Some((lo, hi)) => {
                        let (lo, hi): (u64, u64) = (lo.parse().unwrap(), hi.parse().unwrap());
                        (lo + self.next() % (hi - lo + 1)) as usize
                    }
                    None => len.parse().unwrap(),
                };
                let alphabet: &[u8] = match class {
                    "d" => b"0123456789",
                    "h" => b"0123456789abcdef",
                    "H" => b"0123456789ABCDEF",
                    "a" => BASE62,
                    "l" => b"abcdefghijklmnopqrstuvwxyz0123456789",
                    "u" => b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
                    "A" => b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
                    "w" => b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-",
                    "b" => b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
                    "3" => b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567",
                    "B" => b"QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L",
                    other => panic!("unknown class {other}"),
                };
                // Re-draw until the hole looks random (a draw of 5 equal characters in a row is possible).
                loop {
                    let hole: String = (0..len).map(|_| self.pick(alphabet)).collect();
                    if len < 5 || looks_random(&hole) || class == "d" {
                        out.push_str(&hole);
                        break;
                    }
                }
                rest = &rest[close + 1..];
            }
            out.push_str(rest);
            out
        }
    }

    /// A positive example of `rule` (GitHub's with a valid checksum; Discord's with a real id).
    pub(crate) fn example(rule: &Rule, g: &mut Gen) -> String {
        let mut token = g.expand(rule.sample);
        if rule.check == Check::GithubCrc {
            let check = base62_6(crc32(&token.as_bytes()[4..]));
            token.push_str(std::str::from_utf8(&check).unwrap());
        }
        if rule.check == Check::DiscordId {
            let id: String = (0..18).map(|_| char::from(b'0' + (g.next() % 10) as u8)).collect();
            let id = format!("1{}", &id[1..]);
            let rest = token.split_once('.').unwrap().1.to_owned();
            token = format!("{}.{rest}", base64_encode(id.as_bytes()).trim_end_matches('='));
        }
        token
    }

    pub(crate) fn base64_encode(data: &[u8]) -> String {
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in data.chunks(3) {
            let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | u32::from(*b) << (16 - 8 * i));
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    fn found(c: &Catalogue, value: &str) -> Vec<(String, &'static str)> {
        let mut out = Vec::new();
        c.find(value, |r, i| out.push((value[r].to_owned(), RULES[usize::from(i)].name)));
        out
    }

    #[test]
    fn every_rule_has_a_unique_name_anchors_its_own_sample_and_compiles() {
        let c = Catalogue::new();
        let mut names = std::collections::HashSet::new();
        for (i, rule) in RULES.iter().enumerate() {
            assert!(names.insert(rule.name), "{} twice", rule.name);
            assert!(rule.name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{}", rule.name);
            assert!(!rule.source.is_empty());
            let _ = c.regex(i);
            let sample = example(rule, &mut Gen(0x9E37_79B9_7F4A_7C15 ^ i as u64));
            assert!(rule.anchors.iter().any(|a| sample.contains(a)), "{}: {sample} has no anchor", rule.name);
        }
        assert!(RULES.len() <= RULES_WORDS * 64);
    }

    /// Per rule: a generated token is found, alone and inside text, under that rule's name; the same
    /// token with its body replaced by a placeholder, or cut to half, is not.
    #[test]
    fn each_rule_finds_its_format_and_not_its_lookalikes() {
        let c = Catalogue::new();
        for (i, rule) in RULES.iter().enumerate() {
            for seed in 1..=5u64 {
                let token = example(rule, &mut Gen(seed * 7919 + i as u64));
                let text = format!("config {token} end");
                let hits = found(&c, &text);
                assert!(
                    hits.iter().any(|(s, n)| *n == rule.name && token.contains(s.as_str())),
                    "{}: {token:?} gave {hits:?}",
                    rule.name
                );
                // Cut six characters after the anchor: every format is longer than that.
                let anchor_end =
                    rule.anchors.iter().filter_map(|a| token.find(a).map(|at| at + a.len())).min().unwrap();
                let short = &token[..(anchor_end + 6).min(token.len() - 1)];
                let hits = found(&c, &format!("config {short} end"));
                assert!(hits.iter().all(|(_, n)| *n != rule.name), "{}: cut {short:?} gave {hits:?}", rule.name);
            }
            let token = example(rule, &mut Gen(i as u64 + 1));
            let at = rule.anchors.iter().filter_map(|a| token.find(a).map(|at| at + a.len())).min().unwrap();
            let placeholder: String = token[..at]
                .chars()
                .chain(token[at..].chars().map(|c| if c.is_ascii_alphanumeric() { 'x' } else { c }))
                .collect();
            let hits = found(&c, &format!("config {placeholder} end"));
            assert!(
                hits.iter().all(|(_, n)| *n != rule.name),
                "{}: placeholder {placeholder:?} gave {hits:?}",
                rule.name
            );
        }
    }

    /// The development set `tests/redaction/data/formats.jsonl` has rows of every rule.
    #[test]
    fn the_development_set_covers_every_rule() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/redaction/data/formats.jsonl");
        let Ok(text) = std::fs::read_to_string(path) else { return }; // a packaged crate has no tests folder
        for rule in RULES {
            let kind = format!("\"kind\": \"{}\"", rule.name);
            assert!(text.contains(&kind), "{} has no row in formats.jsonl", rule.name);
        }
    }

    #[test]
    fn github_checksum() {
        let token = example(RULES.iter().find(|r| r.name == "github_token").unwrap(), &mut Gen(3));
        assert!(github_checksum_ok(&token), "{token}");
        let mut broken = token.clone().into_bytes();
        broken[10] = if broken[10] == b'a' { b'b' } else { b'a' };
        assert!(!github_checksum_ok(std::str::from_utf8(&broken).unwrap()));
        // A checksum makes even a low-variety body a token.
        let low = "ghp_aaaabbbbccccddddeeeeffffgggghh";
        let full = format!("{low}{}", std::str::from_utf8(&base62_6(crc32(&low.as_bytes()[4..]))).unwrap());
        assert!(!looks_random(&low[4..]));
        assert!(github_checksum_ok(&full));
    }

    #[test]
    fn discord_ids_and_slack_structure() {
        assert!(discord_id_ok("MTIzNDU2Nzg5MDEyMzQ1Njc4.Gg1234.abcdefghijklmnopqrstuvwxyz0"));
        assert!(!discord_id_ok("MTIzYWJjZGVmZ2hpamtsbW5v.Gg1234.abcdefghijklmnopqrstuvwxyz0"), "id is not decimal");
        assert!(slack_ok("xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"));
        assert!(!slack_ok("xoxb-your-token-here"));
    }
}

//! Secrets that only their surroundings identify: the values of a Kubernetes `Secret` manifest, NuGet's
//! `<add key="ClearTextPassword" value="…"/>`, `curl -u user:password`, Sidekiq's
//! `bundle config gems.contribsys.com user:password`. One anchor automaton decides
//! whether any of them can be present; a value without those anchors costs that one pass.

use super::detect::Kind;
use super::keys::is_secret_key;
use aho_corasick::AhoCorasick;
use regex::Regex;
use std::ops::Range;
use std::sync::OnceLock;

struct Context {
    anchors: AhoCorasick,
    manifest_kind: Regex,
    data_block: Regex,
    xml_add: Regex,
    curl_user: Regex,
    sidekiq: Regex,
    sidekiq_rule: u16,
}

fn context() -> &'static Context {
    static CONTEXT: OnceLock<Context> = OnceLock::new();
    CONTEXT.get_or_init(|| {
        let re = |p: &str| Regex::new(p).unwrap_or_else(|e| panic!("context pattern {p:?}: {e}"));
        Context {
            anchors: AhoCorasick::new(["Secret", "<add", "curl", "contribsys.com"]).expect("plain literals"),
            manifest_kind: re(r#"(?m)^\s*kind:\s*["']?Secret["']?\s*$"#),
            data_block: re(r"(?m)^([ \t]*)(?:data|stringData):[ \t]*\r?\n"),
            xml_add: re(r#"(?i)<add\s+key\s*=\s*"([^"]*)"\s+value\s*=\s*"([^"]*)""#),
            curl_user: re(r#"(?:^|\s)curl\s(?:[^\n]*?\s)?(?:-u|--user)(?:\s+|=)?["']?([^\s"':@]+:[^\s"']+)"#),
            sidekiq: re(r"(?:gems|enterprise)\.contribsys\.com\s+([a-f0-9]{8}:[a-f0-9]{8})(?-u:\b)"),
            sidekiq_rule: super::catalogue::RULES
                .iter()
                .position(|r| r.name == "sidekiq_secret")
                .expect("the catalogue has Sidekiq's rule") as u16,
        }
    })
}

/// Adds each value the surroundings mark as secret.
pub(crate) fn find(value: &str, mut add: impl FnMut(Range<usize>, Kind)) {
    let cx = context();
    let (mut secret, mut xml, mut curl, mut sidekiq) = (false, false, false, false);
    for m in cx.anchors.find_iter(value) {
        match m.pattern().as_usize() {
            0 => secret = true,
            1 => xml = true,
            2 => curl = true,
            _ => sidekiq = true,
        }
    }
    if sidekiq {
        for c in cx.sidekiq.captures_iter(value) {
            add(c.get(1).expect("group 1").range(), Kind::Token(cx.sidekiq_rule));
        }
    }
    if curl {
        for c in cx.curl_user.captures_iter(value) {
            let g = c.get(1).expect("group 1");
            let password = g.as_str().split_once(':').map_or("", |(_, p)| p);
            if !super::inline::is_placeholder(password) {
                add(g.range(), Kind::Credentials);
            }
        }
    }
    if xml {
        for c in cx.xml_add.captures_iter(value) {
            let (key, val) = (c.get(1).expect("group 1"), c.get(2).expect("group 2"));
            if is_secret_key(key.as_str()) && !super::inline::is_placeholder(val.as_str()) {
                add(val.range(), Kind::Key);
            }
        }
    }
    if secret && cx.manifest_kind.is_match(value) {
        manifest_data(cx, value, &mut add);
    }
}

/// Every `name: value` line under a `data:` or `stringData:` block of a Kubernetes `Secret`.
fn manifest_data(cx: &Context, value: &str, add: &mut impl FnMut(Range<usize>, Kind)) {
    for block in cx.data_block.captures_iter(value) {
        let indent = block.get(1).map_or(0, |g| g.as_str().len());
        let mut at = block.get(0).expect("group 0").end();
        while at < value.len() {
            let line_end = value[at..].find('\n').map_or(value.len(), |i| at + i);
            let line = &value[at..line_end];
            let depth = line.len() - line.trim_start_matches([' ', '\t']).len();
            if line.trim().is_empty() {
                at = line_end + 1;
                continue;
            }
            if depth <= indent {
                break;
            }
            if let Some(colon) = line.find(':') {
                let raw = &line[colon + 1..];
                let trimmed = raw.trim().trim_end_matches('\r');
                let unquoted = trimmed.trim_matches(|c| c == '"' || c == '\'');
                if !unquoted.is_empty() && !super::inline::is_placeholder(unquoted) {
                    let start = at + colon + 1 + raw.find(unquoted).unwrap_or(0);
                    add(start..start + unquoted.len(), Kind::Key);
                }
            }
            at = line_end + 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(value: &str) -> String {
        super::super::masked_by(value, |value, add| find(value, add))
    }

    #[test]
    fn surroundings_mark_secrets() {
        let manifest = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ndata:\n  username: YWRtaW4=\n  password: \"MWYyZDFlMmU2N2Rm\"\ntype: Opaque\n";
        assert_eq!(
            masked(manifest),
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ndata:\n  username: ~\n  password: \"~\"\ntype: Opaque\n"
        );
        assert_eq!(
            masked(r#"<add key="ClearTextPassword" value="s3cr3t!" />"#),
            r#"<add key="ClearTextPassword" value="~" />"#
        );
        assert_eq!(masked("curl -s -u admin:hunter22 https://x"), "curl -s -u ~ https://x");
        assert_eq!(masked("curl --user=bob:pa55 x"), "curl --user=~ x");
    }

    #[test]
    fn lookalikes_stay() {
        for value in [
            "apiVersion: v1\nkind: ConfigMap\ndata:\n  level: debug\n",
            "kind: Secret\nmetadata:\n  name: x\n",
            r#"<add key="Username" value="bob" />"#,
            r#"<add key="ClearTextPassword" value="%NUGET_PASSWORD%" />"#,
            "curl -u $USER:$PASSWORD https://x",
            "curl -u bob: https://x",
        ] {
            assert_eq!(masked(value), value);
        }
    }
}

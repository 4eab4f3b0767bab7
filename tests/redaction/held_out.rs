//! Strings written for this test, not taken from the development corpus: the detectors must work on
//! shapes and checksums, not on memorised values.

use kotaemon_trace::redact::Redactor;

/// A Luhn-valid number from a prefix, filled deterministically.
fn luhn_card(prefix: &str, len: usize, seed: u64) -> String {
    let mut digits: Vec<u32> = prefix.chars().map(|c| c.to_digit(10).unwrap()).collect();
    let mut x = seed;
    while digits.len() < len - 1 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        digits.push(((x >> 33) % 10) as u32);
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            if i % 2 == 0 {
                let v = d * 2;
                if v > 9 {
                    v - 9
                } else {
                    v
                }
            } else {
                *d
            }
        })
        .sum();
    digits.push((10 - sum % 10) % 10);
    digits.iter().map(|d| char::from_digit(*d, 10).unwrap()).collect()
}

fn spaced(card: &str) -> String {
    card.as_bytes().chunks(4).map(|c| std::str::from_utf8(c).unwrap()).collect::<Vec<_>>().join(" ")
}

#[test]
fn unseen_secrets_are_caught() {
    let r = Redactor::default();
    let mut cases: Vec<(String, String)> = vec![
        (
            "write to maria.gonzalez+billing@shop.example.co.uk today".into(),
            "maria.gonzalez+billing@shop.example.co.uk".into(),
        ),
        ("O'Brien <sean_obrien@uni.example.ie>".into(), "sean_obrien@uni.example.ie".into()),
        ("Rufen Sie +49 30 901820 an".into(), "901820".into()),
        ("numéro: +33 6 12 34 56 78".into(), "12 34 56 78".into()),
        ("call +1-212-555-0147 after 5".into(), "555-0147".into()),
        ("my cell is 415-867-5309".into(), "867-5309".into()),
        ("联系电话：15812345678".into(), "15812345678".into()),
        ("请拨 159-1234-5678".into(), "1234-5678".into()),
        ("token=ghs_16C7e42F292c6912E7710c838347Ae178B4a".into(), "16C7e42F292c6912E7710c838347Ae178B4a".into()),
        ("aws key ASIAY34FZKBOKMUTVV7A rotated".into(), "ASIAY34FZKBOKMUTVV7A".into()),
        ("slack xoxp-1234567890-0987654321-abcdefABCDEF".into(), "abcdefABCDEF".into()),
        ("stripe rk_test_51Hx9aBcDeFgHiJkLmNoPq".into(), "51Hx9aBcDeFgHiJkLmNoPq".into()),
        ("OPENAI_API_KEY=sk-svcacct-AbCdEf0123456789_XyZ-abcdefgh".into(), "AbCdEf0123456789_XyZ".into()),
        ("gitlab glpat-xYz1234567890AbCdEfGh".into(), "xYz1234567890AbCdEfGh".into()),
        ("curl -H 'Authorization: Basic dXNlcjpwYXNzd29yZA=='".into(), "dXNlcjpwYXNzd29yZA==".into()),
        ("redis://default:s3cr3t-P4ss@cache.local:6379/0".into(), "s3cr3t-P4ss".into()),
        ("https://admin:correct%20horse@example.com/".into(), "correct%20horse".into()),
        ("id_token eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJhY21lIn0.c2lnbmF0dXJl".into(), "eyJpc3MiOiJhY21lIn0".into()),
        (
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU=\n".into(),
            "b3BlbnNzaC1rZXktdjEAAAAABG5vbmU=".into(),
        ),
        ("pay to DE89 3704 0044 0532 0130 00 please".into(), "0532 0130".into()),
    ];
    for (i, (prefix, len)) in
        [("4", 16), ("51", 16), ("2221", 16), ("37", 15), ("6011", 16), ("35", 16), ("62", 19)].iter().enumerate()
    {
        let card = luhn_card(prefix, *len, i as u64 + 7);
        cases.push((format!("card {card} on file"), card[4..12].to_string()));
        if *len == 16 {
            let s = spaced(&card);
            cases.push((format!("paid with {s}"), s[5..14].to_string()));
            let dashed = s.replace(' ', "-");
            cases.push((format!("paid with {dashed}"), dashed[5..14].to_string()));
        }
    }
    let mut missed = Vec::new();
    for (value, secret) in &cases {
        let out = r.redact("note", value);
        if out.contains(secret.as_str()) {
            missed.push(format!("{value:?} -> {out:?}"));
        }
    }
    println!("held-out secrets: {}/{} caught", cases.len() - missed.len(), cases.len());
    assert!(missed.is_empty(), "missed:\n{}", missed.join("\n"));
}

#[test]
fn unseen_lookalikes_are_kept() {
    let r = Redactor::default();
    let mut benign: Vec<String> = vec![
        "Order #A-1029-3384 was refunded".into(),
        "tracking 1Z9999999999999999 via UPS".into(),
        "FedEx 7712 3456 7890".into(),
        "build 2026.11.25+a1b2c3d".into(),
        "semver 10.4.0-beta.2+exp.sha.5114f85".into(),
        "commit 3f786850e387550fdab836ed7e6dc881de23001b".into(),
        "sha512 cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce".into(),
        "request 123e4567-e89b-12d3-a456-426614174000 failed".into(),
        "at 2026-11-25 06:00:12.345678 UTC".into(),
        "epoch 1764050412345".into(),
        "call duration 1234567 µs".into(),
        "pi is 3.14159265358979".into(),
        // Not personal: loopback, and version numbers and OIDs with four dotted parts or more.
        "IP 127.0.0.1 port 8443".into(),
        "build v4.10.200.3 released".into(),
        "invoice INV-2026-000123".into(),
        "see RFC 7519 section 4.1".into(),
        "Please send your token budget report".into(),
        "the password policy requires 12 characters".into(),
        "Bearer tokens are explained in chapter 3".into(),
        "email us via the contact form".into(),
        "https://example.com/path?q=1&lang=en".into(),
        "user@localhost".into(),
        "score 0.8734, rank 4 of 1000000".into(),
        "model gpt-4o-2024-08-06".into(),
        "skeleton key metaphor".into(),
        "sk-learn is a nickname for scikit-learn".into(),
    ];
    // Numbers that look like cards but fail Luhn.
    for (i, prefix) in ["4", "51", "37"].iter().enumerate() {
        let good = luhn_card(prefix, 16, i as u64 + 100);
        let last = good.chars().last().unwrap().to_digit(10).unwrap();
        let bad = format!("{}{}", &good[..15], (last + 1) % 10);
        benign.push(format!("reference {bad}"));
    }
    let changed: Vec<String> = benign
        .iter()
        .filter_map(|v| {
            let out = r.redact("note", v);
            (out != v.as_str()).then(|| format!("{v:?} -> {out:?}"))
        })
        .collect();
    println!("held-out benign: {}/{} kept", benign.len() - changed.len(), benign.len());
    assert!(changed.is_empty(), "changed:\n{}", changed.join("\n"));
}

#[test]
fn ip_addresses_are_personal_data_unless_the_operator_keeps_them() {
    let value = "IP 192.168.100.200 port 8443, peer 2001:db8:85a3::8a2e:370:7334";
    assert_eq!(
        Redactor::default().redact("note", value),
        "IP [REDACTED:ip_address] port 8443, peer [REDACTED:ip_address]"
    );
    assert_eq!(Redactor::builder().redact_ip(false).build().redact("note", value), value);
}

#[test]
fn key_rules_mask_whole_values_and_keep_the_key() {
    let r = Redactor::default();
    assert_eq!(r.redact("user.password", "correct horse battery staple"), "[REDACTED:key]");
    assert_eq!(r.redact("http.request.header.cookie", "sid=abc"), "[REDACTED:key]");
    assert_eq!(r.redact("document.author", "Jane Austen"), "Jane Austen");
    assert_eq!(r.redact("exception.type", "alice@example.com"), "alice@example.com", "allow-listed structural key");
}

#[test]
fn pseudonyms_are_stable_keyed_and_never_the_value() {
    let a = Redactor::builder().pseudonym_key(b"service-wide key 0123456789").build();
    let b = Redactor::builder().pseudonym_key(b"another key entirely 9876543").build();
    let phone = "+86 139 5998 2352";
    assert_eq!(a.pseudonym(phone), a.pseudonym(phone));
    assert_ne!(a.pseudonym(phone), b.pseudonym(phone));
    assert_ne!(a.pseudonym(phone), a.pseudonym("+86 139 5998 2353"));
    assert!(!a.pseudonym(phone).contains("5998"));
    // Without a configured key, the process draws one: every redactor of this process agrees (a restarted
    // pipeline keeps its pseudonyms), and it is not any configured key.
    assert_eq!(Redactor::default().pseudonym(phone), Redactor::default().pseudonym(phone));
    assert_ne!(Redactor::default().pseudonym(phone), a.pseudonym(phone));
}

/// Secrets glued to Chinese text, named inline (the way a `Debug` argument or a config dump carries them),
/// in URL user info with odd passwords, and numbers written the way people in other countries write them.
#[test]
fn unseen_inline_glued_and_regional_secrets_are_caught() {
    #[derive(Debug)]
    #[allow(dead_code)]
    struct LoginRequest {
        user: String,
        password: String,
        api_token: Option<String>,
    }
    let debug = format!(
        "{:?}",
        LoginRequest { user: "bob".into(), password: "Tr0ub4dor&3".into(), api_token: Some("a1b2c3d4e5".into()) }
    );
    let r = Redactor::default();
    let mir = luhn_card("2200", 16, 42);
    let cases: Vec<(String, &str)> = vec![
        (debug, "Tr0ub4dor&3"),
        (debug_pretty(), "s3cr3t-value"),
        ("请联系张伟zhangwei@163.com谢谢".into(), "zhangwei@163.com"),
        ("邮箱：li.na@example.cn。".into(), "li.na@example.cn"),
        ("卡号6222021234567890128".into(), "6222021234567890128"),
        ("密钥sk-proj-AbCdEfGh1234567890IjKlMnOp".into(), "AbCdEfGh1234567890IjKlMnOp"),
        ("手机号13812345678，备用15987654321".into(), "13812345678"),
        ("手机号13812345678，备用15987654321".into(), "15987654321"),
        ("办公电话：021-63456789".into(), "63456789"),
        ("redis://:Sup3rPass@cache:6379/0".into(), "Sup3rPass"),
        ("postgres://u:p@ss-w0rd@host:5432/db".into(), "ss-w0rd"),
        ("mongodb+srv://admin:Pa55w0rd@cluster0.example.net/test".into(), "Pa55w0rd"),
        ("eyJhbGciOiJIUzI1NiJ9.e30.ZRrHA1JJJW8opsbCGfG_HACGpVUMN_a9IV7pAx_Zmeo".into(), "ZRrHA1JJJW8opsbCGfG"),
        ("GET /v1/items?user=7&api_key=9f8e7d6c5b4a&page=2".into(), "9f8e7d6c5b4a"),
        (r#"{"model": "qwen2.5", "api_key": "ak-90ab12cd34ef"}"#.into(), "ak-90ab12cd34ef"),
        ("{'refresh_token': 'rt.Zx81-Qa'}".into(), "rt.Zx81-Qa"),
        ("DB_PASSWORD=changeme42 ./run.sh".into(), "changeme42"),
        (
            "Authorization: Token 9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b".into(),
            "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b",
        ),
        ("Cookie: sessionid=38afes7a8; theme=dark".into(), "38afes7a8"),
        ("(+86) 139 5998 2352".into(), "5998 2352"),
        ("+82 10-1234-5678".into(), "1234-5678"),
        ("+852 9123 4567".into(), "9123 4567"),
        ("+33 (0)6 12 34 56 78".into(), "34 56 78"),
        ("+44 20 7946 0958 2026".into(), "7946 0958"),
        (format!("mir {}", spaced(&mir)), &mir[4..8]),
        ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(), "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        ("aliyun LTAI5tFhA1b2C3d4E5f6G7h8".into(), "5tFhA1b2C3d4E5f6G7h8"),
    ];
    let mut missed = Vec::new();
    for (value, secret) in &cases {
        let out = r.redact("note", value);
        if out.contains(secret) {
            missed.push(format!("{value:?} -> {out:?}"));
        }
    }
    println!("held-out inline/glued/regional secrets: {}/{} caught", cases.len() - missed.len(), cases.len());
    assert!(missed.is_empty(), "missed:\n{}", missed.join("\n"));
}

fn debug_pretty() -> String {
    #[derive(Debug)]
    #[allow(dead_code)]
    struct Settings {
        endpoint: &'static str,
        client_secret: &'static str,
    }
    format!("{:#?}", Settings { endpoint: "https://api.example.com", client_secret: "s3cr3t-value" })
}

#[test]
fn unseen_lookalikes_of_the_new_rules_are_kept() {
    let r = Redactor::default();
    let benign = [
        "Bearer authentication is configured upstream",
        "Basic authentication is disabled",
        "git@github.com:org/repo.git",
        "ssh://git@github.com/org/repo",
        "max_tokens=512, temperature=0.7, top_p=0.9",
        "llm.token_count.prompt=123 llm.token_count.completion=45",
        "the password: must be 12 characters long",
        "token=None, secret=null",
        r#"{"token_count": 1234, "author": "Jane 2"}"#,
        "password=[REDACTED:key]",
        "Error: invalid token (expired 5 minutes ago)",
        "Authorization: required",
        "sk-learn-pipeline-config-v2-final",
        "see file eyJhbGciOi.json.bak",
        "eyJhIjoxfQ== is base64 json",
        "batch sizes 256 512 1024",
        "job cluster-a-1234567890123456789",
        "订单号20240101，数量13件",
        "版本 1.2.3，时间 2026-11-25 06:00:12",
        "snowflake 1541815603606036480",
        "trace_id=4bf92f3577b34da6a3ce929d0e0e4736",
    ];
    let changed: Vec<String> = benign
        .iter()
        .filter_map(|v| {
            let out = r.redact("note", v);
            (out != *v).then(|| format!("{v:?} -> {out:?}"))
        })
        .collect();
    println!("held-out benign (new rules): {}/{} kept", benign.len() - changed.len(), benign.len());
    assert!(changed.is_empty(), "changed:\n{}", changed.join("\n"));
}

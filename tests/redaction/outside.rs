//! The shapes an outside evaluation (secret-scanner rule tests, PII recognizer tests) found missing or
//! wrongly redacted, written here from the formats' descriptions: each secret part gone, each look-alike
//! byte-identical, and the span replaced exactly the value.

use kotaemon_trace::redact::Redactor;

#[test]
fn formats_the_outside_evaluation_missed_are_caught() {
    let r = Redactor::default();
    let cases: &[(&str, &str, &str)] = &[
        (
            "notify = \"https://hooks.slack.com/services/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\"",
            "T0A1B2C3D4E/B0F5G6H7I8J/q1W2e3R4t5Y6u7I8o9P0aSdF",
            "slack_webhook",
        ),
        ("SLACK=xoxp-41241241241-412412412412-4125134134134-2ed7d5a2a9ed4a6fa1c5e4e3b2b1a0f9", "2ed7d5a2a9ed4a6fa1c5e4e3b2b1a0f9", "slack_token"),
        ("bot: MTAzMjQ1Njc4OTAxMjM0NTY3OA.GhIjKl.AbCdEfGhIjKlMnOpQrStUvWxYz0123456789ab", "GhIjKl.AbCdEfGhIjKlMnOpQrStUvWxYz0123456789ab", "discord_bot_token"),
        ("runner glrt-Xk2q9Rt7mZpL4sVbN8wY", "Xk2q9Rt7mZpL4sVbN8wY", "gitlab_token"),
        ("deploy gldt-Ab3dE5gH7jK9mN1pQ3sT", "Ab3dE5gH7jK9mN1pQ3sT", "gitlab_token"),
        ("TELEGRAM=5462718390:AAHk3b9Xq2Lm7Pz0Rt4Vw8Yc1De5Fg6Hj7K", "AAHk3b9Xq2Lm7Pz0Rt4Vw8Yc1De5Fg6Hj7K", "telegram_bot_token"),
        ("export BUNDLE_ENTERPRISE__CONTRIBSYS__COM=cafebabe:deadbeef", "cafebabe:deadbeef", "sidekiq_secret"),
        ("bundle config gems.contribsys.com 1a2b3c4d:5e6f7a8b", "1a2b3c4d:5e6f7a8b", "sidekiq_secret"),
        (
            "X-JFrog-Art-Api: AKCpnQvWys81vp7hB1dx8PpD5KHXe3PYiGkPAuNaRL63xYKwzEInncIIA3ANxN9K3KSU9Mi4r",
            "AKCpnQvWys81vp7hB1dx8PpD5KHXe3PYiGkPAuNaRL63xYKwzEInncIIA3ANxN9K3KSU9Mi4r",
            "jfrog_token",
        ),
        ("secret key A3-ASWWYB-798JRY-LJVD4-23DC2-86TVM-H43EB", "798JRY-LJVD4-23DC2-86TVM-H43EB", "onepassword_token"),
        ("FLY_API_TOKEN=fo1_Xk2q9Rt7mZpL4sVbN8wYc3Fh6Jk9Mn2Pq5St8Vw1Yz4", "Xk2q9Rt7mZpL4sVbN8wYc3Fh6Jk9Mn2Pq5St8Vw1Yz4", "flyio_token"),
        ("DATABASE_PASSWORD: pscale_pw_Xk2q9Rt7mZpL4sVbN8wYc3Fh6Jk9Mn2Pq5St8", "Xk2q9Rt7mZpL4sVbN8wYc3Fh6Jk9Mn2Pq5St8", "planetscale_token"),
        ("src-cli sgp_a0b1c2d3e4f5a6b7_c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7", "c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7", "sourcegraph_token"),
        ("SENTRY 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", "1f2e3d4c5b6a79881f2e3d4c5b6a7988", "sentry_token"),
        ("hf org 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", "KxQwErTyUiOpAsDfGhJkLzXcVbNmQwErTy", "huggingface_org_token"),
        ("sumo_access_id = \"suX7k2Lq9Rt4Vw\"", "suX7k2Lq9Rt4Vw", "sumologic_key"),
        ("EASYPOST=EZAKa1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2c3", "a1b2c3d4e5f6a7b8c9d0e1f2a3b4", "easypost_key"),
        ("shippo_live_0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b", "0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b", "shippo_token"),
        ("messagebird_api_key = \"x7k2lq9rt4vw8yc1de5fg6hj3\"", "x7k2lq9rt4vw8yc1de5fg6hj3", "messagebird_token"),
        (
            "<packageSourceCredentials><Feed><add key=\"Username\" value=\"ci\" /><add key=\"ClearTextPassword\" value=\"n0t-a-real-p4ss\" /></Feed></packageSourceCredentials>",
            "n0t-a-real-p4ss",
            "key",
        ),
        ("apiVersion: v1\nkind: Secret\ntype: Opaque\ndata:\n  password: cGFzc3dvcmQxMjM=\n", "cGFzc3dvcmQxMjM=", "key"),
        ("curl -u admin:s3cr3tP4ss https://api.example.com/v1", "s3cr3tP4ss", "credentials"),
        ("password_super_secure = \"value with quotes and spaces\"", "value with quotes and spaces", "key"),
        (
            "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4==;EndpointSuffix=core.windows.net",
            "Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6",
            "azure_storage_key",
        ),
        ("client 203.0.113.54 connected", "203.0.113.54", "ip_address"),
        ("send to 1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2", "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2", "bitcoin_address"),
        ("send to bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", "bitcoin_address"),
        ("wallet 0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359", "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359", "ethereum_address"),
        ("ssn 536-22-8945", "536-22-8945", "us_ssn"),
    ];
    let mut failures = Vec::new();
    for (value, secret, kind) in cases {
        let out = r.redact("note", value);
        if out.contains(secret) || !out.contains(&format!("[REDACTED:{kind}]")) {
            failures.push(format!("{value:?} -> {out:?} (want {kind})"));
        }
    }
    assert!(failures.is_empty(), "{} missed:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn placeholders_and_lookalikes_are_kept_whole() {
    let r = Redactor::default();
    let mut failures = Vec::new();
    for value in [
        "//registry.npmjs.org/:_authToken=${NPM_TOKEN}",
        "password = \"%s\" % ENV_NAME",
        "api_key = \"insert_key_here\"",
        "token: xxxx",
        "secret = 'xxxxxxxxxxxxxxxxxxxx'",
        "password: <your-password>",
        "API_KEY={{ api_key }}",
        "password=os.getenv(\"DB_PASSWORD\")",
        "token = process.env.GITHUB_TOKEN",
        "auth: %(password)s",
        "\"https://url:8000\";@something",
        "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "sk_live_YOUR_STRIPE_SECRET_KEY_HERE_1234",
        "trace_id 4bf92f3577b34da6a3ce929d0e0e4736 span 00f067aa0ba902b7",
        "cache_key = user_42_profile_v2",
        "etag: \"33a64df551425fcc55e4d42a148795d9f25f89d4\"",
        "request 550e8400-e29b-41d4-a716-446655440000 took 12 ms",
        "commit 9fceb02d0ae598e95dc970b74767f19372d61af8",
        "MESSAGEBIRD_ORIGINATOR=AcmeShop",
        // A secret word next to a word saying where or what the secret is: not the secret.
        "token_url: https://auth.example.com/oauth/token",
        "password_file: /run/secrets/db-password",
        "secretKeyRef: {name: db-creds, key: password}",
        "if password == expected_password:",
    ] {
        let out = r.redact("note", value);
        if out != value {
            failures.push(format!("{value:?} -> {out:?}"));
        }
    }
    assert!(failures.is_empty(), "{} changed:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn the_span_is_exactly_the_value() {
    let r = Redactor::default();
    for (value, want) in [
        ("cfg = {\"password\": \"p@ss{w}rd\"}", "cfg = {\"password\": \"[REDACTED:key]\"}"),
        ("env(TOKEN=abc{1}x2, next)", "env(TOKEN=[REDACTED:key], next)"),
        ("(password=Sup3r!)", "(password=[REDACTED:key])"),
        ("[api_key: 'k3y-v4lue']", "[api_key: '[REDACTED:key]']"),
        ("curl --user bob:pa55w0rd -X GET", "curl --user [REDACTED:credentials] -X GET"),
        ("--password=hunter22 --verbose", "--password=[REDACTED:key] --verbose"),
    ] {
        assert_eq!(r.redact("note", value), want, "{value}");
    }
}

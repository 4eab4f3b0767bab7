//! The development set in `data/dev.jsonl` (format in `data/README.md`) under a neutral key: every secret part gone, every benign value
//! byte-identical. Prints recall and the benign-kept ratio.

use kotaemon_trace::redact::Redactor;
use serde_json::Value;

fn corpus() -> Vec<Value> {
    rows("dev.jsonl")
}

fn rows(file: &str) -> Vec<Value> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("redaction/data").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("the redaction corpus is missing at {} ({e}); it is committed with the tests", path.display())
    });
    text.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).expect("a JSON line")).collect()
}

#[test]
fn dev_corpus_every_secret_gone_every_benign_value_kept() {
    let redactor = Redactor::default();
    let rows = corpus();
    let (mut secrets, mut caught, mut benign, mut kept) = (0, 0, 0, 0);
    let mut failures = Vec::new();
    for row in &rows {
        let value = row["value"].as_str().unwrap();
        let out = redactor.redact("note", value);
        match row["label"].as_str().unwrap() {
            "secret" => {
                secrets += 1;
                let secret = row["secret"].as_str().unwrap();
                if out.contains(secret) {
                    failures.push(format!("secret kept ({}): {value:?} -> {out:?}", row["kind"]));
                } else {
                    caught += 1;
                }
            }
            _ => {
                benign += 1;
                if out == value {
                    kept += 1;
                } else {
                    failures.push(format!("benign changed: {value:?} -> {out:?}"));
                }
            }
        }
    }
    println!(
        "redaction corpus: recall {caught}/{secrets} = {:.3}, benign kept {kept}/{benign} = {:.3}",
        caught as f64 / secrets as f64,
        kept as f64 / benign as f64
    );
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn markers_never_contain_the_matched_text() {
    let redactor = Redactor::default();
    for row in corpus().iter().filter(|r| r["label"] == "secret") {
        let value = row["value"].as_str().unwrap();
        let out = redactor.redact("note", value);
        for marker in out.match_indices("[REDACTED:").map(|(i, _)| &out[i..]) {
            let end = marker.find(']').unwrap();
            let kind = &marker["[REDACTED:".len()..end];
            assert!(kind.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "marker {kind:?} for {value:?}");
        }
    }
}

/// `data/formats.jsonl`: every catalogue rule, personal data by checksum and the context rules, with the
/// source of each format. Each secret row must be gone *and* marked with its kind.
#[test]
fn formats_set_every_secret_gone_under_its_kind_every_lookalike_kept() {
    let redactor = Redactor::default();
    let (mut secrets, mut caught, mut benign, mut kept) = (0, 0, 0, 0);
    let mut failures = Vec::new();
    for row in rows("formats.jsonl") {
        let value = row["value"].as_str().unwrap();
        assert!(row["source"].as_str().is_some_and(|s| !s.is_empty()), "{value}: every row names its source");
        let out = redactor.redact("note", value);
        if row["label"] == "secret" {
            secrets += 1;
            let kind = row["kind"].as_str().unwrap();
            if out.contains(row["secret"].as_str().unwrap()) || !out.contains(&format!("[REDACTED:{kind}]")) {
                failures.push(format!("{kind}: {value:?} -> {out:?}"));
            } else {
                caught += 1;
            }
        } else {
            benign += 1;
            if out == value {
                kept += 1;
            } else {
                failures.push(format!("look-alike changed: {value:?} -> {out:?}"));
            }
        }
    }
    println!(
        "formats set: recall {caught}/{secrets} = {:.3}, look-alikes kept {kept}/{benign} = {:.3}",
        caught as f64 / secrets as f64,
        kept as f64 / benign as f64
    );
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

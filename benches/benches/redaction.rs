//! Cost of redaction on the export thread: a short clean string, a 2 KB clean prompt, and strings with
//! secrets, against doing nothing; and hostile text (near-misses of every detector, repeated) at 64 KiB
//! and 1 MiB, the largest value the export thread hands the redactor: equal throughput at both sizes is
//! linear time.
//!
//! `cargo bench -p kotaemon-trace-benches --bench redaction`

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use kotaemon_trace::redact::Redactor;
use std::hint::black_box;

fn prompt_2kb() -> String {
    let paragraph = "Refunds reach your card 5 to 7 days after we receive the return. Items can be returned within \
                     30 days of delivery, in their original packaging, with the receipt. Standard shipping takes 3 to \
                     5 business days; express shipping is available for orders placed before 2 pm. ";
    paragraph.repeat(2048 / paragraph.len() + 1)[..2048].to_owned()
}

fn redaction(c: &mut Criterion) {
    let redactor = Redactor::default();
    let short = "where is my order 90320";
    let prompt = prompt_2kb();
    let with_email = "please contact alice13@example.com about the refund";
    let mut prompt_with_secrets = prompt.clone();
    prompt_with_secrets.replace_range(1000..1050, "call +86 139 5998 2352, card 4111 1111 1111 1111 ");

    let mut group = c.benchmark_group("redact");
    group.bench_function("nothing/short", |b| b.iter(|| black_box(black_box(short))));
    group.bench_function("clean/short", |b| b.iter(|| redactor.redact("user.query", black_box(short))));
    group.bench_function("clean/prompt_2kb", |b| b.iter(|| redactor.redact("input.value", black_box(&prompt))));
    group.bench_function("secret_key/short", |b| b.iter(|| redactor.redact("db.password", black_box(short))));
    group.bench_function("email/short", |b| b.iter(|| redactor.redact("note", black_box(with_email))));
    group.bench_function("secrets/prompt_2kb", |b| {
        b.iter(|| redactor.redact("input.value", black_box(&prompt_with_secrets)))
    });
    group.finish();

    // Each pattern starts a detector's match again and again without completing it (or completes it
    // every time): the shapes that would expose quadratic rescanning.
    let hostile: [(&str, &str); 7] = [
        ("email_near_misses", "a@b a.b@ @c.d "),
        // Catalogue anchors with bodies too short or glued, a Discord-shaped id, a dotted run: every
        // token rule's regex and validator runs and refuses.
        ("token_near_misses", "xoxb-12345678901 ghp_abcdefghijklmnop MTIzNDU2Nzg5MDEyMzQ1Njc4.Gg1234. 1.2.3.4.5 "),
        ("digit_runs", "4111 1111 1111 111 "),
        ("inline_pairs", "password= token=\"x "),
        ("jwt_prefixes", "eyJhbGciOi.eyJ "),
        ("url_logins", "https://u:p@ http://@ "),
        ("real_emails", "bob.smith@example.com "),
    ];
    let mut group = c.benchmark_group("redact_hostile");
    for (name, unit) in hostile {
        for size in [64 * 1024, 1024 * 1024] {
            let text = unit.repeat(size / unit.len() + 1)[..size].to_owned();
            group.throughput(Throughput::Bytes(size as u64));
            group.bench_with_input(BenchmarkId::new(name, size / 1024), &text, |b, text| {
                b.iter(|| redactor.redact("input.value", black_box(text)))
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2))
        .sample_size(30);
    targets = redaction
}
criterion_main!(benches);

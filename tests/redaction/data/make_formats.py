#!/usr/bin/env python3
"""Writes formats.jsonl: for every rule of the token catalogue
(kotaemon-trace/src/policy/redact/catalogue.rs), examples expanded from the rule's `sample` template in
two neutral contexts and one look-alike (the body replaced by a placeholder), plus personal-data and
context rows written here. Seeded: running it again gives the same file.

    python3 tests/redaction/data/make_formats.py
"""
import base64, json, os, random, re, zlib

HERE = os.path.dirname(os.path.abspath(__file__))
CATALOGUE = os.path.join(HERE, "../../../kotaemon-trace/src/policy/redact/catalogue.rs")
B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
CLASSES = {
    "d": "0123456789", "h": "0123456789abcdef", "H": "0123456789ABCDEF", "a": B62,
    "l": "abcdefghijklmnopqrstuvwxyz0123456789", "u": "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
    "A": "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", "w": B62 + "_-", "b": B62 + "+/",
    "3": "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", "B": "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L",
}
rng = random.Random(20261202)


def hole(cls, n):
    while True:
        s = "".join(rng.choice(CLASSES[cls]) for _ in range(n))
        kinds = sum(any(f(c) for c in s) for f in (str.isupper, str.islower, str.isdigit))
        if cls == "d" or n < 5 or (kinds >= 2 and not re.search(r"(.)\1{4}", s)):
            return s


def expand(template):
    def sub(m):
        cls, n = m.group(1), m.group(2)
        if "-" in n:
            lo, hi = map(int, n.split("-"))
            n = rng.randint(lo, hi)
        return hole(cls, int(n))
    return re.sub(r"\{(\w):([\d-]+)\}", sub, template)


def b62(n):
    out = ""
    for _ in range(6):
        out = B62[n % 62] + out
        n //= 62
    return out


rules = re.findall(r'rule!\(\s*"(\w+)",\s*\[(.*?)\],\s*r?"((?:[^"\\]|\\.)*)",\s*(\w+),\s*"((?:[^"\\]|\\.)*)",\s*"((?:[^"\\]|\\.)*)",?\s*\)',
                   open(CATALOGUE).read(), re.S)
rows = []
for name, anchors, pattern, check, source, sample in rules:
    anchors = re.findall(r'"([^"]*)"', anchors)
    grouped = re.search(r"\((?!\?)", pattern) is not None
    for context in ["deploy with {} now", '{{"value": "{}", "n": 1}}']:
        token = expand(sample)
        if check == "GithubCrc":
            token += b62(zlib.crc32(token[4:].encode()))
        if check == "DiscordId":
            ident = "1" + "".join(rng.choice("0123456789") for _ in range(17))
            token = base64.b64encode(ident.encode()).decode().rstrip("=") + token[token.index("."):]
        # A rule with a capture group replaces only the credential inside its context: its longest run.
        secret = max(re.findall(r"[A-Za-z0-9+/:]+", token), key=len) if grouped else token
        rows.append({"value": context.format(token), "label": "secret", "kind": name, "secret": secret,
                     "source": source})
    token = expand(sample)
    at = min(token.find(a) + len(a) for a in anchors if a in token)
    fake = token[:at] + re.sub(r"[A-Za-z0-9]", "x", token[at:])
    rows.append({"value": f"deploy with {fake} now", "label": "benign", "kind": "benign",
                 "source": f"placeholder of {name}"})

# Personal data and context rules: the facts behind each row are in `source`.
pii = [
    ("client 198.51.100.23 logged in", "198.51.100.23", "ip_address", "IPv4 (RFC 791); documentation range RFC 5737"),
    ("peer [2001:db8:4006:812::200e]:443", "2001:db8:4006:812::200e", "ip_address", "IPv6 (RFC 4291); documentation prefix RFC 3849"),
    ("applicant 219-44-5120 approved", "219-44-5120", "us_ssn", "SSA: area 001-899 except 666, group 01-99, serial 0001-9999"),
    ("NINO AB 12 34 56 C", "AB 12 34 56 C", "uk_nino", "HMRC NIM39110: prefix letters and excluded pairs"),
    ("donate 3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy", "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy", "bitcoin_address", "BIP-13 P2SH, Base58Check"),
    ("donate BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4", "BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4", "bitcoin_address", "BIP-173 Bech32 test vector"),
    ("wallet 0x52908400098527886E0F7030069857D2E4169EE7", "0x52908400098527886E0F7030069857D2E4169EE7", "ethereum_address", "EIP-55 test vectors"),
    ("IBAN FR14 2004 1010 0505 0001 3M02 606", "FR14 2004 1010 0505 0001 3M02 606", "iban", "ISO 13616: FR has 27 characters"),
    ("card 5555 5555 5555 4444 exp 10/28", "5555 5555 5555 4444", "credit_card", "Luhn; Mastercard IIN 51-55"),
    ("apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\nstringData:\n  api-token: t0k3n-v4lu3-h3r3x\n", "t0k3n-v4lu3-h3r3x", "key", "kubernetes.io Secret manifests: data and stringData values"),
    ('<add key="ClearTextPassword" value="Pa55w0rd!" />', "Pa55w0rd!", "key", "NuGet.Config packageSourceCredentials"),
    ("curl -u deploy:Tr0ub4dor https://x.example", "deploy:Tr0ub4dor", "credentials", "curl manual: -u/--user user:password"),
    ("Server=db;Database=app;User Id=sa;Password=S3cure!Pass;", "S3cure!Pass", "key", "ADO.NET connection strings"),
    ("DB_PASSWORD='multi word secret value'", "multi word secret value", "key", ".env assignment with quotes"),
    ("https://api.example.com/v1?user=a&api_key=Zx81Lq0Pw2&lang=en", "Zx81Lq0Pw2", "key", "URL query parameter named as a secret"),
]
for value, secret, kind, source in pii:
    rows.append({"value": value, "label": "secret", "kind": kind, "secret": secret, "source": source})
benign = [
    ("SSN 000-12-3456 is invalid by rule", "SSA: area 000 never issued"),
    ("NI TN 12 34 56 A", "HMRC: TN is never allocated"),
    ("wallet 0x52908400098527886E0F7030069857D2E4169Ee7", "EIP-55: wrong case in one letter"),
    ("IBAN FR14 2004 1010 0505 0001 3M02 607", "ISO 13616: mod-97 fails"),
    ("version 10.4.1.2.7 released", "dotted version, not an IPv4 address"),
    ("listening on 127.0.0.1:8080", "loopback says nothing about a person"),
    ("npm config set //registry.npmjs.org/:_authToken=${NPM_TOKEN}", "template reference, not a value"),
    ('password = "%s" % ENV_NAME', "format placeholder"),
    ("api_key: insert_key_here", "documentation placeholder"),
    ("trace 4bf92f3577b34da6a3ce929d0e0e4736 span 00f067aa0ba902b7", "W3C trace context ids"),
    ("object_key=reports/2026/q4/summary.pdf", "a storage path under a key-named field"),
    ("sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "a digest"),
]
for value, source in benign:
    rows.append({"value": value, "label": "benign", "kind": "benign", "source": source})

with open(os.path.join(HERE, "formats.jsonl"), "w") as f:
    for row in rows:
        f.write(json.dumps(row, ensure_ascii=False) + "\n")
print(len(rows), "rows,", len(rules), "rules")

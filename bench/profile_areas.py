"""Groups `perf report --no-children --sort dso,symbol --stdio` lines (on stdin) into areas by
symbol name, and prints the share of the server's CPU time each area takes."""
import re
import sys

AREAS = [
    ("crypto (aws-lc: ECDSA, RSA, AES-GCM, hashes)", r"aws_lc|ecp_nistz256|p256|bn_|sha256|sha512|aes_|gcm_|ec_GFp|ecdsa|RSA_|rsa_|fiat_|beeu|x25519|CRYPTO_|OPENSSL_|BN_|EC_"),
    ("X.509 building and parsing (rcgen, x509-parser, der)", r"rcgen|x509_parser|der_parser|asn1_rs|yasna|pem::|signet_crypto"),
    ("storage (SQLite, barrier)", r"sqlite|rusqlite|signet_storage|pcache|pager|[Bb]tree|[Vv]dbe|wal[A-Z]|walChecksum|\] (?:sqlite|pager|btree|vdbe|wal|pcache|unixRead|unixWrite|unixSync|robust_)"),
    ("JSON (serde_json)", r"serde_json|serde::"),
    ("HTTP (hyper, axum, tower)", r"hyper|axum|tower|http::|httparse|h1::"),
    ("audit", r"signet_audit|audit"),
    ("async runtime and sync (tokio, parking_lot, futures)", r"tokio|parking_lot|futures|crossbeam"),
    ("memory (malloc, free, memcpy)", r"malloc|free|memcpy|memmove|memset|realloc|alloc::|_int_|cfree"),
    ("kernel (syscalls, network, scheduler)", r"\[k\]|kernel|\[kernel"),
]
totals = {name: 0.0 for name, _ in AREAS}
other = 0.0
for line in sys.stdin:
    m = re.match(r"\s*([0-9.]+)%\s+(.*)", line)
    if not m:
        continue
    pct, rest = float(m.group(1)), m.group(2)
    for name, pat in AREAS:
        if re.search(pat, rest, re.I):
            totals[name] += pct
            break
    else:
        other += pct
for name, _ in AREAS:
    print(f"{totals[name]:6.1f}%  {name}")
print(f"{other:6.1f}%  other (signet's own code, std, unresolved)")

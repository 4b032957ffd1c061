//! Bridge SRP handshake CPU on the proxy (bench/srp_bridge.sh runs it in release): per
//! handshake, `srp::server_start` (B = k·v + g^b, S = (A·v^u)^b, the session key) plus sealing
//! the SECRET_BLOCK, then opening it and checking the claim; the verifier derivation the
//! replicator does per password; and, as the baseline measured in the same run, what every
//! proxied sign-in already costs in crypto (a SECRET_HASH and a refresh-token seal).
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use wire::bridge::{open_block, seal_block, SrpBlock};
use wire::seal::Keyring;
use wire::srp;

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn row(name: &str, mut v: Vec<f64>) {
    let p50 = pct(&mut v, 0.50);
    let p99 = pct(&mut v, 0.99);
    println!("| {name} | {} | {p50:.3} | {p99:.3} |", v.len());
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let keys = Keyring::single("b1", [7; 32]);
    let salt = srp::new_salt();
    let v = srp::verifier("AbCdEf123", "alice", "Correct-Horse-9!", &salt);
    // A client's A (any valid group element).
    let a_pub = srp::int_hex(&srp::g_pow(&[0x5e; 32]));

    let mut handshake = Vec::with_capacity(n);
    let mut verifier = Vec::with_capacity(n);
    let mut baseline = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        let st = srp::server_start(&v, &a_pub).unwrap();
        let block = SrpBlock {
            id: i.to_string(),
            key: st.key.iter().map(|b| format!("{b:02x}")).collect(),
            user_id: "alice".into(),
            pool_name: "AbCdEf123".into(),
            username: "alice".into(),
            decoy: false,
            exp: i64::MAX,
        };
        let sealed = seal_block(&keys, &block);
        let opened = open_block(&keys, &sealed, 0).unwrap();
        let ok = srp::check_claim(
            &st.key,
            &opened.pool_name,
            &opened.user_id,
            &sealed,
            "Thu Nov 26 19:29:11 UTC 2026",
            "AAAA",
        );
        assert!(!ok);
        handshake.push(t.elapsed().as_secs_f64() * 1e3);

        let t = Instant::now();
        std::hint::black_box(srp::verifier(
            "AbCdEf123",
            "alice",
            "Correct-Horse-9!",
            &salt,
        ));
        verifier.push(t.elapsed().as_secs_f64() * 1e3);

        let t = Instant::now();
        std::hint::black_box(wire::secret_hash("client-secret", "alice", "client-id"));
        std::hint::black_box(wire::prepare::seal_refresh_token(
            &keys,
            "alice",
            "refresh-token-value",
        ));
        baseline.push(t.elapsed().as_secs_f64() * 1e3);
    }
    println!("| what (CPU, one thread) | n | p50 ms | p99 ms |");
    println!("|---|---|---|---|");
    row(
        "baseline: SECRET_HASH + refresh-token seal (every sign-in today)",
        baseline,
    );
    row(
        "bridge SRP handshake (server_start + SECRET_BLOCK seal/open + claim check)",
        handshake,
    );
    row("replicator: verifier derivation per password", verifier);
}

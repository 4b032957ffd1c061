//! Replays the cargo-fuzz corpora (`fuzz/corpus/<target>`, seeds and every input a fuzzing run
//! found a crash with) through the same code as the fuzz targets, as an ordinary test: what
//! once crashed stays a regression test, without cargo-fuzz in CI.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::path::PathBuf;

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut out: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(|e| std::fs::read(e.ok()?.path()).ok())
                .collect()
        })
        .unwrap_or_default();
    assert!(!out.is_empty(), "no corpus at {}", dir.display());
    out.sort();
    out
}

#[test]
fn prepare_corpus() {
    let clients = wire::ClientMapping::from_json(
        r#"{"clients":[{"public_client_id":"pub","client_id":"reg","client_secret":"s"}]}"#,
    )
    .unwrap();
    let keys = wire::seal::Keyring::single("k1", [7; 32]);
    for data in corpus("prepare") {
        let Some((&pick, rest)) = data.split_first() else {
            continue;
        };
        // Every action, whatever the first byte picked when fuzzing.
        for spec in wire::CATALOG {
            let Ok(mut body) = serde_json::from_slice::<serde_json::Value>(rest) else {
                continue;
            };
            let ip = (pick & 0x80 != 0).then_some("203.0.113.9");
            if let Err(e) = wire::prepare(spec, &mut body, &clients, ip, &keys) {
                assert!(e.kind.as_str().ends_with("Exception"), "{}", e.kind);
            }
        }
    }
}

#[test]
fn refresh_token_corpus() {
    let keys = wire::seal::Keyring::single("k1", [7; 32]);
    for data in corpus("refresh_token") {
        let text = String::from_utf8_lossy(&data);
        let _ = wire::prepare::open_refresh_token(&keys, &text);
        let _ = wire::prepare::open_refresh_token(&keys, &format!("crr1.{text}"));
    }
}

#[test]
fn secrets_corpus() {
    for data in corpus("secrets") {
        let text = String::from_utf8_lossy(&data);
        let _ = wire::seal::Keyring::from_json(&text);
        let _ = wire::ClientMapping::from_json(&text);
    }
}

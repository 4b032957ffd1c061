//! wire::prepare over arbitrary bodies, for every catalog action (the first byte picks it),
//! with and without a caller IP. Never panics; a refusal is always a Cognito error kind.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    let spec = &wire::CATALOG[pick as usize % wire::CATALOG.len()];
    let Ok(mut body) = serde_json::from_slice::<serde_json::Value>(rest) else { return };
    let clients = wire::ClientMapping::from_json(r#"{"clients":[{"public_client_id":"pub","client_id":"reg","client_secret":"s"}]}"#).unwrap();
    let keys = wire::seal::Keyring::single("k1", [7; 32]);
    let ip = (pick & 0x80 != 0).then_some("203.0.113.9");
    if let Err(e) = wire::prepare(spec, &mut body, &clients, ip, &keys) {
        assert!(e.kind.ends_with("Exception"), "{}", e.kind);
    }
});

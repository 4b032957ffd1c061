//! Opening a sealed refresh token the client sends back: arbitrary text, and arbitrary text
//! behind the relay's prefix.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let keys = wire::seal::Keyring::single("k1", [7; 32]);
    let _ = wire::prepare::open_refresh_token(&keys, text);
    let _ = wire::prepare::open_refresh_token(&keys, &format!("crr1.{text}"));
});

//! The secrets the proxy parses: the keyring and the client mapping.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = wire::seal::Keyring::from_json(text);
    let _ = wire::ClientMapping::from_json(text);
});

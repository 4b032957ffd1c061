//! A queued replication body: Header::peek and Envelope::open on arbitrary text.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let keys = wire::seal::Keyring::single("k1", [7; 32]);
    let _ = replication::Header::peek(text);
    let _ = replication::Envelope::open(text, &keys);
});

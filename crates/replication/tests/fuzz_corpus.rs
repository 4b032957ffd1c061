//! Replays `fuzz/corpus/event_open` (seeds and any input a fuzzing run crashed on) through
//! Header::peek and Envelope::open, as the fuzz target does, as an ordinary test.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

#[test]
fn event_open_corpus() {
    let dir =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/event_open");
    let keys = wire::seal::Keyring::single("k1", [7; 32]);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        let text = String::from_utf8_lossy(&data);
        let _ = replication::Header::peek(&text);
        let _ = replication::Envelope::open(&text, &keys);
        n += 1;
    }
    assert!(n > 0);
}

//! Signed notes, checkpoints and verifier keys (C2SP) never panic when
//! parsed, and a parsed note or checkpoint prints back to the same text.
#![no_main]

use kurir_proto::checkpoint::{Checkpoint, Note, NoteVerifier, SignedCheckpoint};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(note) = Note::parse(data) {
        assert_eq!(note.to_string().as_bytes(), data);
        let _ = SignedCheckpoint::from_note(note);
    }
    let _ = SignedCheckpoint::parse(data);
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(c) = Checkpoint::parse(text) {
            assert_eq!(c.to_string(), text);
        }
        let _ = NoteVerifier::parse(text);
    }
});

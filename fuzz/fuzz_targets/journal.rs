//! `Journal::from_text` on any text: it never panics; an error is a
//! scenario error naming a line within the text; events it reads are
//! written by `events_to_text` as text it reads back equal, and render as a
//! timeline.

#![no_main]

use dbfault::{ErrorKind, Journal, events_to_text, render_timeline};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Journal::from_text(text) {
        Ok(events) => {
            let written = events_to_text(&events);
            let back = Journal::from_text(&written)
                .unwrap_or_else(|e| panic!("events_to_text wrote a journal from_text refuses: {e}\n{written}"));
            assert_eq!(back, events, "the events changed through\n{written}");
            // The timeline renders without panicking, whatever the events.
            let _ = render_timeline(&events);
        }
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::Journal, "{e}");
            let lines = text.matches('\n').count() + 1;
            if let Some(line) = e.line() {
                assert!((1..=lines).contains(&line), "line {line} of {lines}: {e}");
            }
        }
    }
});

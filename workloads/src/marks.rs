//! Marks around a timed loop: when a request asks for them
//! ([`RunRequest::marks`](crate::protocol::RunRequest::marks)), the loop
//! writes a [`Response::Mark`] line on the agent's channel just before its
//! clock starts and just after it stops. The harness notes when each line
//! arrives by its own clock, and so times the loop without trusting the
//! environment's (gVisor's clock can run slow; see the harness's runsc
//! clock check).
//!
//! The lines go to a sink the agent binary installs for its serving thread
//! (a duplicate of the channel's descriptor), written whole and unbuffered
//! while the request runs: the agent writes nothing else then, and flushes
//! every response before it reads the next request.

use std::cell::RefCell;
use std::io::Write;

use crate::protocol::{to_line, LoopPhase, Response};

thread_local! {
    static SINK: RefCell<Option<Box<dyn Write>>> = const { RefCell::new(None) };
}

/// Sends this thread's marks to `sink` from now on.
pub fn install(sink: Box<dyn Write>) {
    SINK.with(|s| *s.borrow_mut() = Some(sink));
}

/// Removes this thread's sink, returning it.
pub fn uninstall() -> Option<Box<dyn Write>> {
    SINK.with(|s| s.borrow_mut().take())
}

/// Writes one mark if `wanted` and a sink is installed. A failed write is
/// not the loop's to handle: the response after it fails the same way.
pub fn mark(wanted: bool, phase: LoopPhase) {
    if !wanted {
        return;
    }
    SINK.with(|s| {
        if let Some(sink) = s.borrow_mut().as_mut() {
            let _ = sink.write_all(to_line(&Response::Mark { phase }).as_bytes()).and_then(|()| sink.flush());
        }
    });
}

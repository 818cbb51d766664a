//! The whole per-packet path of a worker over arbitrary frames (see `haports::fuzzing`).
#![no_main]

use std::sync::OnceLock;

use haports::lb::forwarding::Forwarding;
use libfuzzer_sys::fuzz_target;

static STATES: OnceLock<Vec<Forwarding>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    haports::fuzzing::run(STATES.get_or_init(haports::fuzzing::states), data);
});

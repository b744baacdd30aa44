//! The fault proxy's PostgreSQL message readers, on arbitrary bytes from
//! either side: they answer or refuse, and never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    dbfault::fuzz_wire(data);
});

//! `.npy` arrays as imported vectors.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = encore::features::import::parse_npy(data);
});

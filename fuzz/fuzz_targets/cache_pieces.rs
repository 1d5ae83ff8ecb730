#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cloudmount::fuzz_targets::cache_pieces(data));

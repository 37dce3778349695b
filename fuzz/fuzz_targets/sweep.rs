#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| liqscan_fuzz::sweep(data));

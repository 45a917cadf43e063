#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = distill_fuzz::dataset_jsonl(data);
});

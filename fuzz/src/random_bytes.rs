//! The fuzz bodies driven by plain random bytes (no libFuzzer, no nightly): the fallback when
//! `cargo fuzz` cannot run. `random_bytes TARGET SECONDS [SEED]`; prints executions.

use rand::{Rng, SeedableRng, rngs::StdRng};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let name = args.get(1).expect("usage: random_bytes TARGET SECONDS [SEED]");
    let secs: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10);
    let seed: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1);
    let (_, body) = liqscan_fuzz::TARGETS.iter().find(|(n, _)| n == name).expect("unknown target");
    let mut rng = StdRng::seed_from_u64(seed);
    let end = Instant::now() + Duration::from_secs(secs);
    let mut runs = 0u64;
    let mut buf = Vec::new();
    while Instant::now() < end {
        for _ in 0..256 {
            let len = rng.gen_range(0..512);
            buf.clear();
            buf.extend((0..len).map(|_| rng.r#gen::<u8>()));
            body(&buf);
            runs += 1;
        }
    }
    println!("{name}: {runs} executions in {secs} s");
}

//! criterion bench of the `spawn` metric family in every available environment
//! (see benches/common/mod.rs for how environments are driven).

mod common;

use criterion::{criterion_group, criterion_main, Criterion};
use isobench_workloads::catalog::Family;

fn spawn(c: &mut Criterion) {
    common::bench_family(c, Family::Spawn);
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = spawn
}
criterion_main!(benches);

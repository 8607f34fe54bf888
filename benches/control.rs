//! criterion bench of the `control` metric family in every available environment
//! (see benches/common/mod.rs for how environments are driven).

mod common;

use criterion::{criterion_group, criterion_main, Criterion};
use isobench_workloads::catalog::Family;

fn control(c: &mut Criterion) {
    common::bench_family(c, Family::Control);
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = control
}
criterion_main!(benches);

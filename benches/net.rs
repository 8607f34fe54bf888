//! criterion bench of the `net` metric family in every available environment
//! (see benches/common/mod.rs for how environments are driven).

mod common;

use criterion::{criterion_group, criterion_main, Criterion};
use isobench_workloads::catalog::Family;

fn net(c: &mut Criterion) {
    common::bench_family(c, Family::Net);
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = net
}
criterion_main!(benches);

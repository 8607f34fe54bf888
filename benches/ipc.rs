//! criterion bench of the `ipc` metric family in every available environment
//! (see benches/common/mod.rs for how environments are driven).

mod common;

use criterion::{criterion_group, criterion_main, Criterion};
use isobench_workloads::catalog::Family;

fn ipc(c: &mut Criterion) {
    common::bench_family(c, Family::Ipc);
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = ipc
}
criterion_main!(benches);

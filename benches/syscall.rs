//! criterion bench of the `syscall` metric family in every available environment
//! (see benches/common/mod.rs for how environments are driven).

mod common;

use criterion::{criterion_group, criterion_main, Criterion};
use isobench_workloads::catalog::Family;

fn syscall(c: &mut Criterion) {
    common::bench_family(c, Family::Syscall);
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = syscall
}
criterion_main!(benches);

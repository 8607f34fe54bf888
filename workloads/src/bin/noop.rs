//! `noop`: the static binary that spawn metrics exec. It does nothing and
//! exits 0, so a fork+exec+wait measures the kernel's process life cycle and
//! the dynamic loader is not part of it (the binary is statically linked,
//! as lmbench's lat_proc uses a static "hello").

fn main() {}

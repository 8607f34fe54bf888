//! What the fs.* metrics leave behind, for the storage tests of every
//! environment (harness/tests/storage.rs, harness/tests/vm_storage.rs) to
//! check the bytes each metric moved against the same table.

use isobench_workloads::metrics::fs::{FSYNC_FILE_BYTES, PAGE, RAND_FILE_BYTES, SEQ_BLOCK, SEQ_FILE_BYTES, SMALL_FILE_BYTES};

/// The file each metric leaves for the read-back and what a timed
/// operation moves, in bytes.
pub fn sizes(name: &str) -> (u64, u64) {
    match name {
        "fs.seq_write_bw" | "fs.seq_write_buffered_bw" | "fs.seq_read_bw" | "fs.seq_read_buffered_bw" => (SEQ_FILE_BYTES, SEQ_BLOCK as u64),
        "fs.rand_read" | "fs.rand_write" => (RAND_FILE_BYTES, PAGE as u64),
        "fs.fsync" => (FSYNC_FILE_BYTES, PAGE as u64),
        "fs.create_unlink" => (0, PAGE as u64),
        _ => (SMALL_FILE_BYTES, 0),
    }
}

//! File-system metrics (family `fs`): what file I/O costs in the data
//! directory the harness names (`RunRequest::data_dir`), whichever storage
//! path holds it (a host directory, a container's volume or writable root,
//! a guest's disk or shared directory).
//!
//! Method: fio's synchronous engine at queue depth 1 (`--ioengine=psync
//! --iodepth=1`): sequential 1 MiB and random 4 KiB pread/pwrite, with
//! O_DIRECT (`--direct=1`) for the direct metrics and through the page cache
//! for the buffered ones, and 4 KiB writes each followed by fdatasync
//! (`--fdatasync=1`); the metadata metrics follow lmbench's lat_fs
//! (create + delete) and lat_syscall stat/open on a real file. Files are
//! laid out before the clock starts; every environment gets the same file
//! sizes and the same random offsets (a fixed seed).
//!
//! Each metric works in a directory of its own under `data_dir`, removed
//! with everything in it when the metric ends, so the agent writes nowhere
//! else. Every written 4 KiB page carries a stamp (which page, which pass)
//! and a fixed filler; after the loop the agent reads the file back through
//! a fresh descriptor (O_DIRECT where the metric used it) and fails the
//! metric unless every byte is what it wrote ([`IoCheck`]); the read
//! metrics also check each page's stamp as they read. A file system that
//! refuses O_DIRECT at open (EINVAL: ramfs; tmpfs before Linux 6.6) makes
//! the direct metrics answer "not supported on <fs>: O_DIRECT refused
//! (EINVAL)" before any file is laid out, while the buffered ones run.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::catalog::MetricSpec;
use crate::protocol::{IoCheck, RunRequest, RunResult};

use super::{time_loop, MetricError};

/// One page of a test file: the unit of stamps, of random I/O and of the
/// fsync metric's writes (4 KiB, fio's `--bs=4k`).
pub const PAGE: usize = 4096;
/// One sequential operation's block (fio's `--bs=1M`).
pub const SEQ_BLOCK: usize = 1 << 20;
/// The sequential metrics' file: 32 blocks, large enough that a pass is
/// not one burst into a device's write cache on a small guest disk, small
/// enough to lay out under TCG in seconds and to fit the container's 64 MiB /tmp.
pub const SEQ_FILE_BYTES: u64 = 32 << 20;
/// The random metrics' file (fio's `--size=32M`): 8192 pages to choose from.
pub const RAND_FILE_BYTES: u64 = 32 << 20;
/// The fsync metric's file: 256 pages written in turn, then again.
pub const FSYNC_FILE_BYTES: u64 = 1 << 20;
/// The stat and open_close metrics' file, and what create_unlink writes.
pub const SMALL_FILE_BYTES: u64 = PAGE as u64;
/// fs.seq_write_buffered_bw syncs after this many blocks (fio's
/// `--fdatasync=16`): at most 16 MiB dirty, so the figure includes reaching
/// the disk and not only copying into the page cache.
pub const BUFFERED_SYNC_EVERY: u64 = 16;
/// Alignment of O_DIRECT buffers and offsets: 4 KiB serves devices with
/// 512-byte and 4 KiB logical blocks alike.
const DIRECT_ALIGN: usize = 4096;
/// Free space kept beyond a metric's files, for the directory and the file
/// system's own metadata.
const SPACE_MARGIN_BYTES: u64 = 1 << 20;
/// The seed of the random offsets, the same in every environment.
const RAND_SEED: u64 = 0x9E37_79B9_7F4A_7C15;

fn io_err(metric: &'static str, context: &'static str, source: io::Error) -> MetricError {
    MetricError::Io { metric, context, source }
}

/// A byte buffer whose start is aligned for O_DIRECT, made from a plain
/// `Vec` with room to slide to the alignment (no allocator calls of our own).
struct Aligned {
    bytes: Vec<u8>,
    start: usize,
    len: usize,
}

impl Aligned {
    fn new(len: usize) -> Aligned {
        let bytes = vec![0u8; len + DIRECT_ALIGN];
        let start = bytes.as_ptr().align_offset(DIRECT_ALIGN);
        Aligned { bytes, start, len }
    }

    fn get(&self) -> &[u8] {
        &self.bytes[self.start..self.start + self.len]
    }

    fn get_mut(&mut self) -> &mut [u8] {
        &mut self.bytes[self.start..self.start + self.len]
    }
}

/// The stamp of page `page` written in pass `pass`: the first 8 bytes of
/// the page, little-endian.
fn stamp_of(page: u64, pass: u32) -> u64 {
    (u64::from(pass) << 32) | (page & 0xFFFF_FFFF)
}

/// Fills `buf` (whole pages) with the filler: bytes 8.. of every page are
/// the same function of their offset in the page, never zero runs a file
/// system could elide.
fn fill(buf: &mut [u8]) {
    for page in buf.chunks_mut(PAGE) {
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        for word in page.chunks_mut(8).skip(1) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            word.copy_from_slice(&x.to_le_bytes()[..word.len()]);
        }
    }
}

/// Writes the stamps of the pages of `buf` (whole pages), the first being
/// page `first_page`, pass `pass`.
fn stamp(buf: &mut [u8], first_page: u64, pass: u32) {
    for (i, page) in buf.chunks_mut(PAGE).enumerate() {
        page[..8].copy_from_slice(&stamp_of(first_page + i as u64, pass).to_le_bytes());
    }
}

/// The stamp read from the page at the start of `page`.
fn stamp_in(page: &[u8]) -> u64 {
    u64::from_le_bytes(page[..8].try_into().expect("a page has 8 bytes"))
}

/// Folds `bytes` into a 64-bit checksum, eight bytes at a time (FNV-1a's
/// constants over words: fast enough for 64 MiB under TCG).
fn checksum(mut h: u64, bytes: &[u8]) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01B3;
    for word in bytes.chunks(8) {
        let mut w = [0u8; 8];
        w[..word.len()].copy_from_slice(word);
        h = (h ^ u64::from_le_bytes(w)).wrapping_mul(PRIME);
    }
    h
}

/// FNV-1a's offset basis, the checksum of nothing.
const CHECKSUM_START: u64 = 0xCBF2_9CE4_8422_2325;

/// The pass of the last write to unit `unit` when `done` writes went in
/// turn over `units` units, the first write being pass `first_pass`;
/// `None` when no write reached it.
fn cyclic_pass(unit: u64, done: u64, units: u64, first_pass: u32) -> Option<u32> {
    let full = done / units;
    let pass = match (unit < done % units, full) {
        (true, f) => f,
        (false, 0) => return None,
        (false, f) => f - 1,
    };
    Some(first_pass + pass as u32)
}

/// A metric's own directory under the data directory; removed with its
/// files on drop (also when the metric fails half-way).
struct WorkDir {
    path: PathBuf,
    /// Its file system by name (statfs(2)).
    fs: String,
}

impl WorkDir {
    /// `<data_dir>/isobench-<metric>`, made fresh, after checking that the
    /// file system has `need` bytes free (plus a margin). Errors: no data
    /// directory, one that is not a directory, too little space (naming
    /// the directory and both figures).
    fn create(spec: &'static MetricSpec, req: &RunRequest, need: u64) -> Result<WorkDir, MetricError> {
        let failed = |message: String| MetricError::Failed { metric: spec.name, message };
        let data = req.data_dir.as_deref().ok_or_else(|| failed("needs a data directory (data_dir) to make its files in".into()))?;
        let data = Path::new(data);
        if !data.is_dir() {
            return Err(failed(format!("data directory {} is not a directory", data.display())));
        }
        let want = need + SPACE_MARGIN_BYTES;
        let st = nix::sys::statvfs::statvfs(data).map_err(|e| io_err(spec.name, "statvfs of the data directory", e.into()))?;
        let free = st.blocks_available() as u64 * st.fragment_size() as u64;
        // A file system that counts no blocks at all (ramfs) has no size
        // to check against; ENOSPC during the loop still says so.
        if st.blocks() > 0 && free < want {
            return Err(no_space(spec, data, want, Some(free)));
        }
        let path = data.join(format!("isobench-{}", spec.name));
        if path.exists() {
            std::fs::remove_dir_all(&path).map_err(|e| io_err(spec.name, "remove an earlier work directory", e))?;
        }
        std::fs::create_dir(&path).map_err(|e| io_err(spec.name, "create the work directory", e))?;
        let fs = super::spawn::fs_name(&path);
        Ok(WorkDir { path, fs })
    }

    fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// The [`IoCheck`] skeleton for this directory.
    fn check(&self, direct: bool) -> IoCheck {
        IoCheck { dir: self.path.display().to_string(), fs: self.fs.clone(), direct, ..IoCheck::default() }
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The one line for a data directory without room: which directory, what
/// the metric needs, what is free.
fn no_space(spec: &'static MetricSpec, dir: &Path, want: u64, free: Option<u64>) -> MetricError {
    let mib = |b: u64| b.div_ceil(1 << 20);
    let free = free.map_or("it ran out of space".to_string(), |f| format!("{} MiB free", f >> 20));
    MetricError::Failed { metric: spec.name, message: format!("data directory {}: needs {} MiB free, {free}", dir.display(), mib(want)) }
}

/// An I/O error of the loop, turned into [`no_space`] when the file system
/// filled up under it (ENOSPC, EDQUOT).
fn op_err(spec: &'static MetricSpec, dir: &WorkDir, need: u64, context: &'static str, e: io::Error) -> MetricError {
    match e.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::EDQUOT) => no_space(spec, dir.path.parent().unwrap_or(&dir.path), need + SPACE_MARGIN_BYTES, None),
        _ => io_err(spec.name, context, e),
    }
}

/// Opens `path` for reading and writing, created when `create`, with
/// O_DIRECT when `direct`. A file system that refuses O_DIRECT (EINVAL at
/// open, as ramfs does) is [`MetricError::NotSupported`].
fn open(spec: &'static MetricSpec, dir: &WorkDir, path: &Path, direct: bool, create: bool) -> Result<File, MetricError> {
    let mut o = OpenOptions::new();
    o.read(true).write(true).create(create).truncate(create);
    if direct {
        o.custom_flags(libc::O_DIRECT);
    }
    o.open(path).map_err(|e| match e.raw_os_error() {
        Some(libc::EINVAL) if direct => MetricError::NotSupported { metric: spec.name, reason: format!("on {}: O_DIRECT refused (EINVAL)", dir.fs) },
        _ => io_err(spec.name, "open the test file", e),
    })
}

/// Writes `bytes` of stamped pages (pass 0) to a new file at `path`
/// through the page cache, syncs it and drops its cached pages: the
/// read metrics' and the overwriting metrics' file, before the clock.
fn lay_out(spec: &'static MetricSpec, dir: &WorkDir, path: &Path, bytes: u64) -> Result<(), MetricError> {
    let f = open(spec, dir, path, false, true)?;
    let mut block = vec![0u8; SEQ_BLOCK.min(bytes as usize)];
    fill(&mut block);
    let mut off = 0u64;
    while off < bytes {
        let n = block.len().min((bytes - off) as usize);
        stamp(&mut block[..n], off / PAGE as u64, 0);
        f.write_all_at(&block[..n], off).map_err(|e| op_err(spec, dir, bytes, "lay out the test file", e))?;
        off += n as u64;
    }
    f.sync_data().map_err(|e| op_err(spec, dir, bytes, "fdatasync the laid-out file", e))?;
    drop_cache(&f);
    Ok(())
}

/// Asks the kernel to drop `f`'s clean cached pages (posix_fadvise
/// DONTNEED); advice only, so a refusal is ignored.
fn drop_cache(f: &File) {
    let _ = nix::fcntl::posix_fadvise(f.as_raw_fd(), 0, 0, nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED);
}

/// Reads the file at `path` back through a fresh descriptor (O_DIRECT when
/// `direct`, else after dropping its cached pages) and checks that it is
/// `bytes` long and that page `p` holds the stamp `expected(p)` and the
/// filler. Returns the check with the file's size, the bytes verified and
/// their checksum.
fn read_back(
    spec: &'static MetricSpec,
    dir: &WorkDir,
    path: &Path,
    direct: bool,
    bytes: u64,
    expected: impl Fn(u64) -> Option<u32>,
    mut check: IoCheck,
) -> Result<IoCheck, MetricError> {
    let f = open(spec, dir, path, direct, false)?;
    let size = f.metadata().map_err(|e| io_err(spec.name, "fstat the test file", e))?.len();
    if size != bytes {
        return Err(MetricError::Failed {
            metric: spec.name,
            message: format!("the test file is {size} bytes after the loop, not the {bytes} written"),
        });
    }
    if !direct {
        drop_cache(&f);
    }
    let mut filler = vec![0u8; PAGE];
    fill(&mut filler);
    let mut buf = Aligned::new(SEQ_BLOCK);
    let mut sum = CHECKSUM_START;
    let mut off = 0u64;
    while off < bytes {
        let n = SEQ_BLOCK.min((bytes - off) as usize);
        let got = &mut buf.get_mut()[..n];
        f.read_exact_at(got, off).map_err(|e| io_err(spec.name, "read the test file back", e))?;
        for (i, page) in got.chunks(PAGE).enumerate() {
            let p = off / PAGE as u64 + i as u64;
            let want = expected(p).map(|pass| stamp_of(p, pass));
            if want != Some(stamp_in(page)) || page[8..] != filler[8..page.len()] {
                return Err(MetricError::Failed {
                    metric: spec.name,
                    message: format!("read back page {p}: stamp {:#x}, expected {want:#x?} (or its filler differs)", stamp_in(page)),
                });
            }
        }
        sum = checksum(sum, got);
        off += n as u64;
    }
    check.file_bytes = size;
    check.verified_bytes = bytes;
    check.checksum = sum;
    Ok(check)
}

/// Attaches `check` to a result.
fn with(check: IoCheck) -> impl FnOnce(RunResult) -> RunResult {
    move |mut r| {
        r.io = Some(check);
        r
    }
}

/// fs.seq_write_bw (`direct`) and fs.seq_write_buffered_bw: 1 MiB writes in
/// turn over a 32 MiB file laid out before the clock, pass after pass; the
/// buffered one syncs every [`BUFFERED_SYNC_EVERY`] blocks.
///
/// Every timed write overwrites blocks that are allocated and written (as
/// fio's `--overwrite=1` job, which lays its file out first), so the
/// figure is one interval whatever the iteration count: a file made empty
/// would make the first pass's writes extend it (block allocation and an
/// i_size update each, on ext4 a journalled orphan-list entry per O_DIRECT
/// write), and a short run (`--quick`: 16 blocks, half a pass) would time
/// only those.
pub fn seq_write(spec: &'static MetricSpec, req: &RunRequest, direct: bool) -> Result<RunResult, MetricError> {
    let dir = WorkDir::create(spec, req, SEQ_FILE_BYTES)?;
    let path = dir.file("seq");
    // Refuse O_DIRECT before laying 32 MiB out for nothing.
    drop(open(spec, &dir, &path, direct, true)?);
    lay_out(spec, &dir, &path, SEQ_FILE_BYTES)?;
    let f = open(spec, &dir, &path, direct, false)?;
    let blocks = SEQ_FILE_BYTES / SEQ_BLOCK as u64;
    let pages_per_block = (SEQ_BLOCK / PAGE) as u64;
    let mut buf = Aligned::new(SEQ_BLOCK);
    fill(buf.get_mut());
    let mut k = 0u64;
    let r = time_loop::<MetricError>(spec, req, || {
        let block = k % blocks;
        // Pass 0 is the lay-out's; the loop's passes count from 1.
        stamp(buf.get_mut(), block * pages_per_block, (k / blocks) as u32 + 1);
        f.write_all_at(buf.get(), block * SEQ_BLOCK as u64).map_err(|e| op_err(spec, &dir, SEQ_FILE_BYTES, "pwrite", e))?;
        k += 1;
        if !direct && k % BUFFERED_SYNC_EVERY == 0 {
            f.sync_data().map_err(|e| op_err(spec, &dir, SEQ_FILE_BYTES, "fdatasync", e))?;
        }
        Ok(())
    })?;
    f.sync_data().map_err(|e| op_err(spec, &dir, SEQ_FILE_BYTES, "fdatasync", e))?;
    drop(f);
    let check = IoCheck { moved_bytes: r.iterations * SEQ_BLOCK as u64, ..dir.check(direct) };
    let check = read_back(spec, &dir, &path, direct, SEQ_FILE_BYTES, |p| Some(cyclic_pass(p / pages_per_block, k, blocks, 1).unwrap_or(0)), check)?;
    Ok(with(check)(r))
}

/// fs.seq_read_bw (`direct`) and fs.seq_read_buffered_bw: 1 MiB reads in
/// turn over a 32 MiB file laid out before the clock; the buffered one
/// drops the file's cached pages at the start of each pass.
pub fn seq_read(spec: &'static MetricSpec, req: &RunRequest, direct: bool) -> Result<RunResult, MetricError> {
    let dir = WorkDir::create(spec, req, SEQ_FILE_BYTES)?;
    let path = dir.file("seq");
    // Refuse O_DIRECT before laying 32 MiB out for nothing.
    drop(open(spec, &dir, &path, direct, true)?);
    lay_out(spec, &dir, &path, SEQ_FILE_BYTES)?;
    let f = open(spec, &dir, &path, direct, false)?;
    let blocks = SEQ_FILE_BYTES / SEQ_BLOCK as u64;
    let mut buf = Aligned::new(SEQ_BLOCK);
    let mut k = 0u64;
    let r = time_loop::<MetricError>(spec, req, || {
        let block = k % blocks;
        if !direct && block == 0 {
            drop_cache(&f);
        }
        f.read_exact_at(buf.get_mut(), block * SEQ_BLOCK as u64).map_err(|e| io_err(spec.name, "pread", e))?;
        k += 1;
        Ok(())
    })?;
    drop(f);
    let check = IoCheck { moved_bytes: r.iterations * SEQ_BLOCK as u64, ..dir.check(direct) };
    let check = read_back(spec, &dir, &path, direct, SEQ_FILE_BYTES, |_| Some(0), check)?;
    Ok(with(check)(r))
}

/// The next random page of `pages` (xorshift64 from [`RAND_SEED`]).
fn next_page(x: &mut u64, pages: u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x % pages
}

/// fs.rand_read: 4 KiB O_DIRECT reads at random pages of a 32 MiB file.
pub fn rand_read(spec: &'static MetricSpec, req: &RunRequest) -> Result<RunResult, MetricError> {
    let dir = WorkDir::create(spec, req, RAND_FILE_BYTES)?;
    let path = dir.file("rand");
    drop(open(spec, &dir, &path, true, true)?);
    lay_out(spec, &dir, &path, RAND_FILE_BYTES)?;
    let f = open(spec, &dir, &path, true, false)?;
    let pages = RAND_FILE_BYTES / PAGE as u64;
    let mut buf = Aligned::new(PAGE);
    let mut x = RAND_SEED;
    let r = time_loop::<MetricError>(spec, req, || {
        let p = next_page(&mut x, pages);
        f.read_exact_at(buf.get_mut(), p * PAGE as u64).map_err(|e| io_err(spec.name, "pread", e)).map(drop)
    })?;
    drop(f);
    let check = IoCheck { moved_bytes: r.iterations * PAGE as u64, ..dir.check(true) };
    let check = read_back(spec, &dir, &path, true, RAND_FILE_BYTES, |_| Some(0), check)?;
    Ok(with(check)(r))
}

/// fs.rand_write: 4 KiB O_DIRECT writes at random pages of a 32 MiB file
/// laid out before the clock; each write's pass is its number, remembered
/// per page (untimed bookkeeping: one store) for the read-back.
pub fn rand_write(spec: &'static MetricSpec, req: &RunRequest) -> Result<RunResult, MetricError> {
    let dir = WorkDir::create(spec, req, RAND_FILE_BYTES)?;
    let path = dir.file("rand");
    drop(open(spec, &dir, &path, true, true)?);
    lay_out(spec, &dir, &path, RAND_FILE_BYTES)?;
    let f = open(spec, &dir, &path, true, false)?;
    let pages = RAND_FILE_BYTES / PAGE as u64;
    let mut last = vec![0u32; pages as usize];
    let mut buf = Aligned::new(PAGE);
    fill(buf.get_mut());
    let mut x = RAND_SEED;
    let mut k = 0u32;
    let r = time_loop::<MetricError>(spec, req, || {
        let p = next_page(&mut x, pages);
        k = k.wrapping_add(1);
        stamp(buf.get_mut(), p, k);
        f.write_all_at(buf.get(), p * PAGE as u64).map_err(|e| op_err(spec, &dir, RAND_FILE_BYTES, "pwrite", e))?;
        last[p as usize] = k;
        Ok(())
    })?;
    f.sync_data().map_err(|e| op_err(spec, &dir, RAND_FILE_BYTES, "fdatasync", e))?;
    drop(f);
    let check = IoCheck { moved_bytes: r.iterations * PAGE as u64, ..dir.check(true) };
    let check = read_back(spec, &dir, &path, true, RAND_FILE_BYTES, |p| Some(last[p as usize]), check)?;
    Ok(with(check)(r))
}

/// fs.fsync: a 4 KiB write through the page cache at the next page of a
/// 1 MiB file laid out before the clock, then fdatasync.
pub fn fsync(spec: &'static MetricSpec, req: &RunRequest) -> Result<RunResult, MetricError> {
    let dir = WorkDir::create(spec, req, FSYNC_FILE_BYTES)?;
    let path = dir.file("fsync");
    lay_out(spec, &dir, &path, FSYNC_FILE_BYTES)?;
    let f = open(spec, &dir, &path, false, false)?;
    let pages = FSYNC_FILE_BYTES / PAGE as u64;
    let mut buf = vec![0u8; PAGE];
    fill(&mut buf);
    let mut k = 0u64;
    let r = time_loop::<MetricError>(spec, req, || {
        let p = k % pages;
        stamp(&mut buf, p, (k / pages) as u32 + 1);
        f.write_all_at(&buf, p * PAGE as u64).map_err(|e| op_err(spec, &dir, FSYNC_FILE_BYTES, "pwrite", e))?;
        f.sync_data().map_err(|e| op_err(spec, &dir, FSYNC_FILE_BYTES, "fdatasync", e))?;
        k += 1;
        Ok(())
    })?;
    drop(f);
    let check = IoCheck { moved_bytes: r.iterations * PAGE as u64, ..dir.check(false) };
    let check = read_back(spec, &dir, &path, false, FSYNC_FILE_BYTES, |p| Some(cyclic_pass(p, k, pages, 1).unwrap_or(0)), check)?;
    Ok(with(check)(r))
}

/// fs.create_unlink: create a new file, write 4 KiB, close, unlink. After
/// the loop one more file is made the same way and read back, and the
/// directory must be empty again.
pub fn create_unlink(spec: &'static MetricSpec, req: &RunRequest) -> Result<RunResult, MetricError> {
    let dir = WorkDir::create(spec, req, SMALL_FILE_BYTES)?;
    let path = dir.file("new");
    let c =
        std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).map_err(|e| MetricError::Failed { metric: spec.name, message: e.to_string() })?;
    let mut buf = vec![0u8; PAGE];
    fill(&mut buf);
    stamp(&mut buf, 0, 0);
    let flags = nix::fcntl::OFlag::O_CREAT | nix::fcntl::OFlag::O_EXCL | nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_CLOEXEC;
    let mode = nix::sys::stat::Mode::from_bits_truncate(0o600);
    let once = |buf: &[u8], unlink: bool| -> Result<(), MetricError> {
        let fd = nix::fcntl::open(c.as_c_str(), flags, mode).map_err(|e| op_err(spec, &dir, SMALL_FILE_BYTES, "create", e.into()))?;
        let written = nix::unistd::write(
            // SAFETY: fd was just opened here and is closed below, not before.
            unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) },
            buf,
        );
        let closed = nix::unistd::close(fd);
        match written {
            Ok(n) if n == buf.len() => {}
            Ok(n) => return Err(MetricError::Failed { metric: spec.name, message: format!("short write: {n} of {} bytes", buf.len()) }),
            Err(e) => return Err(op_err(spec, &dir, SMALL_FILE_BYTES, "write", e.into())),
        }
        closed.map_err(|e| io_err(spec.name, "close", e.into()))?;
        if unlink {
            nix::unistd::unlink(c.as_c_str()).map_err(|e| io_err(spec.name, "unlink", e.into()))?;
        }
        Ok(())
    };
    let r = time_loop::<MetricError>(spec, req, || once(&buf, true))?;
    let left = std::fs::read_dir(&dir.path).map_err(|e| io_err(spec.name, "list the work directory", e))?.count();
    if left != 0 {
        return Err(MetricError::Failed { metric: spec.name, message: format!("{left} files left in {} after the loop", dir.path.display()) });
    }
    once(&buf, false)?;
    let check = IoCheck { moved_bytes: r.iterations * SMALL_FILE_BYTES, ..dir.check(false) };
    let mut check = read_back(spec, &dir, &path, false, SMALL_FILE_BYTES, |_| Some(0), check)?;
    // The last file is not part of the loop: the loop's files are gone.
    check.file_bytes = 0;
    Ok(with(check)(r))
}

/// A 4 KiB file laid out in a new work directory, and its path as a C
/// string (the loop allocates nothing).
fn small_file(spec: &'static MetricSpec, req: &RunRequest) -> Result<(WorkDir, PathBuf, std::ffi::CString), MetricError> {
    let dir = WorkDir::create(spec, req, SMALL_FILE_BYTES)?;
    let path = dir.file("file");
    lay_out(spec, &dir, &path, SMALL_FILE_BYTES)?;
    let c =
        std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).map_err(|e| MetricError::Failed { metric: spec.name, message: e.to_string() })?;
    Ok((dir, path, c))
}

/// fs.stat: stat(2) of a 4 KiB file; each answer's size is checked.
pub fn stat(spec: &'static MetricSpec, req: &RunRequest) -> Result<RunResult, MetricError> {
    let (dir, path, c) = small_file(spec, req)?;
    let r = time_loop::<MetricError>(spec, req, || {
        let st = nix::sys::stat::stat(c.as_c_str()).map_err(|e| io_err(spec.name, "stat", e.into()))?;
        match st.st_size as u64 {
            SMALL_FILE_BYTES => Ok(()),
            n => Err(MetricError::Failed { metric: spec.name, message: format!("stat says {n} bytes, not {SMALL_FILE_BYTES}") }),
        }
    })?;
    let check = read_back(spec, &dir, &path, false, SMALL_FILE_BYTES, |_| Some(0), dir.check(false))?;
    Ok(with(check)(r))
}

/// fs.open_close: open(O_RDONLY) and close of a 4 KiB file.
pub fn open_close(spec: &'static MetricSpec, req: &RunRequest) -> Result<RunResult, MetricError> {
    let (dir, path, c) = small_file(spec, req)?;
    let flags = nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC;
    let r = time_loop::<MetricError>(spec, req, || {
        let fd = nix::fcntl::open(c.as_c_str(), flags, nix::sys::stat::Mode::empty()).map_err(|e| io_err(spec.name, "open", e.into()))?;
        nix::unistd::close(fd).map_err(|e| io_err(spec.name, "close", e.into()))
    })?;
    let check = read_back(spec, &dir, &path, false, SMALL_FILE_BYTES, |_| Some(0), dir.check(false))?;
    Ok(with(check)(r))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog;

    fn req(metric: &str, iterations: u64, dir: &Path) -> RunRequest {
        RunRequest { data_dir: Some(dir.display().to_string()), warmup: 2, ..RunRequest::new(metric, iterations, 60_000) }
    }

    #[test]
    fn cyclic_pass_is_the_last_write_to_each_unit() {
        // 10 writes over 4 units: units 0 and 1 written in pass 2, 2 and 3 in pass 1.
        let got: Vec<_> = (0..4).map(|u| cyclic_pass(u, 10, 4, 0)).collect();
        assert_eq!(got, [Some(2), Some(2), Some(1), Some(1)]);
        assert_eq!(cyclic_pass(3, 2, 4, 0), None, "never written");
        assert_eq!(cyclic_pass(0, 4, 4, 1), Some(1));
    }

    /// Every fs metric on a real directory (the test's temp dir) moves and
    /// keeps the bytes it claims; its work directory is gone afterwards.
    #[test]
    fn every_fs_metric_moves_the_bytes_it_claims_and_leaves_nothing() {
        let data = tempfile::tempdir().unwrap();
        for spec in catalog::CATALOG.iter().filter(|m| m.family == catalog::Family::Fs) {
            // 70 blocks: more than two passes over the sequential file.
            let n = if spec.unit.is_rate() { 70 } else { 40 };
            let r = match super::super::run(&req(spec.name, n, data.path()), &super::super::Context::for_noop(Path::new("/bin/true"))) {
                Err(MetricError::NotSupported { .. }) => continue,
                other => other.unwrap_or_else(|e| panic!("{}: {e}", spec.name)),
            };
            let io = r.io.unwrap_or_else(|| panic!("{}: no io check", spec.name));
            let block = if spec.unit.is_rate() { SEQ_BLOCK as u64 } else { PAGE as u64 };
            if !matches!(spec.name, "fs.stat" | "fs.open_close") {
                assert_eq!(io.moved_bytes, r.iterations * block, "{}", spec.name);
            }
            let file = match spec.name {
                "fs.seq_write_bw" | "fs.seq_write_buffered_bw" | "fs.seq_read_bw" | "fs.seq_read_buffered_bw" => SEQ_FILE_BYTES,
                "fs.rand_read" | "fs.rand_write" => RAND_FILE_BYTES,
                "fs.fsync" => FSYNC_FILE_BYTES,
                "fs.create_unlink" => 0,
                _ => SMALL_FILE_BYTES,
            };
            assert_eq!(io.file_bytes, file, "{}", spec.name);
            assert_eq!(io.verified_bytes, file.max(SMALL_FILE_BYTES), "{}", spec.name);
            assert_ne!(io.checksum, CHECKSUM_START, "{}", spec.name);
            assert!(io.dir.starts_with(&data.path().display().to_string()), "{}: {}", spec.name, io.dir);
            assert_eq!(std::fs::read_dir(data.path()).unwrap().count(), 0, "{}: its work directory is removed", spec.name);
        }
    }

    /// A page that changed on disk behind the metric's back fails the read-back.
    #[test]
    fn a_changed_page_fails_the_read_back() {
        let data = tempfile::tempdir().unwrap();
        let spec = catalog::lookup("fs.fsync").unwrap();
        let dir = WorkDir::create(spec, &req(spec.name, 1, data.path()), FSYNC_FILE_BYTES).unwrap();
        let path = dir.file("f");
        lay_out(spec, &dir, &path, FSYNC_FILE_BYTES).unwrap();
        assert!(read_back(spec, &dir, &path, false, FSYNC_FILE_BYTES, |_| Some(0), dir.check(false)).is_ok());
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().write_all_at(b"x", 5 * PAGE as u64 + 100).unwrap();
        let e = read_back(spec, &dir, &path, false, FSYNC_FILE_BYTES, |_| Some(0), dir.check(false)).unwrap_err().to_string();
        assert!(e.contains("read back page 5"), "{e}");
        let e = read_back(spec, &dir, &path, false, FSYNC_FILE_BYTES, |_| Some(1), dir.check(false)).unwrap_err().to_string();
        assert!(e.contains("read back page 0"), "{e}");
    }

    #[test]
    fn a_missing_or_bad_data_dir_is_one_line() {
        let ctx = super::super::Context::for_noop(Path::new("/bin/true"));
        let e = super::super::run(&RunRequest::new("fs.stat", 20, 1000), &ctx).unwrap_err().to_string();
        assert_eq!(e, "fs.stat: needs a data directory (data_dir) to make its files in");
        let e = super::super::run(&req("fs.stat", 20, Path::new("/nonexistent-isobench")), &ctx).unwrap_err().to_string();
        assert_eq!(e, "fs.stat: data directory /nonexistent-isobench is not a directory");
    }
}

//! Process memory. An argon2id verification (RFC 9106, default parameters) takes a
//! 19 MiB block. glibc raises its mmap threshold to the size of the largest block freed,
//! so after the first verification such blocks come from the heap and stay resident for
//! good; a fixed threshold keeps them mmapped and returns them to the system when freed.

/// glibc's default threshold; setting it explicitly turns off the raising.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 128 * 1024;

/// Makes large freed blocks go back to the system. Call before any other thread starts.
pub fn return_large_blocks() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter, called while single-threaded.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}

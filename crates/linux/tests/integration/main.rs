//! Integration tests of the `linux` crate against the kernel the tests run on.
//!
//! Most machines that run them (containers, CI) have no `/dev/dma_heap` and no
//! `/dev/udmabuf`: the cases that need those print why they skip and pass. The plain file
//! calls (memfd, seals, mmap, dup, processes) run everywhere.

mod files;
mod processes;
mod suite;

/// Serialises the tests: they share one process fd table, and a case that closes an fd to get
/// a "not open" number would see another test's new fd take that number.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

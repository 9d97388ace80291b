//! The UAPI conformance suite (`seam::conformance`) against the simulator: one test per
//! case, named after it, on a freshly booted machine. After each case the process exits and
//! the machine must have exactly the free memory it had before the case (nothing leaked,
//! nothing freed twice). A skipped case prints its reason.

use kernel::sim::{free_memory, SimProcess};
use seam::conformance::{self, Outcome, CASE_NAMES};
use seam::{Errno, Uapi, O_CLOEXEC, O_RDWR};

/// The cases the simulator is expected to skip.
const EXPECTED_SKIPS: &[&str] = &[];

/// Cases where the simulator is known to differ from Linux, with the difference. The test
/// prints the divergence instead of failing, and fails once the simulator is fixed so that the
/// entry is removed. Keep this list empty.
/// Cases where the simulator is known to disagree with Linux (none at the moment); each entry
/// names the case and why, and the test fails once the simulator agrees, as a reminder.
const KNOWN_SIM_DIVERGENCES: &[(&str, &str)] = &[];

fn known_divergence(name: &str) -> Option<&'static str> {
    KNOWN_SIM_DIVERGENCES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, why)| *why)
}

fn run(name: &str, case: conformance::CaseFn<SimProcess>) {
    let mut p = SimProcess::boot().expect("boot the default SoC");
    let kernel = p.kernel().clone();
    let before = free_memory(&kernel);
    let result = case(&mut p);
    p.exit();
    drop(p);
    match result.clone() {
        Ok(Outcome::Passed) => {}
        Ok(Outcome::Skipped(why)) => {
            println!("SKIP {name}: {why}");
            assert!(
                EXPECTED_SKIPS.contains(&name),
                "{name} was skipped on the simulator, which should support it: {why}"
            );
        }
        Err(f) => match known_divergence(name) {
            Some(why) => println!("KNOWN SIMULATOR DIVERGENCE {name}: {f} ({why})"),
            None => panic!("{name}: {f}"),
        },
    }
    if let (Some(why), Ok(Outcome::Passed)) = (known_divergence(name), &result) {
        panic!("{name} passes now: remove it from KNOWN_SIM_DIVERGENCES ({why})");
    }
    assert_eq!(
        free_memory(&kernel),
        before,
        "{name}: free memory after the process exited differs from before the case"
    );
}

macro_rules! cases {
    ($($name:ident,)*) => {
        $(
            #[test]
            fn $name() {
                run(stringify!($name), conformance::$name::<SimProcess>);
            }
        )*

        /// Every case of the suite has a test here, and no test names a case that is gone.
        #[test]
        fn every_case_has_a_test() {
            let here = [$(stringify!($name),)*];
            assert_eq!(here.as_slice(), CASE_NAMES);
        }
    };
}

cases! {
    dma_buf_sync_valid_flags,
    dma_buf_sync_invalid_flags_einval,
    dma_buf_sync_no_direction_einval,
    dma_buf_sync_wrong_fd,
    dma_buf_set_name_shows_in_fdinfo,
    dma_buf_set_name_too_long_einval,
    dma_buf_set_name_wrong_fd,
    export_sync_file_bad_flags_einval,
    export_sync_file_idle_is_signaled,
    export_sync_file_snapshots_by_usage,
    import_sync_file_bad_flags_einval,
    import_sync_file_not_a_sync_file_einval,
    import_sync_file_wrong_dma_buf_fd,
    dma_buf_ioctls_on_a_heap_fd_einval,
    dma_buf_lseek_end_and_set,
    dma_buf_lseek_invalid_einval,
    dma_buf_poll_no_events_is_zero,
    dma_buf_poll_idle_is_ready,
    dma_buf_poll_write_fence_blocks_in_and_out,
    dma_buf_poll_read_fence_blocks_out_only,
    poll_closed_fd_is_pollnval,
    dma_buf_mmap_read_write,
    dma_buf_mmap_past_end_einval,
    dma_buf_mmap_offset_inside,
    dma_buf_mmap_bad_len_or_offset_einval,
    dma_buf_mmap_huge_len_enomem,
    dma_buf_mmap_access_mode_eacces,
    dma_buf_mmap_prot_read_refuses_write,
    dma_buf_mmap_outlives_fd,
    dma_buf_fdinfo_size_count_exp_name,
    heap_open_unknown_enoent,
    heap_alloc_rounds_up_to_pages,
    heap_alloc_zero_len_einval,
    heap_alloc_bad_fd_flags_einval,
    heap_alloc_bad_heap_flags_einval,
    heap_alloc_wrong_fd,
    heap_alloc_failure_leaks_no_fd,
    test_alloc_and_import,
    test_alloc_zeroed_4k,
    test_alloc_zeroed_1m,
    test_alloc_compat,
    test_alloc_errors,
    cma_heap_mmap_private_einval,
    memfd_pwrite_pread,
    memfd_bad_flags_einval,
    memfd_seal_rules,
    udmabuf_test_1_unaligned_offset,
    udmabuf_test_2_unaligned_size,
    udmabuf_test_3_not_memfd,
    udmabuf_test_4_create,
    udmabuf_test_5_create_list_sees_memfd_writes,
    udmabuf_test_6_hugetlb,
    udmabuf_test_7_hugetlb_pin_first,
    udmabuf_zero_size_einval,
    udmabuf_size_limit_einval,
    udmabuf_closed_memfd_ebadfd,
    udmabuf_seals_einval,
    udmabuf_range_past_memfd_einval,
    udmabuf_empty_item_einval,
    udmabuf_list_limit_einval,
    udmabuf_list_concatenates_in_order,
    udmabuf_flags,
    udmabuf_is_rdwr_and_page_sized,
    udmabuf_mmap_private_einval,
    udmabuf_sync_end_before_start_einval,
    udmabuf_outlives_memfd_fd,
    sync_merge_two_contexts,
    sw_sync_merge_same_timeline_keeps_later,
    sync_merge_name_cut_to_31_bytes,
    sync_merge_flags_pad_einval,
    sync_merge_fd2_not_sync_file_enoent,
    sync_merge_fd1_not_sync_file,
    sync_file_info_count_then_fill,
    sync_file_info_bad_args_einval,
    sync_file_poll_in_iff_signaled,
    sw_sync_close_signals_enoent,
    fd_close_and_dup_ebadf,
    fd_lowest_free_number,
    fd_dup_shares_the_buffer,
    fd_numbers_are_per_process,
    fd_send_shares_buffer_between_processes,
}

/// The whole suite on one process, one case after another, as the real-kernel harness runs it:
/// the cases leave nothing behind that trips a later one.
#[test]
fn run_all_on_one_process() {
    let mut p = SimProcess::boot().expect("boot");
    let report = conformance::run_all(&mut p);
    println!("{report}");
    let unexpected: Vec<_> = report
        .results
        .iter()
        .filter(|r| r.result.is_err() && known_divergence(r.name).is_none())
        .collect();
    assert!(unexpected.is_empty(), "{report}");
    let fds = p.process().fds();
    assert_eq!(fds, [0, 1, 2], "the suite left fds open");
}

/// As Linux 6.12 does it (qemu: a 4 GiB allocation on a 1 GiB machine killed the allocating
/// process with SIGKILL): a system-heap allocation larger than the machine is an OOM kill, not
/// `ENOMEM`. The process dies, every fd it had closes, the caller and every later call see
/// `ESRCH`, and no page stays behind. A carveout heap still answers `ENOMEM` (next test).
#[test]
fn heap_alloc_larger_than_the_machine_is_an_oom_kill() {
    let mut p = SimProcess::boot().expect("boot");
    let before = free_memory(p.kernel());
    let heap = p.open_heap("system").unwrap();
    let small = p.heap_alloc(heap, 4096, O_RDWR | O_CLOEXEC, 0).unwrap();
    let esrch = Errno::ESRCH;
    assert_eq!(
        p.heap_alloc(heap, 1 << 44, O_RDWR | O_CLOEXEC, 0),
        Err(esrch)
    );
    assert!(!p.process().is_alive(), "the OOM killer's victim lives on");
    assert!(p.process().fds().is_empty(), "the dead process kept fds");
    assert_eq!(p.lseek(small, 0, seam::SEEK_END), Err(esrch));
    assert_eq!(free_memory(p.kernel()), before);
}

/// The OOM kill is the system heap's (page allocator) answer only: a carveout that cannot hold
/// the allocation answers `ENOMEM` and the process lives.
#[test]
fn carveout_heap_exhaustion_stays_enomem() {
    let mut p = SimProcess::boot().expect("boot");
    let Some(name) = p
        .heap_names()
        .unwrap()
        .into_iter()
        .find(|n| n.starts_with("carveout"))
    else {
        panic!("the default SoC has a carveout heap");
    };
    let heap = p.open_heap(&name).unwrap();
    assert_eq!(
        p.heap_alloc(heap, 1 << 44, O_RDWR | O_CLOEXEC, 0),
        Err(Errno::ENOMEM)
    );
    assert!(p.process().is_alive());
    assert_eq!(p.dup(heap), Ok(heap + 1), "a failed alloc kept an fd");
}

/// Behaviour 90, as the real kernel does it (Debian 6.12 under `scripts/kernel-conformance`):
/// `DMA_BUF_IOCTL_SYNC` on a heap fd is nr 0 there, a short ALLOC with `len = flags`; it
/// succeeds and leaves an fd the caller was never told about.
#[test]
fn dma_buf_sync_on_a_heap_fd_allocates_like_the_kernel() {
    use seam::{DMA_BUF_SYNC_READ, DMA_BUF_SYNC_START};
    let mut p = SimProcess::boot().expect("boot the default SoC");
    let heap = p.open_heap("system").unwrap();
    let before = p.dup(heap).unwrap();
    p.close(before).unwrap();
    p.dma_buf_sync(heap, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ)
        .expect("the heap serves it as an ALLOC");
    let info = p
        .fdinfo(before)
        .expect("the leaked buffer took the lowest free fd");
    assert_eq!(
        seam::fdinfo_field(&info, "exp_name"),
        Some("system"),
        "{info}"
    );
    assert_eq!(seam::fdinfo_field(&info, "size"), Some("4096"), "{info}");
    p.close(before).unwrap();
    p.close(heap).unwrap();
}

/// The `syscalls` suite, every case on a fresh machine with the same leak check.
#[test]
fn syscalls_suite() {
    for case in conformance::syscalls::cases::<SimProcess>() {
        run(case.name, case.run);
    }
}

/// The `fences` suite, every case on a fresh machine with the same leak check.
#[test]
fn fences_suite() {
    for case in conformance::fences::cases::<SimProcess>() {
        run(case.name, case.run);
    }
}

/// Inode numbers as user space sees them are counted per machine from 1, as a booted kernel
/// counts them (qemu: the first dma-buf of a boot is inode 1): two machines in one test
/// process both number their first buffer 1, and a machine's second buffer is 2.
#[test]
fn dma_buf_inode_numbers_count_per_machine_from_1() {
    for _ in 0..2 {
        let mut p = SimProcess::boot().expect("boot");
        let heap = p.open_heap("system").unwrap();
        let a = p.heap_alloc(heap, 4096, O_RDWR | O_CLOEXEC, 0).unwrap();
        let b = p.heap_alloc(heap, 4096, O_RDWR | O_CLOEXEC, 0).unwrap();
        assert_eq!((p.fstat(a).unwrap().ino, p.fstat(b).unwrap().ino), (1, 2));
        p.exit();
    }
}

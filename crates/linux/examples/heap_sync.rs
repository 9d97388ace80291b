//! What a Rust user on real Linux wants first: allocate a buffer from the system dma-heap, map
//! it, write it between `DMA_BUF_IOCTL_SYNC` START and END, name it, and export its fences as a
//! sync file.
//!
//! ```text
//! cargo run -p linux --example heap_sync
//! ```
//!
//! On a machine without `/dev/dma_heap/system` (most containers and CI runners) it says why and
//! exits with status 0.

use linux::RealLinux;
use seam::{
    fdinfo_field, Errno, Mapping, Uapi, DMA_BUF_SYNC_END, DMA_BUF_SYNC_READ, DMA_BUF_SYNC_START,
    DMA_BUF_SYNC_WRITE, O_CLOEXEC, O_RDWR, PROT_READ, PROT_WRITE,
};

const LEN: u64 = 64 * 1024;

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}"); // `ENOMEM`, not `Errno(12)`
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Errno> {
    let mut p = RealLinux::new();
    let heap = match p.open_heap("system") {
        Ok(fd) => fd,
        Err(e) => {
            println!("no system dma-heap here (open /dev/dma_heap/system: {e}); nothing to show");
            println!("(a kernel with CONFIG_DMABUF_HEAPS_SYSTEM=y has one; scripts/kernel-conformance boots one)");
            return Ok(());
        }
    };

    // DMA_HEAP_IOCTL_ALLOC: the heap rounds the length up to pages and returns a dma-buf fd.
    let buf = p.heap_alloc(heap, LEN, O_RDWR | O_CLOEXEC, 0)?;
    println!("allocated {LEN} bytes from the system heap: dma-buf fd {buf}");

    // mmap, then write inside a SYNC START/END bracket (the mapping is not coherent outside).
    let map = p.mmap(buf, 0, LEN, PROT_READ | PROT_WRITE, true)?;
    p.dma_buf_sync(buf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_WRITE)?;
    map.write(0, b"hello from the CPU")?;
    p.dma_buf_sync(buf, DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE)?;
    println!("wrote 18 bytes between SYNC_START|WRITE and SYNC_END|WRITE");

    p.dma_buf_sync(buf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ)?;
    let mut back = [0u8; 18];
    map.read(0, &mut back)?;
    p.dma_buf_sync(buf, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ)?;
    println!("read back {:?}", String::from_utf8_lossy(&back));

    // DMA_BUF_SET_NAME_B: the name shows in /proc/<pid>/fdinfo/<fd>.
    p.dma_buf_set_name(buf, b"heap_sync-example")?;
    let info = p.fdinfo(buf)?;
    println!(
        "fdinfo: size {}, exp_name {}, name {}",
        fdinfo_field(&info, "size").unwrap_or("?"),
        fdinfo_field(&info, "exp_name").unwrap_or("?"),
        fdinfo_field(&info, "name").unwrap_or("?"),
    );

    // DMA_BUF_IOCTL_EXPORT_SYNC_FILE: a snapshot of the buffer's fences (none yet: signaled).
    match p.export_sync_file(buf, DMA_BUF_SYNC_READ as u32) {
        Ok(sync) => {
            let info = p.sync_file_info(sync)?;
            println!(
                "exported sync file fd {sync}: {} fence(s), status {} (1 = signaled)",
                info.num_fences, info.status
            );
            p.close(sync)?;
        }
        Err(Errno::ENOTTY) => println!("this kernel has no CONFIG_SYNC_FILE: no sync-file export"),
        Err(e) => return Err(e),
    }

    drop(map);
    p.close(buf)?;
    p.close(heap)?;
    Ok(())
}

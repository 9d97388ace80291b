//! The probe's vivid part: for each of the first four `/dev/videoN` nodes, its sysfs name and
//! QUERYCAP answer; for its capture and output types, the G_FMT format and what REQBUFS(2)
//! answers for every memory type (MMAP, USERPTR, DMABUF, and the invalid 3 and 0), each
//! followed by REQBUFS(0).

use crate::*;

pub(crate) fn vivid() {
    for i in 0..4 {
        let path = format!("/dev/video{i}");
        let name = std::fs::read_to_string(format!("/sys/class/video4linux/video{i}/name"))
            .unwrap_or_default();
        let fd =
            match rustix::fs::open(path.as_str(), OFlags::RDWR | OFlags::CLOEXEC, Mode::empty()) {
                Ok(fd) => fd,
                Err(e) => {
                    say(&path, format!("Err({:?})", er(e)));
                    continue;
                }
            };
        let mut cap = [0u8; 104];
        let r = ioc(
            fd.as_fd(),
            uapi::ioctl::ioc(IOC_READ, b'V', 0, 104),
            &mut cap,
        );
        let text = |b: &[u8]| {
            let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
            String::from_utf8_lossy(&b[..end]).into_owned()
        };
        let u32_at = |b: &[u8], o: usize| u32::from_ne_bytes(b[o..o + 4].try_into().unwrap());
        say(
            &path,
            format!(
                "name {:?} QUERYCAP {} driver {:?} card {:?} bus {:?} version {:#x} caps {:#x} device_caps {:#x}",
                name.trim(), res(r), text(&cap[..16]), text(&cap[16..48]), text(&cap[48..80]),
                u32_at(&cap, 80), u32_at(&cap, 84), u32_at(&cap, 88)
            ),
        );
        let dcaps = u32_at(&cap, 88);
        for ty in [1u32, 2] {
            if (ty == 1 && dcaps & 1 == 0) || (ty == 2 && dcaps & 2 == 0) {
                continue;
            }
            let mut f = [0u8; 208];
            f[..4].copy_from_slice(&ty.to_ne_bytes());
            let r = ioc(fd.as_fd(), iowr(b'V', 4, 208), &mut f);
            say(
                &format!("{path} G_FMT(type {ty})"),
                format!(
                    "{} {}x{} fourcc {:?} field {} bpl {} sizeimage {} colorspace {}",
                    res(r),
                    u32_at(&f, 8),
                    u32_at(&f, 12),
                    String::from_utf8_lossy(&f[16..20]),
                    u32_at(&f, 20),
                    u32_at(&f, 24),
                    u32_at(&f, 28),
                    u32_at(&f, 32)
                ),
            );
            for mem in [1u32, 2, 4, 3, 0] {
                let mut rb = [0u8; 20];
                rb[..4].copy_from_slice(&2u32.to_ne_bytes());
                rb[4..8].copy_from_slice(&ty.to_ne_bytes());
                rb[8..12].copy_from_slice(&mem.to_ne_bytes());
                let r = ioc(fd.as_fd(), iowr(b'V', 8, 20), &mut rb);
                say(
                    &format!("{path} REQBUFS(2, type {ty}, memory {mem})"),
                    format!(
                        "{} count {} caps {:#x} flags {}",
                        res(r),
                        u32_at(&rb, 0),
                        u32_at(&rb, 12),
                        rb[16]
                    ),
                );
                let mut zero = [0u8; 20];
                zero[4..8].copy_from_slice(&ty.to_ne_bytes());
                zero[8..12].copy_from_slice(&mem.to_ne_bytes());
                let _ = ioc(fd.as_fd(), iowr(b'V', 8, 20), &mut zero);
            }
        }
    }
}

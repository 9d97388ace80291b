//! The sync_file UAPI structs (`include/uapi/linux/sync_file.h`): the ioctl arguments of
//! SYNC_IOC_MERGE, SYNC_IOC_FILE_INFO and SYNC_IOC_SET_DEADLINE, and the rules for their
//! `char name[32]` fields.
//!
//! Plain values with no behaviour: the `fence` crate fills and checks them, the UAPI seam passes
//! them across, and the `linux` crate lays them out for the real ioctls.

/// Size of every name field of the sync_file UAPI, NUL included (`char name[32]`).
pub const SYNC_NAME_LEN: usize = 32;

/// Cuts `s` to at most `SYNC_NAME_LEN - 1` bytes, on a character boundary (`strscpy` into a
/// `char[32]`, without ever splitting a UTF-8 sequence).
pub fn cut_name(s: &str) -> String {
    let mut end = s.len().min(SYNC_NAME_LEN - 1);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

/// A C name field as the kernel reads it: up to the first NUL, never past byte 31 (the kernel
/// writes `name[31] = '\0'` before use). Invalid UTF-8 is replaced, not rejected.
pub fn name_from_c(raw: &[u8; SYNC_NAME_LEN]) -> String {
    let bytes = &raw[..SYNC_NAME_LEN - 1];
    let len = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..len]).into_owned()
}

/// A name as a C field: cut to 31 bytes and NUL-padded.
pub fn name_to_c(name: &str) -> [u8; SYNC_NAME_LEN] {
    let mut raw = [0u8; SYNC_NAME_LEN];
    let cut = cut_name(name);
    raw[..cut.len()].copy_from_slice(cut.as_bytes());
    raw
}

/// One entry of the FILE_INFO array (`struct sync_fence_info`): a leaf fence.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncFenceInfo {
    /// The fence's timeline name, cut to 31 bytes.
    pub obj_name: String,
    /// The fence's driver name, cut to 31 bytes.
    pub driver_name: String,
    /// `dma_fence_get_status`: 0 pending, 1 signaled, `-errno` signaled with an error.
    pub status: i32,
    /// Always 0.
    pub flags: u32,
    /// When the fence signaled (on the fence's clock, `fence::FenceOps::clock`); 0 while pending.
    pub timestamp_ns: u64,
}

/// The argument of SYNC_IOC_FILE_INFO (`struct sync_file_info`), with the user array pointer
/// replaced by the entries themselves.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncFileInfo {
    /// Out: the file's name, cut to 31 bytes.
    pub name: String,
    /// Out: 1 signaled, 0 pending, `-errno` (rule 4).
    pub status: i32,
    /// In: must be 0.
    pub flags: u32,
    /// In: the number of slots (0 = just count). Out: the number of leaf fences.
    pub num_fences: u32,
    /// In: must be 0.
    pub pad: u32,
    /// Out: one entry per leaf, filled only if `num_fences` was not 0 on the way in.
    pub sync_fence_info: Vec<SyncFenceInfo>,
}

/// The argument of SYNC_IOC_MERGE (`struct sync_merge_data`), laid out like the C struct.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncMergeData {
    /// In: the new file's name; read up to the first NUL, at most 31 bytes.
    pub name: [u8; SYNC_NAME_LEN],
    /// In: the fd of the second sync file.
    pub fd2: i32,
    /// Out: the fd of the merged sync file.
    pub fence: i32,
    /// In: must be 0.
    pub flags: u32,
    /// In: must be 0.
    pub pad: u32,
}

impl SyncMergeData {
    /// A well-formed argument: `name` (cut to 31 bytes), `fd2`, everything else zero.
    pub fn new(name: &str, fd2: i32) -> SyncMergeData {
        SyncMergeData {
            name: name_to_c(name),
            fd2,
            fence: 0,
            flags: 0,
            pad: 0,
        }
    }

    /// The kernel's argument check: the name of the first field that must be zero and is not
    /// (`flags`, then `pad`; the kernel answers `EINVAL`), or `None` if the argument is sound.
    pub fn nonzero_field(&self) -> Option<&'static str> {
        if self.flags != 0 {
            return Some("flags");
        }
        if self.pad != 0 {
            return Some("pad");
        }
        None
    }
}

/// The argument of SYNC_IOC_SET_DEADLINE (`struct sync_set_deadline`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SyncSetDeadline {
    /// The deadline, absolute, on the fence's clock (`fence::FenceOps::clock`) (`CLOCK_MONOTONIC` in Linux).
    pub deadline_ns: u64,
    /// Must be 0.
    pub pad: u64,
}

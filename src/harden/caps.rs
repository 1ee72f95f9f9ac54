//! Dropping every capability in the jail. Raw syscalls (not the `caps`
//! crate's allocating API) because this runs in the forked child.

/// Clears the bounding, ambient, inheritable, permitted and effective sets.
pub fn drop_all(last: libc::c_ulong) -> Result<(), i32> {
    // SAFETY: prctl/capset with integer arguments and local structs only.
    unsafe {
        for cap in 0..=last {
            // EINVAL past the kernel's last cap is fine.
            libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0);
        }
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        );
        #[repr(C)]
        struct Header {
            version: u32,
            pid: i32,
        }
        #[repr(C)]
        #[derive(Clone, Copy)]
        struct Data {
            effective: u32,
            permitted: u32,
            inheritable: u32,
        }
        let hdr = Header {
            version: 0x2008_0522,
            pid: 0,
        }; // _LINUX_CAPABILITY_VERSION_3
        let data = [Data {
            effective: 0,
            permitted: 0,
            inheritable: 0,
        }; 2];
        if libc::syscall(libc::SYS_capset, &hdr as *const Header, data.as_ptr()) != 0 {
            return Err(crate::sys::errno());
        }
    }
    Ok(())
}

/// The highest capability number this kernel knows (read before fork, by
/// the `caps` crate from procfs); 63 covers every kernel when it cannot be
/// read (extra drops just fail with EINVAL).
pub fn last_cap() -> libc::c_ulong {
    caps::runtime::procfs_all_supported(None)
        .ok()
        .and_then(|set| set.iter().map(|c| c.index()).max())
        .map_or(63, libc::c_ulong::from)
}

#[cfg(test)]
mod tests {
    #[test]
    fn last_cap_matches_the_kernel() {
        let want: libc::c_ulong = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(super::last_cap(), want);
    }
}

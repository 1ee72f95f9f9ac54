//! The executor: runs a prepared mount plan inside the new mount namespace.
//! Runs in the forked child, so it only makes raw syscalls on buffers that
//! were prepared before fork: no allocation, no locks, no unwinding.

use std::ffi::{CStr, CString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

use crate::plan::Step;

/// Where the new root is built, and where the host root stays reachable
/// until the final pivot (both inside a staging tmpfs, as bubblewrap does).
pub const STAGE: &CStr = c"/tmp";
pub const NEWROOT: &str = "/newroot";
pub const OLDROOT: &str = "/oldroot";

/// A step with every path already a C string, prefixed for staging.
pub enum Prepared {
    /// The scratch tmpfs, mounted at `SCRATCH` in the staging root.
    Scratch {
        data: CString,
    },
    /// A tmpfs of its own (`dir` None) or the directory `dir` of the
    /// scratch tmpfs bound at `dest`.
    Tmpfs {
        dest: CString,
        data: CString,
        dir: Option<CString>,
        mode: libc::mode_t,
    },
    Bind {
        src: CString,
        dest: CString,
        dir: bool,
        ro: bool,
    },
    Symlink {
        target: CString,
        link: CString,
    },
    Proc {
        dest: CString,
    },
    Sysfs {
        dest: CString,
    },
    Cgroup2 {
        dest: CString,
    },
    Devpts {
        dest: CString,
    },
    RemountRo {
        dest: CString,
    },
    File {
        /// Where the bytes are written first, in the staging tmpfs.
        stage: CString,
        dest: CString,
        contents: Vec<u8>,
    },
    MaskFile {
        dest: CString,
    },
    Overlay {
        dest: CString,
        data: CString,
    },
    Whiteout {
        /// The whiteout layer in the staging root, and one whiteout path
        /// per hidden name inside it.
        layer: CString,
        whiteouts: Vec<CString>,
        /// jail's own files in the layer: (parent directory, path, bytes).
        files: Vec<(CString, CString, Vec<u8>)>,
        dest: CString,
        /// overlay mount options naming both layers.
        data: CString,
    },
}

/// Where the scratch tmpfs is mounted (staging root; detached with it,
/// while the binds of its directories stay).
const SCRATCH: &CStr = c"/scratch";
/// The empty, unreadable file bound over masked files (staging root).
const MASK_FILE: &CStr = c"/mask";
/// Parent of the whiteout layers (staging root).
const WHITEOUT_DIR: &CStr = c"/whiteouts";

/// Options of a writable overlay of host directories. userxattr: the
/// overlay's own metadata (opaque directories) as user.* xattrs, which an
/// unprivileged mounter may write.
fn overlay_data(lower: &Path, upper: &Path, work: &Path) -> Result<CString, std::ffi::NulError> {
    let mut data = b"userxattr,lowerdir=".to_vec();
    data.extend(overlay_escape(cpath(OLDROOT, lower)?.as_bytes()));
    data.extend_from_slice(b",upperdir=");
    data.extend(overlay_escape(cpath(OLDROOT, upper)?.as_bytes()));
    data.extend_from_slice(b",workdir=");
    data.extend(overlay_escape(cpath(OLDROOT, work)?.as_bytes()));
    CString::new(data)
}

/// overlayfs splits its options on `,` and lower directories on `:`;
/// both (and the escape itself) are escaped with a backslash.
fn overlay_escape(p: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(p.len());
    for &b in p {
        if matches!(b, b',' | b':' | b'\\') {
            out.push(b'\\');
        }
        out.push(b);
    }
    out
}

fn cpath(prefix: &str, p: &Path) -> Result<CString, std::ffi::NulError> {
    let mut v = prefix.as_bytes().to_vec();
    if p != Path::new("/") {
        v.extend_from_slice(p.as_os_str().as_bytes());
    }
    CString::new(v)
}

pub fn prepare(steps: &[Step]) -> Result<Vec<Prepared>, std::ffi::NulError> {
    let scratch = steps.iter().any(|s| matches!(s, Step::Scratch { .. }));
    steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            Ok(match s {
                Step::Scratch { size, inodes } => Prepared::Scratch {
                    data: CString::new(format!("mode=0755,size={size},nr_inodes={inodes}"))?,
                },
                Step::Tmpfs { dest, mode } => Prepared::Tmpfs {
                    dest: cpath(NEWROOT, dest)?,
                    data: CString::new(format!("mode={mode:o}"))?,
                    dir: scratch
                        .then(|| CString::new(format!("{}/{i}", SCRATCH.to_string_lossy())))
                        .transpose()?,
                    mode: *mode as libc::mode_t,
                },
                Step::Bind { src, dest, dir, ro } => Prepared::Bind {
                    src: cpath(OLDROOT, src)?,
                    dest: cpath(NEWROOT, dest)?,
                    dir: *dir,
                    ro: *ro,
                },
                Step::Symlink { target, link } => Prepared::Symlink {
                    target: CString::new(target.as_os_str().as_bytes())?,
                    link: cpath(NEWROOT, link)?,
                },
                Step::Proc { dest } => Prepared::Proc {
                    dest: cpath(NEWROOT, dest)?,
                },
                Step::Sysfs { dest } => Prepared::Sysfs {
                    dest: cpath(NEWROOT, dest)?,
                },
                Step::Cgroup2 { dest } => Prepared::Cgroup2 {
                    dest: cpath(NEWROOT, dest)?,
                },
                Step::Devpts { dest } => Prepared::Devpts {
                    dest: cpath(NEWROOT, dest)?,
                },
                Step::RemountRo { dest } => Prepared::RemountRo {
                    dest: cpath(NEWROOT, dest)?,
                },
                Step::MaskFile { dest } => Prepared::MaskFile {
                    dest: cpath(NEWROOT, dest)?,
                },
                Step::Overlay {
                    lower,
                    upper,
                    work,
                    dest,
                } => Prepared::Overlay {
                    dest: cpath(NEWROOT, dest)?,
                    data: overlay_data(lower, upper, work)?,
                },
                // Over the host's project where the jail is built from
                // (OLDROOT): every later bind of a project path shows it.
                Step::ReviewOverlay { lower, upper, work } => Prepared::Overlay {
                    dest: cpath(OLDROOT, lower)?,
                    data: overlay_data(lower, upper, work)?,
                },
                Step::Whiteout {
                    src,
                    dest,
                    names,
                    files,
                } => {
                    let layer = format!("{}/{i}", WHITEOUT_DIR.to_string_lossy());
                    let whiteouts = names
                        .iter()
                        .map(|n| {
                            let mut v = format!("{layer}/").into_bytes();
                            v.extend_from_slice(n.as_bytes());
                            CString::new(v)
                        })
                        .collect::<Result<_, _>>()?;
                    let mut data = b"lowerdir=".to_vec();
                    data.extend(overlay_escape(layer.as_bytes()));
                    data.push(b':');
                    data.extend(overlay_escape(cpath(OLDROOT, src)?.as_bytes()));
                    let files = files
                        .iter()
                        .map(|(rel, bytes)| {
                            let path = Path::new(&layer).join(rel);
                            let parent = path.parent().unwrap_or(Path::new(&layer)).to_path_buf();
                            Ok((
                                CString::new(parent.into_os_string().into_vec())?,
                                CString::new(path.into_os_string().into_vec())?,
                                bytes.clone(),
                            ))
                        })
                        .collect::<Result<_, std::ffi::NulError>>()?;
                    Prepared::Whiteout {
                        layer: CString::new(layer)?,
                        whiteouts,
                        files,
                        dest: cpath(NEWROOT, dest)?,
                        data: CString::new(data)?,
                    }
                }
                Step::File { dest, contents } => Prepared::File {
                    stage: CString::new(format!("/file-{i}"))?,
                    dest: cpath(NEWROOT, dest)?,
                    contents: contents.clone(),
                },
            })
        })
        .collect()
}

pub use crate::sys::errno;

fn check(rc: libc::c_int) -> Result<(), i32> {
    if rc < 0 {
        Err(errno())
    } else {
        Ok(())
    }
}

/// `mkdir -p` on a fixed stack buffer.
fn ensure_dir(path: &CStr) -> Result<(), i32> {
    // Most mount points exist or have existing parents: one syscall then.
    // SAFETY: path is a valid C string.
    if unsafe { libc::mkdir(path.as_ptr(), 0o755) } == 0 || errno() == libc::EEXIST {
        return Ok(());
    }
    if errno() != libc::ENOENT {
        return Err(errno());
    }
    let bytes = path.to_bytes();
    let mut buf = [0u8; libc::PATH_MAX as usize];
    if bytes.len() >= buf.len() {
        return Err(libc::ENAMETOOLONG);
    }
    buf[..bytes.len()].copy_from_slice(bytes);
    for i in 1..=bytes.len() {
        if i == bytes.len() || buf[i] == b'/' {
            let saved = buf[i];
            buf[i] = 0;
            // SAFETY: buf is NUL-terminated at i and outlives the call.
            let rc = unsafe { libc::mkdir(buf.as_ptr().cast(), 0o755) };
            if rc < 0 && errno() != libc::EEXIST && i == bytes.len() {
                return Err(errno());
            }
            buf[i] = saved;
        }
    }
    Ok(())
}

fn exists(path: &CStr) -> bool {
    // SAFETY: stat writes into a zeroed local struct.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        libc::lstat(path.as_ptr(), &mut st) == 0
    }
}

/// Creates `path` (it must not exist) and writes `bytes` to it: open,
/// write, close only, so it may run between fork and exec.
fn write_new_file(path: &CStr, bytes: &[u8]) -> Result<(), i32> {
    // SAFETY: a valid C string; the fd is closed below.
    let fd = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_CLOEXEC,
            0o644,
        )
    };
    if fd < 0 {
        return Err(errno());
    }
    let written = crate::sys::write_all(fd, bytes);
    crate::sys::close(fd);
    written
}

/// Creates an empty file to bind a file onto (and its parents).
fn ensure_file(path: &CStr) -> Result<(), i32> {
    if exists(path) {
        return Ok(());
    }
    let bytes = path.to_bytes();
    if let Some(slash) = bytes.iter().rposition(|&b| b == b'/') {
        let mut buf = [0u8; libc::PATH_MAX as usize];
        if bytes.len() >= buf.len() {
            return Err(libc::ENAMETOOLONG);
        }
        buf[..slash].copy_from_slice(&bytes[..slash]);
        // SAFETY: buf holds a NUL-terminated prefix of path.
        ensure_dir(unsafe { CStr::from_ptr(buf.as_ptr().cast()) })?;
    }
    // SAFETY: path is a valid C string; the fd is closed at once.
    let fd = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_CREAT | libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
            0o644,
        )
    };
    if fd < 0 {
        return Err(errno());
    }
    // SAFETY: fd was just opened by us.
    unsafe { libc::close(fd) };
    Ok(())
}

const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Whether one recursive mount_setattr makes the whole new root nosuid at
/// the end of `build_root` (the kernel has it): read-write binds then
/// need no call of their own (a syscall per mount saved at start).
static ONE_NOSUID: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// mount_setattr itself, without the fallback of `restrict`.
fn setattr(path: &CStr, set: u64, recursive: bool) -> Result<(), i32> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let flags = if recursive {
        libc::AT_RECURSIVE as libc::c_uint
    } else {
        0
    };
    // SAFETY: attr is a valid mount_attr of the size passed.
    check(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path.as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        ) as libc::c_int
    })
}

/// Sets mount attributes, recursively or not. mount_setattr (Linux 5.12)
/// only adds restrictions, so the flags the kernel locks in a user
/// namespace need not be repeated; older kernels get a remount that keeps
/// them (top mount only).
fn restrict(path: &CStr, set: u64, recursive: bool) -> Result<(), i32> {
    match setattr(path, set, recursive) {
        Err(libc::ENOSYS) => {}
        r => return r,
    }
    // SAFETY: statvfs fills a zeroed local struct.
    let mut sv: libc::statvfs = unsafe { std::mem::zeroed() };
    check(unsafe { libc::statvfs(path.as_ptr(), &mut sv) })?;
    let keep = [
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
        (libc::ST_RDONLY, libc::MS_RDONLY),
    ];
    let mut flags = libc::MS_REMOUNT | libc::MS_BIND;
    for (st, ms) in keep {
        if sv.f_flag & st != 0 {
            flags |= ms;
        }
    }
    if set & MOUNT_ATTR_RDONLY != 0 {
        flags |= libc::MS_RDONLY;
    }
    if set & MOUNT_ATTR_NOSUID != 0 {
        flags |= libc::MS_NOSUID;
    }
    // SAFETY: plain remount of an existing mount point.
    check(unsafe {
        libc::mount(
            std::ptr::null(),
            path.as_ptr(),
            std::ptr::null(),
            flags,
            std::ptr::null(),
        )
    })
}

fn mount(
    src: &CStr,
    dest: &CStr,
    fstype: &CStr,
    flags: libc::c_ulong,
    data: Option<&CStr>,
) -> Result<(), i32> {
    // SAFETY: every pointer is a valid C string or null.
    check(unsafe {
        libc::mount(
            src.as_ptr(),
            dest.as_ptr(),
            fstype.as_ptr(),
            flags,
            data.map_or(std::ptr::null(), |d| d.as_ptr().cast()),
        )
    })
}

/// Runs one step.
pub fn run_step(step: &Prepared) -> Result<(), i32> {
    match step {
        Prepared::Scratch { data } => {
            ensure_dir(SCRATCH)?;
            mount(
                c"tmpfs",
                SCRATCH,
                c"tmpfs",
                libc::MS_NOSUID | libc::MS_NODEV,
                Some(data),
            )
        }
        Prepared::Tmpfs {
            dest,
            data,
            dir: None,
            ..
        } => {
            ensure_dir(dest)?;
            mount(
                c"tmpfs",
                dest,
                c"tmpfs",
                libc::MS_NOSUID | libc::MS_NODEV,
                Some(data),
            )
        }
        Prepared::Tmpfs {
            dest,
            dir: Some(dir),
            mode,
            ..
        } => {
            // SAFETY: mkdir on a prepared C string.
            check(unsafe { libc::mkdir(dir.as_ptr(), 0o700) })?;
            // SAFETY: as above; chmod gives the exact mode, whatever the umask.
            check(unsafe { libc::chmod(dir.as_ptr(), *mode) })?;
            ensure_dir(dest)?;
            // The bind keeps the scratch mount's nosuid and nodev.
            // SAFETY: valid C strings; a bind ignores type and data.
            check(unsafe {
                libc::mount(
                    dir.as_ptr(),
                    dest.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND,
                    std::ptr::null(),
                )
            })
        }
        Prepared::Bind { src, dest, dir, ro } => {
            if *dir {
                ensure_dir(dest)?;
            } else {
                ensure_file(dest)?;
            }
            // SAFETY: valid C strings; a bind ignores type and data.
            check(unsafe {
                libc::mount(
                    src.as_ptr(),
                    dest.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND | libc::MS_REC,
                    std::ptr::null(),
                )
            })?;
            if !*ro && ONE_NOSUID.load(std::sync::atomic::Ordering::Relaxed) {
                // nosuid comes once for the whole tree (`build_root`).
                return Ok(());
            }
            let set = MOUNT_ATTR_NOSUID | if *ro { MOUNT_ATTR_RDONLY } else { 0 };
            restrict(dest, set, true)
        }
        Prepared::Symlink { target, link } => {
            // SAFETY: valid C strings. Best effort: a mirror only.
            unsafe { libc::symlink(target.as_ptr(), link.as_ptr()) };
            Ok(())
        }
        Prepared::Proc { dest } => {
            ensure_dir(dest)?;
            mount(
                c"proc",
                dest,
                c"proc",
                libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                None,
            )
        }
        Prepared::Devpts { dest } => {
            ensure_dir(dest)?;
            mount(
                c"devpts",
                dest,
                c"devpts",
                libc::MS_NOSUID | libc::MS_NOEXEC,
                Some(c"newinstance,ptmxmode=0666,mode=620"),
            )
        }
        Prepared::Sysfs { dest } => {
            ensure_dir(dest)?;
            let flags = libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
            mount(c"sysfs", dest, c"sysfs", flags, None)
        }
        Prepared::Cgroup2 { dest } => {
            let flags = libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
            // Best effort: without a cgroup namespace or cgroup2 the jail
            // simply has no /sys/fs/cgroup contents.
            let _ = mount(c"cgroup2", dest, c"cgroup2", flags, None);
            Ok(())
        }
        Prepared::RemountRo { dest } => restrict(dest, MOUNT_ATTR_RDONLY, false),
        Prepared::File {
            stage,
            dest,
            contents,
        } => {
            // The staging tmpfs is the cwd's root here (between the two
            // pivots); after the second pivot it is detached, and this
            // bind is the only way left to the file.
            write_new_file(stage, contents)?;
            ensure_file(dest)?;
            // SAFETY: valid C strings; a bind ignores type and data.
            check(unsafe {
                libc::mount(
                    stage.as_ptr(),
                    dest.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND,
                    std::ptr::null(),
                )
            })?;
            restrict(dest, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID, false)
        }
        Prepared::MaskFile { dest } => {
            // SAFETY: creating (once) an empty mode-000 file in the staging
            // root; the fd is closed at once.
            let fd = unsafe {
                libc::open(
                    MASK_FILE.as_ptr(),
                    libc::O_CREAT | libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
                    0,
                )
            };
            if fd < 0 {
                return Err(errno());
            }
            crate::sys::close(fd);
            // SAFETY: valid C strings; a bind ignores type and data.
            check(unsafe {
                libc::mount(
                    MASK_FILE.as_ptr(),
                    dest.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND,
                    std::ptr::null(),
                )
            })?;
            restrict(dest, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID, false)
        }
        Prepared::Overlay { dest, data } => {
            ensure_dir(dest)?;
            mount(
                c"overlay",
                dest,
                c"overlay",
                libc::MS_NOSUID | libc::MS_NODEV,
                Some(data),
            )
        }
        Prepared::Whiteout {
            layer,
            whiteouts,
            files,
            dest,
            data,
        } => {
            ensure_dir(layer)?;
            for w in whiteouts {
                // A whiteout is a 0/0 character device; the kernel lets an
                // unprivileged user make exactly this one (Linux 5.8+).
                // SAFETY: mknod on a prepared C string.
                check(unsafe { libc::mknod(w.as_ptr(), libc::S_IFCHR, 0) })?;
            }
            for (parent, path, bytes) in files {
                ensure_dir(parent)?;
                write_new_file(path, bytes)?;
            }
            mount(
                c"overlay",
                dest,
                c"overlay",
                libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV,
                Some(data),
            )
        }
    }
}

/// Stages of the child's setup, reported to the parent on failure (they
/// travel as themselves: `outside::channel`).
pub use crate::outside::channel::Stage;

/// Makes the mounts private, builds the new root on a tmpfs and pivots
/// into it, leaving the host root detached. Returns the failing stage,
/// step index and errno.
pub fn build_root(steps: &[Prepared]) -> Result<(), (Stage, u32, i32)> {
    let e = |s: Stage| move |errno| (s, 0, errno);
    // SAFETY (whole block): raw mount syscalls on prepared C strings.
    unsafe {
        check(libc::mount(
            c"none".as_ptr(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ))
        .map_err(e(Stage::Private))?;
        mount(
            c"tmpfs",
            STAGE,
            c"tmpfs",
            libc::MS_NOSUID | libc::MS_NODEV,
            Some(c"mode=0755"),
        )
        .map_err(e(Stage::Stage))?;
        check(libc::chdir(STAGE.as_ptr())).map_err(e(Stage::Stage))?;
        check(libc::mkdir(c"newroot".as_ptr(), 0o755)).map_err(e(Stage::Stage))?;
        check(libc::mkdir(c"oldroot".as_ptr(), 0o755)).map_err(e(Stage::Stage))?;
        check(
            libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c"oldroot".as_ptr()) as libc::c_int,
        )
        .map_err(e(Stage::Pivot1))?;
        check(libc::chdir(c"/".as_ptr())).map_err(e(Stage::Pivot1))?;
        mount(
            c"tmpfs",
            c"/newroot",
            c"tmpfs",
            libc::MS_NOSUID | libc::MS_NODEV,
            Some(c"mode=0755"),
        )
        .map_err(e(Stage::Stage))?;
        // The new root is nosuid already: this only asks whether the
        // kernel has mount_setattr.
        ONE_NOSUID.store(
            setattr(c"/newroot", MOUNT_ATTR_NOSUID, false).is_ok(),
            std::sync::atomic::Ordering::Relaxed,
        );
        for (i, s) in steps.iter().enumerate() {
            run_step(s).map_err(|errno| (Stage::Step, i as u32, errno))?;
        }
        if ONE_NOSUID.load(std::sync::atomic::Ordering::Relaxed) {
            setattr(c"/newroot", MOUNT_ATTR_NOSUID, true).map_err(e(Stage::Step))?;
        }
        // The runc trick: pivot onto the new root with the old one stacked
        // on top, then detach the old one (and the host root under it).
        check(libc::chdir(c"/newroot".as_ptr())).map_err(e(Stage::Pivot2))?;
        check(libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) as libc::c_int)
            .map_err(e(Stage::Pivot2))?;
        check(libc::umount2(c".".as_ptr(), libc::MNT_DETACH)).map_err(e(Stage::Pivot2))?;
        check(libc::chdir(c"/".as_ptr())).map_err(e(Stage::Pivot2))?;
    }
    Ok(())
}

/// Brings `lo` up in the jail's network namespace.
pub fn loopback_up() -> Result<(), i32> {
    // SAFETY: a zeroed ifreq with the name "lo"; the socket is closed after.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(errno());
        }
        let mut ifr: libc::ifreq = std::mem::zeroed();
        ifr.ifr_name[0] = b'l' as libc::c_char;
        ifr.ifr_name[1] = b'o' as libc::c_char;
        let mut rc = libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut ifr);
        if rc == 0 {
            ifr.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            rc = libc::ioctl(fd, libc::SIOCSIFFLAGS, &ifr);
        }
        let err = errno();
        libc::close(fd);
        if rc < 0 {
            return Err(err);
        }
    }
    Ok(())
}

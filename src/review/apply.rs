//! Applying (and discarding, and quarantining) changes: outside the jail,
//! as the user, after every process of the jail is gone.
//!
//! The project is written only through directory fds opened from its
//! root one component at a time with O_NOFOLLOW: a symlink anywhere on
//! the way (one the host has, or one that appeared meanwhile) is an
//! error, never followed, so applying never writes outside the project.
//! A file moves from upper into the project by rename (atomic, no copy,
//! sparse files stay sparse) or, across filesystems, by a copy that keeps
//! holes, written under a temporary name and renamed into place. Modes
//! lose setuid and setgid; overlayfs's own extended attributes and file
//! capabilities are removed. Right before each write the host object is
//! checked again: one changed since the jail started is a conflict, and
//! only `force` (the user's explicit yes) overwrites it.
//!
//! Each operation takes its entry out of upper only once it is done, so
//! an interrupted apply leaves the rest for `jail review PATH`.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, renameat, OFlag};
use nix::sys::stat::{fstatat, mkdirat, FileStat, Mode};
use nix::unistd::{unlinkat, UnlinkatFlags};

use super::changes::{tree, Change, Kind, Node, Type};

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The host's version changed since the jail started (or its place is
    /// no longer a plain directory path): not applied.
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Io(String),
}

fn io(what: &str, rel: &Path, e: impl std::fmt::Display) -> ApplyError {
    ApplyError::Io(format!("{what} {}: {e}", rel.display()))
}

/// The project, opened once.
pub struct Host {
    root: OwnedFd,
    /// ctime (ns) from which a host object counts as changed meanwhile.
    since: i128,
}

fn ctime(st: &FileStat) -> i128 {
    i128::from(st.st_ctime) * 1_000_000_000 + i128::from(st.st_ctime_nsec)
}

fn is_dir(st: &FileStat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFDIR
}

/// The entry `name` in `dir`, not following a symlink; None when absent.
fn lstat_at(dir: &OwnedFd, name: &OsStr) -> Result<Option<FileStat>, Errno> {
    match fstatat(dir, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

fn open_dir(dir: &OwnedFd, name: &OsStr) -> Result<OwnedFd, Errno> {
    openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// A directory fd's path in /proc, for reading a tree below it without
/// resolving the project's path again.
fn fd_path(fd: &OwnedFd, name: &OsStr) -> PathBuf {
    Path::new(&format!("/proc/self/fd/{}", fd.as_raw_fd())).join(name)
}

/// Permission bits jail applies: setuid and setgid never; the sticky bit
/// only on directories.
pub fn safe_mode(n: &Node) -> u32 {
    if n.ty == Type::Dir {
        n.mode & 0o1777
    } else {
        n.mode & 0o777
    }
}

impl Host {
    pub fn open(project: &Path, since: i128) -> std::io::Result<Host> {
        let root = fs::File::open(project)?;
        if !root.metadata()?.is_dir() {
            return Err(std::io::Error::other("the project is not a directory"));
        }
        Ok(Host {
            root: root.into(),
            since,
        })
    }

    /// The directory that holds `rel`, walked from the project root
    /// without following symlinks; missing directories are made with the
    /// mode upper has for them.
    fn parent(&self, rel: &Path, upper: &Path) -> Result<(OwnedFd, OsString), ApplyError> {
        let name = rel
            .file_name()
            .ok_or_else(|| ApplyError::Io(format!("bad path {}", rel.display())))?
            .to_os_string();
        let mut cur = self
            .root
            .try_clone()
            .map_err(|e| io("cannot open", Path::new("."), e))?;
        let mut so_far = PathBuf::new();
        for c in rel.parent().into_iter().flat_map(Path::components) {
            let c = c.as_os_str();
            so_far.push(c);
            let next = match open_dir(&cur, c) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) => {
                    let mode = Node::at(&upper.join(&so_far))
                        .filter(|n| n.ty == Type::Dir)
                        .map_or(0o755, |n| safe_mode(&n));
                    match mkdirat(&cur, c, Mode::from_bits_truncate(mode)) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => return Err(io("cannot create", &so_far, e)),
                    }
                    open_dir(&cur, c).map_err(|e| io("cannot open", &so_far, e))?
                }
                Err(Errno::ELOOP | Errno::ENOTDIR) => {
                    let link = lstat_at(&cur, c)
                        .ok()
                        .flatten()
                        .is_some_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFLNK);
                    return Err(ApplyError::Conflict(if link {
                        format!(
                            "{} is a symlink on the host: not followed",
                            so_far.display()
                        )
                    } else {
                        format!("{} is not a directory on the host", so_far.display())
                    }));
                }
                Err(e) => return Err(io("cannot open", &so_far, e)),
            };
            cur = next;
        }
        Ok((cur, name))
    }

    /// The conflict check right before writing: the host object at
    /// (dir, name), and for a directory that goes away everything in it.
    fn check(
        &self,
        dir: &OwnedFd,
        name: &OsStr,
        rel: &Path,
        replaces_dir: bool,
    ) -> Result<Option<FileStat>, ApplyError> {
        let st = lstat_at(dir, name).map_err(|e| io("cannot inspect", rel, e))?;
        if let Some(st) = &st {
            if ctime(st) >= self.since {
                return Err(ApplyError::Conflict(format!(
                    "{} changed on the host since the jail started",
                    rel.display()
                )));
            }
            if replaces_dir && is_dir(st) && tree(&fd_path(dir, name), self.since).1 {
                return Err(ApplyError::Conflict(format!(
                    "something in {} changed on the host since the jail started",
                    rel.display()
                )));
            }
        }
        Ok(st)
    }

    /// Applies `c` from `upper`; `force` overwrites a conflicting host
    /// object (the user said so). The change leaves upper when done.
    pub fn apply(&self, c: &Change, upper: &Path, force: bool) -> Result<(), ApplyError> {
        let (dir, name) = self.parent(&c.rel, upper)?;
        let new_is_dir = c.new.as_ref().is_some_and(|n| n.ty == Type::Dir);
        let st = if force {
            lstat_at(&dir, &name).map_err(|e| io("cannot inspect", &c.rel, e))?
        } else {
            self.check(&dir, &name, &c.rel, !new_is_dir)?
        };
        let up = upper.join(&c.rel);
        match &c.kind {
            Kind::Deleted => {
                remove_at(&dir, &name, st.as_ref(), &c.rel)?;
                remove_upper(&up);
            }
            Kind::Mode => {
                let n = c
                    .new
                    .as_ref()
                    .ok_or_else(|| io("no mode for", &c.rel, "?"))?;
                chmod_at(&dir, &name, safe_mode(n), &c.rel)?;
                if n.ty != Type::Dir {
                    remove_upper(&up);
                }
            }
            Kind::NewDir => {
                let n = c
                    .new
                    .as_ref()
                    .ok_or_else(|| io("no mode for", &c.rel, "?"))?;
                match mkdirat(
                    &dir,
                    name.as_os_str(),
                    Mode::from_bits_truncate(safe_mode(n)),
                ) {
                    Ok(()) => {}
                    Err(Errno::EEXIST) if st.as_ref().is_some_and(is_dir) => {}
                    Err(e) => return Err(io("cannot create", &c.rel, e)),
                }
                let _ = fs::remove_dir(&up);
            }
            Kind::Added | Kind::Modified | Kind::Renamed { .. } => {
                let n = c
                    .new
                    .as_ref()
                    .ok_or_else(|| io("nothing to apply at", &c.rel, "?"))?;
                self.place(&dir, &name, st.as_ref(), n, &up, &c.rel)?;
                if let Kind::Renamed { from } = &c.kind {
                    let (fdir, fname) = self.parent(from, upper)?;
                    let fst = if force {
                        lstat_at(&fdir, &fname).map_err(|e| io("cannot inspect", from, e))?
                    } else {
                        self.check(&fdir, &fname, from, true)?
                    };
                    remove_at(&fdir, &fname, fst.as_ref(), from)?;
                    remove_upper(&upper.join(from));
                }
            }
        }
        Ok(())
    }

    /// Puts upper's `n` (at `up`) at (dir, name), replacing what is there.
    fn place(
        &self,
        dir: &OwnedFd,
        name: &OsStr,
        st: Option<&FileStat>,
        n: &Node,
        up: &Path,
        rel: &Path,
    ) -> Result<(), ApplyError> {
        match n.ty {
            Type::Dir => {
                if st.is_some_and(|s| !is_dir(s)) {
                    unlinkat(dir, name, UnlinkatFlags::NoRemoveDir)
                        .map_err(|e| io("cannot replace", rel, e))?;
                }
                match mkdirat(dir, name, Mode::from_bits_truncate(safe_mode(n))) {
                    Ok(()) | Err(Errno::EEXIST) => Ok(()),
                    Err(e) => Err(io("cannot create", rel, e)),
                }
            }
            Type::Symlink => {
                let target = n
                    .link
                    .clone()
                    .ok_or_else(|| io("cannot read the symlink", rel, "?"))?;
                let tmp = temp_name();
                nix::unistd::symlinkat(&target, dir, tmp.as_os_str())
                    .map_err(|e| io("cannot create", rel, e))?;
                self.swap_in(dir, &tmp, name, st, rel)?;
                remove_upper(up);
                Ok(())
            }
            Type::File => {
                // Upper is jail's own (locked, the jail is gone): its
                // paths may be used directly.
                let md = fs::symlink_metadata(up).map_err(|e| io("cannot read", rel, e))?;
                if !md.is_file() {
                    return Err(io("cannot apply", rel, "upper changed"));
                }
                use std::os::unix::fs::PermissionsExt;
                fs::set_permissions(up, fs::Permissions::from_mode(safe_mode(n)))
                    .map_err(|e| io("cannot set the mode of", rel, e))?;
                strip_xattrs(up);
                if st.is_some_and(is_dir) {
                    remove_at(dir, name, st, rel)?;
                }
                match renameat(nix::fcntl::AT_FDCWD, up, dir, name) {
                    Ok(()) => Ok(()),
                    Err(Errno::EXDEV) => {
                        let tmp = temp_name();
                        copy_keeping_holes(up, dir, &tmp, safe_mode(n))
                            .map_err(|e| io("cannot copy", rel, e))?;
                        self.swap_in(dir, &tmp, name, None, rel)?;
                        remove_upper(up);
                        Ok(())
                    }
                    Err(e) => Err(io("cannot move into place", rel, e)),
                }
            }
            t => Err(io("not applied", rel, t.name())),
        }
    }

    /// Renames `tmp` over `name` in `dir` (a directory there is removed first).
    fn swap_in(
        &self,
        dir: &OwnedFd,
        tmp: &OsStr,
        name: &OsStr,
        st: Option<&FileStat>,
        rel: &Path,
    ) -> Result<(), ApplyError> {
        if st.is_some_and(is_dir) {
            if let Err(e) = remove_at(dir, name, st, rel) {
                let _ = unlinkat(dir, tmp, UnlinkatFlags::NoRemoveDir);
                return Err(e);
            }
        }
        renameat(dir, tmp, dir, name).map_err(|e| {
            let _ = unlinkat(dir, tmp, UnlinkatFlags::NoRemoveDir);
            io("cannot move into place", rel, e)
        })
    }
}

fn temp_name() -> OsString {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    OsString::from(format!(
        ".jail-review-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Removes (dir, name): a file, symlink or a whole directory tree,
/// walked by fds without following symlinks.
fn remove_at(
    dir: &OwnedFd,
    name: &OsStr,
    st: Option<&FileStat>,
    rel: &Path,
) -> Result<(), ApplyError> {
    match st {
        None => Ok(()),
        Some(s) if is_dir(s) => remove_tree_at(dir, name).map_err(|e| io("cannot remove", rel, e)),
        Some(_) => match unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(e) => Err(io("cannot remove", rel, e)),
        },
    }
}

fn remove_tree_at(dir: &OwnedFd, name: &OsStr) -> Result<(), Errno> {
    let d = open_dir(dir, name)?;
    let mut names = Vec::new();
    {
        let mut listing = nix::dir::Dir::from_fd(d.try_clone().map_err(|_| Errno::EMFILE)?)?;
        for e in listing.iter() {
            let e = e?;
            let n = e.file_name().to_bytes();
            if n != b"." && n != b".." {
                names.push(OsStr::from_bytes(n).to_os_string());
            }
        }
    }
    for n in names {
        match lstat_at(&d, &n)? {
            Some(s) if is_dir(&s) => remove_tree_at(&d, &n)?,
            Some(_) => unlinkat(&d, n.as_os_str(), UnlinkatFlags::NoRemoveDir)?,
            None => {}
        }
    }
    unlinkat(dir, name, UnlinkatFlags::RemoveDir)
}

/// chmod of (dir, name) without following a symlink there.
fn chmod_at(dir: &OwnedFd, name: &OsStr, mode: u32, rel: &Path) -> Result<(), ApplyError> {
    let fd = openat(
        dir,
        name,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io("cannot open", rel, e))?;
    let st = nix::sys::stat::fstat(&fd).map_err(|e| io("cannot inspect", rel, e))?;
    if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
        return Err(ApplyError::Conflict(format!(
            "{} is a symlink on the host now",
            rel.display()
        )));
    }
    // An O_PATH fd cannot be fchmod'ed; its /proc path names exactly the
    // object it holds (no new lookup of the project's path).
    let p = format!("/proc/self/fd/{}", fd.as_raw_fd());
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&p, fs::Permissions::from_mode(mode))
        .map_err(|e| io("cannot set the mode of", rel, e))
}

/// overlayfs's own attributes (user.overlay.*) mean nothing in the
/// project; a file capability is never carried over.
fn strip_xattrs(p: &Path) {
    for name in crate::sys::llistxattr(p).unwrap_or_default() {
        let b = name.as_bytes();
        if b.starts_with(b"user.overlay.") || b == b"security.capability" {
            let _ = crate::sys::lremovexattr(p, &name);
        }
    }
}

/// Copies `src` to a new file `name` in `dir` (mode `mode`): only the
/// data regions are read and written, so a sparse file stays sparse
/// (a terabyte-sized hole costs nothing).
fn copy_keeping_holes(src: &Path, dir: &OwnedFd, name: &OsStr, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    // Upper files may be unreadable (mode 000): the user owns them.
    fs::set_permissions(src, fs::Permissions::from_mode(0o600))?;
    let input = fs::File::open(src)?;
    let out: fs::File = openat(
        dir,
        name,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )?
    .into();
    let result = (|| {
        crate::outside::quarantine::copy_extents(&input, &out)?;
        out.set_permissions(fs::Permissions::from_mode(mode))?;
        out.sync_all()
    })();
    if result.is_err() {
        let _ = unlinkat(dir, name, UnlinkatFlags::NoRemoveDir);
    }
    result
}

/// Removes an upper entry (file, symlink, whiteout, empty directory).
pub fn remove_upper(p: &Path) {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => {
            let _ = fs::remove_dir(p);
        }
        Ok(_) => {
            let _ = fs::remove_file(p);
        }
        Err(_) => {}
    }
}

/// Throws a change away: its entries leave upper (a directory's mode
/// goes back to the host's, so it is not shown again).
pub fn discard(c: &Change, upper: &Path) {
    let up = upper.join(&c.rel);
    match &c.kind {
        Kind::Mode if c.new.as_ref().is_some_and(|n| n.ty == Type::Dir) => {
            if let Some(o) = &c.old {
                use std::os::unix::fs::PermissionsExt;
                let _ = fs::set_permissions(&up, fs::Permissions::from_mode(o.mode));
            }
        }
        Kind::Renamed { from } => {
            remove_upper(&up);
            if Node::at(&upper.join(from)).is_some_and(|n| n.ty == Type::Whiteout) {
                remove_upper(&upper.join(from));
            }
        }
        // A deletion implied by an opaque directory has no entry; the
        // marker goes once nothing in that directory is kept (`prune`).
        _ => remove_upper(&up),
    }
}

/// Moves a blocked change's content out of upper into `quarantine`
/// (relative layout kept); nothing is deleted that was not moved.
pub fn quarantine(c: &Change, upper: &Path, quarantine: &Path) -> std::io::Result<Option<PathBuf>> {
    let up = upper.join(&c.rel);
    match Node::at(&up) {
        None => Ok(None),
        Some(n) if n.ty == Type::Whiteout => {
            remove_upper(&up);
            Ok(None)
        }
        Some(_) => {
            let to = quarantine.join(&c.rel);
            if let Some(p) = to.parent() {
                fs::create_dir_all(p)?;
            }
            match fs::rename(&up, &to) {
                Ok(()) => Ok(Some(to)),
                Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
                    fs::copy(&up, &to)?;
                    fs::remove_file(&up)?;
                    Ok(Some(to))
                }
                Err(e) => Err(e),
            }
        }
    }
}

/// Removes the directories of upper that hold nothing any more (but not
/// `keep`, nor what holds it), bottom-up; an opaque directory whose
/// implied deletions were all decided loses its mark. Returns whether
/// upper is empty.
pub fn prune(upper: &Path, keep: &[PathBuf]) -> bool {
    fn walk(dir: &Path, rel: &Path, keep: &[PathBuf]) -> bool {
        let mut empty = true;
        for e in fs::read_dir(dir).into_iter().flatten().flatten() {
            let r = rel.join(e.file_name());
            let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
            if is_dir && walk(&e.path(), &r, keep) && !keep.iter().any(|k| k.starts_with(&r)) {
                let _ = fs::remove_dir(e.path());
                continue;
            }
            empty = false;
        }
        if !rel.as_os_str().is_empty() && !keep.iter().any(|k| k.starts_with(rel) && k != rel) {
            let _ = crate::sys::lremovexattr(dir, c"user.overlay.opaque");
        }
        empty
    }
    walk(upper, Path::new(""), keep)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testutil::Tmp;

    fn tmp(name: &str) -> Tmp {
        let t = Tmp::new(&format!("apply-{name}"));
        for d in ["project", "upper", "outside"] {
            fs::create_dir_all(t.0.join(d)).unwrap();
        }
        t
    }

    fn added(rel: &str, upper: &Path) -> Change {
        Change {
            rel: rel.into(),
            kind: Kind::Added,
            new: Node::at(&upper.join(rel)),
            old: None,
            entries: 0,
            conflict: None,
            block: None,
        }
    }

    #[test]
    fn a_symlink_on_the_way_is_never_followed_even_if_the_scan_missed_it() {
        let t = tmp("symlink");
        let (project, upper, outside) =
            (t.0.join("project"), t.0.join("upper"), t.0.join("outside"));
        fs::create_dir_all(upper.join("d/e")).unwrap();
        fs::write(upper.join("d/e/x"), "planted").unwrap();
        let c = added("d/e/x", &upper);
        // The host's d became a symlink after the scan.
        std::os::unix::fs::symlink(&outside, project.join("d")).unwrap();
        let host = Host::open(&project, 0).unwrap();
        match host.apply(&c, &upper, true) {
            Err(ApplyError::Conflict(why)) => assert!(why.contains("symlink"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert!(!outside.join("e").exists(), "nothing created outside");
        assert!(upper.join("d/e/x").exists(), "the change stays for later");
    }

    #[test]
    fn a_host_change_after_the_start_is_a_conflict_unless_forced() {
        let t = tmp("conflict");
        let (project, upper) = (t.0.join("project"), t.0.join("upper"));
        fs::write(project.join("f"), "host").unwrap();
        fs::write(upper.join("f"), "jail").unwrap();
        let mut c = added("f", &upper);
        c.kind = Kind::Modified;
        c.old = Node::at(&project.join("f"));
        // `since` before the host file's ctime: it changed meanwhile.
        let host = Host::open(&project, 0).unwrap();
        assert!(matches!(
            host.apply(&c, &upper, false),
            Err(ApplyError::Conflict(_))
        ));
        assert_eq!(fs::read_to_string(project.join("f")).unwrap(), "host");
        host.apply(&c, &upper, true).unwrap();
        assert_eq!(fs::read_to_string(project.join("f")).unwrap(), "jail");
        assert!(!upper.join("f").exists(), "moved out of upper");
        // A `since` after it: an ordinary modification.
        fs::write(upper.join("f"), "again").unwrap();
        let later = Host::open(&project, i128::MAX).unwrap();
        later.apply(&c, &upper, false).unwrap();
        assert_eq!(fs::read_to_string(project.join("f")).unwrap(), "again");
    }

    #[test]
    fn copies_keep_holes_and_drop_setuid() {
        let t = tmp("holes");
        let (project, upper) = (t.0.join("project"), t.0.join("upper"));
        let src = upper.join("sparse");
        let f = fs::File::create(&src).unwrap();
        f.set_len(8 << 30).unwrap();
        use std::os::unix::fs::FileExt;
        f.write_at(b"data", 1 << 30).unwrap();
        drop(f);
        let dir: OwnedFd = fs::File::open(&project).unwrap().into();
        copy_keeping_holes(&src, &dir, OsStr::new("copy"), 0o755).unwrap();
        use std::os::unix::fs::MetadataExt;
        let m = fs::metadata(project.join("copy")).unwrap();
        assert_eq!(m.len(), 8 << 30);
        assert!(m.blocks() * 512 < 1 << 20, "{} blocks", m.blocks());
        assert_eq!(m.mode() & 0o7777, 0o755);
        let mut buf = [0u8; 4];
        fs::File::open(project.join("copy"))
            .unwrap()
            .read_exact_at(&mut buf, 1 << 30)
            .unwrap();
        assert_eq!(&buf, b"data");
        let n = Node {
            mode: 0o4755,
            ..Node::at(&src).unwrap()
        };
        assert_eq!(safe_mode(&n), 0o755);
    }

    #[test]
    fn deleting_a_tree_removes_only_what_is_inside() {
        let t = tmp("tree");
        let (project, upper, outside) =
            (t.0.join("project"), t.0.join("upper"), t.0.join("outside"));
        fs::create_dir_all(project.join("gone/sub")).unwrap();
        fs::write(project.join("gone/sub/f"), "x").unwrap();
        fs::write(outside.join("precious"), "keep").unwrap();
        std::os::unix::fs::symlink(&outside, project.join("gone/link")).unwrap();
        let c = Change {
            rel: "gone".into(),
            kind: Kind::Deleted,
            new: None,
            old: Node::at(&project.join("gone")),
            entries: 3,
            conflict: None,
            block: None,
        };
        Host::open(&project, i128::MAX)
            .unwrap()
            .apply(&c, &upper, false)
            .unwrap();
        assert!(!project.join("gone").exists());
        assert_eq!(
            fs::read_to_string(outside.join("precious")).unwrap(),
            "keep"
        );
    }
}

//! Run by the guard (and by review when it keeps a copy): moving what a
//! jail created into ~/.local/state/jail/quarantine/, from outside the
//! jail, once every process of the jail is gone. Nothing is
//! deleted that was not first kept: a rename where it can, else a copy
//! then removal. The copy never opens a FIFO, socket or device (they are
//! made again, empty, as what they are), never blocks, and copies only a
//! file's data extents, so a sparse file stays sparse.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Moves each path under `dest`, keeping its layout relative to `base`
/// (paths outside `base` go under `dest/_abs/`). `roots` are the areas
/// the jail could write: nothing outside them is moved or copied, as a
/// parent may have been made a symlink leading out. Returns what moved
/// and what could not.
pub fn quarantine(
    base: &Path,
    roots: &[PathBuf],
    paths: &[PathBuf],
    dest: &Path,
) -> (Vec<PathBuf>, Vec<(PathBuf, io::Error)>) {
    let (mut moved, mut failed) = (Vec::new(), Vec::new());
    let roots: Vec<PathBuf> = roots
        .iter()
        .map(|r| fs::canonicalize(r).unwrap_or_else(|_| r.clone()))
        .collect();
    for p in paths {
        match quarantine_one(base, &roots, p, dest) {
            Ok(()) => moved.push(p.clone()),
            Err(e) => failed.push((p.clone(), e)),
        }
    }
    (moved, failed)
}

/// Where `p` goes under `dest`.
pub fn destination(base: &Path, p: &Path, dest: &Path) -> PathBuf {
    match p.strip_prefix(base) {
        Ok(rel) => dest.join(rel),
        Err(_) => dest.join("_abs").join(p.strip_prefix("/").unwrap_or(p)),
    }
}

fn quarantine_one(base: &Path, roots: &[PathBuf], p: &Path, dest: &Path) -> io::Result<()> {
    let parent_inside = p
        .parent()
        .and_then(|d| fs::canonicalize(d).ok())
        .is_some_and(|d| roots.iter().any(|r| d.starts_with(r)));
    if !parent_inside {
        return Err(io::Error::other(
            "it leads out of the jail's writable areas through a symlink",
        ));
    }
    let to = destination(base, p, dest);
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent)?;
    }
    move_path(p, &to)
}

/// Keeps a copy of `from` under `to` without removing it (a watched file
/// whose entries are put back).
pub fn keep_copy(from: &Path, to: &Path) -> io::Result<()> {
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent)?;
    }
    copy_tree(from, to)
}

pub fn move_path(from: &Path, to: &Path) -> io::Result<()> {
    match fs::rename(from, to) {
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
            copy_tree(from, to)?;
            remove_tree(from)
        }
        r => r,
    }
}

fn cstr(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

pub fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    let m = fs::symlink_metadata(from)?;
    let ft = m.file_type();
    let mode = m.mode() & 0o777; // never setuid/setgid/sticky
    if ft.is_symlink() {
        std::os::unix::fs::symlink(fs::read_link(from)?, to)
    } else if ft.is_dir() {
        fs::create_dir(to)?;
        for e in fs::read_dir(from)? {
            let e = e?;
            copy_tree(&e.path(), &to.join(e.file_name()))?;
        }
        fs::set_permissions(to, fs::Permissions::from_mode(mode | 0o700))
    } else if ft.is_file() {
        copy_file(from, to, mode)
    } else {
        // FIFO, socket, device: never opened (a FIFO would block, a device
        // could be anything); made again as an empty node of its kind, or
        // for a device (which a jail cannot create) a note.
        let kind = if ft.is_fifo() {
            Some(libc::S_IFIFO)
        } else if ft.is_socket() {
            Some(libc::S_IFSOCK)
        } else {
            None
        };
        match kind {
            Some(k) => {
                let c = cstr(to)?;
                // SAFETY: mknod on a valid C string, no device number.
                if unsafe { libc::mknod(c.as_ptr(), k | mode, 0) } != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            }
            None => fs::write(
                to.with_extension("device-not-copied"),
                format!("{}: a device node, not copied\n", from.display()),
            ),
        }
    }
}

/// Copies a regular file's data extents only (SEEK_DATA/SEEK_HOLE), then
/// sets its length: the copy holds no more bytes than the original.
fn copy_file(from: &Path, to: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let src = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(from)?;
    if !src.metadata()?.is_file() {
        return Err(io::Error::other("changed type while being copied"));
    }
    let dst = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode | 0o600)
        .open(to)?;
    copy_extents(&src, &dst)
}

/// Copies `src`'s data extents into `dst` at the same offsets, then sets
/// `dst`'s length: holes stay holes, so no more bytes are written than
/// the file holds. Where the filesystem cannot tell data from holes
/// (no SEEK_DATA), everything is copied.
pub fn copy_extents(src: &fs::File, dst: &fs::File) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let len = src.metadata()?.len();
    let mut buf = vec![0u8; 1 << 20];
    let mut pos: u64 = 0;
    while pos < len {
        let data = match seek_raw(src, pos as i64, libc::SEEK_DATA) {
            Ok(d) => d as u64,
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => break, // only a hole left
            Err(_) => pos,
        };
        let hole = seek_raw(src, data as i64, libc::SEEK_HOLE)
            .map(|h| h as u64)
            .unwrap_or(len);
        let mut at = data;
        while at < hole {
            let want = (hole - at).min(buf.len() as u64) as usize;
            let n = src.read_at(&mut buf[..want], at)?;
            if n == 0 {
                break;
            }
            dst.write_all_at(&buf[..n], at)?;
            at += n as u64;
        }
        pos = hole.max(data + 1);
    }
    dst.set_len(len)
}

fn seek_raw(f: &fs::File, off: i64, whence: libc::c_int) -> io::Result<i64> {
    use std::os::fd::AsRawFd;
    // SAFETY: lseek on an fd we own; no pointers.
    let r = unsafe { libc::lseek(f.as_raw_fd(), off, whence) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn remove_tree(p: &Path) -> io::Result<()> {
    if fs::symlink_metadata(p)?.is_dir() {
        fs::remove_dir_all(p)
    } else {
        fs::remove_file(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("jail-q-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        fs::canonicalize(&p).unwrap()
    }

    #[test]
    fn copies_keep_trees_links_and_sparseness_and_never_open_fifos() {
        let p = tmp("copy");
        fs::create_dir_all(p.join("a/b")).unwrap();
        fs::write(p.join("a/b/f"), "x").unwrap();
        std::os::unix::fs::symlink("b/f", p.join("a/l")).unwrap();
        let fifo = cstr(&p.join("a/fifo")).unwrap();
        // SAFETY: mkfifo on a valid C string.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        let sparse = fs::File::create(p.join("a/sparse")).unwrap();
        sparse.set_len(1 << 30).unwrap();
        drop(sparse);
        copy_tree(&p.join("a"), &p.join("c")).unwrap();
        remove_tree(&p.join("a")).unwrap();
        assert_eq!(fs::read_to_string(p.join("c/b/f")).unwrap(), "x");
        assert_eq!(fs::read_link(p.join("c/l")).unwrap(), PathBuf::from("b/f"));
        assert!(fs::symlink_metadata(p.join("c/fifo"))
            .unwrap()
            .file_type()
            .is_fifo());
        let m = fs::metadata(p.join("c/sparse")).unwrap();
        assert_eq!(m.len(), 1 << 30);
        assert!(
            m.blocks() * 512 < 1 << 20,
            "stays sparse: {} blocks",
            m.blocks()
        );
        fs::remove_dir_all(&p).unwrap();
    }

    #[test]
    fn nothing_outside_the_writable_areas_is_moved() {
        let p = tmp("outside");
        let proj = p.join("proj");
        fs::create_dir_all(p.join("elsewhere")).unwrap();
        fs::write(p.join("elsewhere/settings.json"), "victim").unwrap();
        fs::create_dir_all(&proj).unwrap();
        std::os::unix::fs::symlink(p.join("elsewhere"), proj.join(".claude")).unwrap();
        let target = proj.join(".claude/settings.json");
        let (moved, failed) =
            quarantine(&proj, std::slice::from_ref(&proj), &[target], &p.join("q"));
        assert!(moved.is_empty() && failed.len() == 1);
        assert_eq!(
            fs::read_to_string(p.join("elsewhere/settings.json")).unwrap(),
            "victim"
        );
        fs::remove_dir_all(&p).unwrap();
    }
}

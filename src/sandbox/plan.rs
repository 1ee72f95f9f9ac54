//! The mount plan: turns the filesystem policy of a `JailSpec` into an
//! ordered list of setup steps. It reads the host filesystem (existence,
//! symlinks, directory listings for hidden paths) but changes nothing, so it
//! runs before fork and is unit-tested on temporary directories.
//!
//! Paths in steps are jail paths (as seen inside); the executor prefixes
//! them with the staging locations of the old and new root.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::spec::{HomeMode, JailSpec, NetMode};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Step {
    /// A fresh tmpfs at `dest`.
    Tmpfs { dest: PathBuf, mode: u32 },
    /// Bind the host's `src` at `dest` (recursively), optionally read-only.
    Bind {
        src: PathBuf,
        dest: PathBuf,
        dir: bool,
        ro: bool,
    },
    /// A symlink at `link` pointing to `target`. Best effort: a mirror of
    /// the host's view, never needed for security.
    Symlink { target: PathBuf, link: PathBuf },
    /// A fresh procfs of the jail's pid namespace.
    Proc { dest: PathBuf },
    /// A private devpts instance (its own ptmx).
    Devpts { dest: PathBuf },
    /// A fresh read-only sysfs: shows the jail's own network namespace.
    Sysfs { dest: PathBuf },
    /// The jail's own cgroup (cgroup2 in its cgroup namespace), read-only.
    /// Best effort: only resource limits are read from it.
    Cgroup2 { dest: PathBuf },
    /// Make a mount (and its submounts) read-only: the last phase, so
    /// mount points could still be created under it.
    RemountRo { dest: PathBuf },
    /// A read-only file at `dest` holding `contents` (the jail's own
    /// resolv.conf). The bytes are written into the staging tmpfs inside
    /// the jail's mount namespace and bound from there: nothing is written
    /// on the host.
    File { dest: PathBuf, contents: Vec<u8> },
}

impl Step {
    pub fn dest(&self) -> &Path {
        match self {
            Step::Tmpfs { dest, .. }
            | Step::Bind { dest, .. }
            | Step::Proc { dest }
            | Step::Devpts { dest }
            | Step::Sysfs { dest }
            | Step::Cgroup2 { dest }
            | Step::RemountRo { dest }
            | Step::File { dest, .. } => dest,
            Step::Symlink { link, .. } => link,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Step::Tmpfs { dest, .. } => format!("mount a tmpfs at {}", dest.display()),
            Step::Bind { src, dest, ro, .. } => format!(
                "bind {} at {}{}",
                src.display(),
                dest.display(),
                if *ro { " read-only" } else { "" }
            ),
            Step::Symlink { target, link } => {
                format!("symlink {} -> {}", link.display(), target.display())
            }
            Step::Proc { dest } => format!("mount a fresh /proc at {}", dest.display()),
            Step::Devpts { dest } => format!("mount a private devpts at {}", dest.display()),
            Step::Sysfs { dest } => format!("mount a fresh read-only sysfs at {}", dest.display()),
            Step::Cgroup2 { dest } => format!("mount the jail's cgroup at {}", dest.display()),
            Step::RemountRo { dest } => format!("make {} read-only", dest.display()),
            Step::File { dest, contents } => format!(
                "write jail's own {} ({} bytes, read-only)",
                dest.display(),
                contents.len()
            ),
        }
    }
}

/// Devices every jail gets (bound from the host when present).
pub const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

/// GPU device nodes bound with `--gpu` (globbed by prefix in /dev).
const GPU_PREFIXES: &[&str] = &["nvidia", "kfd"];
const GPU_DIRS: &[&str] = &["/dev/dri", "/dev/nvidia-caps"];

#[derive(Debug, Default)]
pub struct Plan {
    pub steps: Vec<Step>,
    /// The project's protected paths and how each started.
    pub protected: Vec<super::protect::Protected>,
}

/// One request to make a host path visible.
#[derive(Debug, Clone)]
struct Visible {
    /// The path as named (jail path).
    literal: PathBuf,
    /// Where it really is on the host.
    canonical: PathBuf,
    dir: bool,
    ro: bool,
}

impl Visible {
    /// A host system directory shown read-only where it is.
    fn system_dir(p: &Path) -> Visible {
        Visible {
            literal: p.to_path_buf(),
            canonical: p.to_path_buf(),
            dir: true,
            ro: true,
        }
    }
}

pub fn plan(spec: &JailSpec) -> Plan {
    let mut early = Vec::new();
    let home = &spec.user.home;

    // Top-level system view. Symlinked dirs (merged /usr) stay symlinks.
    let mut visible = Vec::new();
    for p in &spec.filesystem.system_ro {
        match fs::symlink_metadata(p) {
            Ok(m) if m.file_type().is_symlink() => {
                if let Ok(t) = fs::read_link(p) {
                    early.push(Step::Symlink {
                        target: t,
                        link: p.clone(),
                    });
                }
            }
            Ok(m) if m.is_dir() => visible.push(Visible::system_dir(p)),
            _ => {}
        }
    }
    early.push(Step::Tmpfs {
        dest: "/tmp".into(),
        mode: 0o1777,
    });
    early.push(Step::Tmpfs {
        dest: "/var/tmp".into(),
        mode: 0o1777,
    });
    early.push(Step::Symlink {
        target: "../run".into(),
        link: "/var/run".into(),
    });
    early.push(Step::Symlink {
        target: "../run/lock".into(),
        link: "/var/lock".into(),
    });
    early.push(Step::Tmpfs {
        dest: "/run".into(),
        mode: 0o755,
    });
    // systemd-resolved's directory holds its varlink socket, a resolver
    // outside the jail (a DNS channel out): only `host` sees it. The other
    // modes get a resolv.conf of their own that names jail's helper.
    if spec.network.mode.value == NetMode::Host && Path::new("/run/systemd/resolve").is_dir() {
        visible.push(Visible::system_dir(Path::new("/run/systemd/resolve")));
    }
    dev_steps(&mut early, spec.gpu.value);
    early.push(Step::Proc {
        dest: "/proc".into(),
    });
    if spec.network.mode.value == NetMode::Host {
        // sysfs can only be mounted afresh by the owner of the network
        // namespace; sharing the host's, bind the host's view instead.
        visible.push(Visible::system_dir(Path::new("/sys")));
    } else {
        early.push(Step::Sysfs {
            dest: "/sys".into(),
        });
        early.push(Step::Cgroup2 {
            dest: "/sys/fs/cgroup".into(),
        });
    }

    match spec.filesystem.home.value {
        HomeMode::Tmpfs => early.push(Step::Tmpfs {
            dest: home.clone(),
            mode: 0o700,
        }),
        mode => {
            if let Some(v) = visible_path(home, mode == HomeMode::Ro) {
                visible.push(v);
            }
        }
    }
    for s in &spec.filesystem.ro {
        visible.extend(visible_path(&s.value, true));
    }
    for s in &spec.filesystem.rw {
        visible.extend(visible_path(&s.value, false));
    }
    visible.extend(visible_path(&spec.project.value, false));

    // Hidden paths that exist: by the name given and by where they lead.
    let mut hidden = BTreeSet::new();
    for h in &spec.filesystem.hide {
        if fs::symlink_metadata(&h.value).is_ok() {
            hidden.insert(h.value.clone());
            if let Ok(c) = fs::canonicalize(&h.value) {
                hidden.insert(c);
            }
        }
    }

    let mut binds = Vec::new();
    let mut late = Vec::new();
    let dests: Vec<PathBuf> = visible.iter().map(|v| v.canonical.clone()).collect();
    for v in &visible {
        if hidden.contains(&v.canonical) || hidden.contains(&v.literal) {
            continue; // a hidden path never shows, even when named
        }
        // Holes this bind must punch: hidden paths below it that no deeper
        // bind covers (that bind punches its own).
        let holes: Vec<PathBuf> = hidden
            .iter()
            .filter_map(|h| h.strip_prefix(&v.canonical).ok().map(|r| (h, r)))
            .filter(|(h, r)| {
                !r.as_os_str().is_empty()
                    && !dests.iter().any(|d| {
                        d != &v.canonical && d.starts_with(&v.canonical) && h.starts_with(d)
                    })
            })
            .map(|(_, r)| r.to_path_buf())
            .collect();
        bind_with_holes(
            &mut binds,
            &mut late,
            &v.canonical,
            &v.canonical,
            v.dir,
            v.ro,
            &holes,
        );
        if v.literal != v.canonical {
            binds.push(Step::Symlink {
                target: v.canonical.clone(),
                link: v.literal.clone(),
            });
        }
    }

    let rw: Vec<PathBuf> = spec.filesystem.rw.iter().map(|s| s.value.clone()).collect();
    let protected = super::protect::survey(&spec.project.value, &rw);
    binds.extend(super::protect::steps(&spec.project.value, &protected));

    // Parents before children; ties keep plan order (tmpfs before its binds).
    let mut steps = early;
    steps.extend(binds);
    steps.sort_by_cached_key(|s| s.dest().components().count());
    // Files jail writes itself go over whatever the binds put there.
    steps.extend(super::net::file_steps(&spec.network));
    late.push(Step::RemountRo { dest: "/".into() });
    steps.extend(late);
    Plan { steps, protected }
}

fn visible_path(p: &Path, ro: bool) -> Option<Visible> {
    let canonical = fs::canonicalize(p).ok()?;
    let dir = canonical.is_dir();
    Some(Visible {
        literal: p.to_path_buf(),
        canonical,
        dir,
        ro,
    })
}

/// Binds `src` at `dest`; when hidden paths lie below, `dest` becomes a
/// read-only tmpfs holding binds of every entry but the hidden ones, so a
/// hidden path is truly absent (ENOENT) while its siblings stay as they are.
fn bind_with_holes(
    steps: &mut Vec<Step>,
    late: &mut Vec<Step>,
    src: &Path,
    dest: &Path,
    dir: bool,
    ro: bool,
    holes: &[PathBuf],
) {
    if holes.is_empty() || !dir {
        steps.push(Step::Bind {
            src: src.into(),
            dest: dest.into(),
            dir,
            ro,
        });
        return;
    }
    let Ok(entries) = fs::read_dir(src) else {
        // Unreadable: its entries cannot be listed, so show it empty and
        // read-only rather than risk exposing the hidden path below.
        steps.push(Step::Tmpfs {
            dest: dest.into(),
            mode: 0o755,
        });
        late.push(Step::RemountRo { dest: dest.into() });
        return;
    };
    steps.push(Step::Tmpfs {
        dest: dest.into(),
        mode: mode_of(src),
    });
    let mut names: Vec<_> = entries.flatten().map(|e| e.file_name()).collect();
    names.sort();
    for name in names {
        let (s, d) = (src.join(&name), dest.join(&name));
        if holes.iter().any(|h| h.as_os_str() == name) {
            continue;
        }
        let below: Vec<PathBuf> = holes
            .iter()
            .filter_map(|h| h.strip_prefix(&name).ok())
            .filter(|r| !r.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .collect();
        match fs::symlink_metadata(&s) {
            Ok(m) if m.file_type().is_symlink() => {
                if let Ok(t) = fs::read_link(&s) {
                    steps.push(Step::Symlink { target: t, link: d });
                }
            }
            Ok(m) => bind_with_holes(steps, late, &s, &d, m.is_dir(), ro, &below),
            Err(_) => {}
        }
    }
    late.push(Step::RemountRo { dest: dest.into() });
}

fn mode_of(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o755)
}

fn dev_steps(steps: &mut Vec<Step>, gpu: bool) {
    steps.push(Step::Tmpfs {
        dest: "/dev".into(),
        mode: 0o755,
    });
    for d in DEVICES {
        let p = Path::new("/dev").join(d);
        if p.exists() {
            steps.push(Step::Bind {
                src: p.clone(),
                dest: p,
                dir: false,
                ro: false,
            });
        }
    }
    steps.push(Step::Devpts {
        dest: "/dev/pts".into(),
    });
    steps.push(Step::Symlink {
        target: "pts/ptmx".into(),
        link: "/dev/ptmx".into(),
    });
    steps.push(Step::Tmpfs {
        dest: "/dev/shm".into(),
        mode: 0o1777,
    });
    steps.push(Step::Symlink {
        target: "/proc/self/fd".into(),
        link: "/dev/fd".into(),
    });
    for (i, n) in ["stdin", "stdout", "stderr"].iter().enumerate() {
        steps.push(Step::Symlink {
            target: format!("/proc/self/fd/{i}").into(),
            link: Path::new("/dev").join(n),
        });
    }
    if gpu {
        let mut nodes: Vec<PathBuf> = fs::read_dir("/dev")
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| {
                GPU_PREFIXES
                    .iter()
                    .any(|p| e.file_name().to_string_lossy().starts_with(p))
            })
            .map(|e| e.path())
            .collect();
        nodes.sort();
        for n in nodes {
            let dir = n.is_dir();
            steps.push(Step::Bind {
                src: n.clone(),
                dest: n,
                dir,
                ro: false,
            });
        }
        for d in GPU_DIRS {
            if Path::new(d).is_dir() {
                steps.push(Step::Bind {
                    src: d.into(),
                    dest: d.into(),
                    dir: true,
                    ro: false,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::resolve::{resolve, Catalogue, HostFacts, Request};
    use crate::config::spec::UserInfo;
    use std::os::unix::fs::symlink;

    struct Tmp(PathBuf);
    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
    fn tmp(name: &str) -> Tmp {
        let p = std::env::temp_dir().join(format!("jail-plan-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        Tmp(fs::canonicalize(&p).unwrap())
    }

    fn spec_for(root: &Path, req: Request) -> JailSpec {
        let facts = HostFacts {
            user: UserInfo {
                uid: 1,
                gid: 1,
                name: "u".into(),
                home: root.join("home"),
            },
            cwd: root.join("proj"),
            shell: "/bin/sh".into(),
            git_root: None,
            has_sbatch: false,
        };
        resolve(&req, &facts, &Catalogue::builtin().unwrap()).unwrap()
    }

    fn binds(p: &Plan) -> Vec<(PathBuf, bool)> {
        p.steps
            .iter()
            .filter_map(|s| match s {
                Step::Bind { dest, ro, .. } => Some((dest.clone(), *ro)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn parents_come_before_children() {
        let t = tmp("order");
        fs::create_dir_all(t.0.join("proj")).unwrap();
        fs::create_dir_all(t.0.join("home")).unwrap();
        let p = plan(&spec_for(
            &t.0,
            Request {
                command: vec!["true".into()],
                ..Default::default()
            },
        ));
        let pos = |pred: &dyn Fn(&Step) -> bool| p.steps.iter().position(pred).unwrap();
        let tmpfs_tmp =
            pos(&|s| matches!(s, Step::Tmpfs { dest, .. } if dest == Path::new("/tmp")));
        let proj = pos(&|s| matches!(s, Step::Bind { dest, .. } if dest == &t.0.join("proj")));
        let home = pos(&|s| matches!(s, Step::Tmpfs { dest, .. } if dest == &t.0.join("home")));
        assert!(tmpfs_tmp < proj && tmpfs_tmp < home, "{:#?}", p.steps);
        assert!(matches!(p.steps.last(), Some(Step::RemountRo { dest }) if dest == Path::new("/")));
        assert!(binds(&p).contains(&(PathBuf::from("/usr"), true)));
        assert!(binds(&p).contains(&(t.0.join("proj"), false)));
    }

    #[test]
    fn hidden_file_in_project_becomes_a_hole() {
        let t = tmp("hole");
        let proj = t.0.join("proj");
        fs::create_dir_all(proj.join("src/deep")).unwrap();
        fs::create_dir_all(t.0.join("home")).unwrap();
        fs::write(proj.join(".env"), "SECRET").unwrap();
        fs::write(proj.join("Makefile"), "").unwrap();
        fs::write(proj.join("src/deep/key"), "").unwrap();
        fs::write(proj.join("src/lib.rs"), "").unwrap();
        symlink("Makefile", proj.join("link")).unwrap();
        let req = Request {
            command: vec!["true".into()],
            hide: vec![".env".into(), "src/deep/key".into()],
            ..Default::default()
        };
        let p = plan(&spec_for(&t.0, req));
        let b = binds(&p);
        assert!(
            !b.iter().any(|(d, _)| d == &proj),
            "project is not bound whole: {b:?}"
        );
        assert!(b.contains(&(proj.join("Makefile"), false)));
        assert!(b.contains(&(proj.join("src/lib.rs"), false)));
        assert!(
            !b.iter()
                .any(|(d, _)| d.ends_with(".env") || d.ends_with("key")),
            "{b:?}"
        );
        assert!(p.steps.contains(&Step::Symlink {
            target: "Makefile".into(),
            link: proj.join("link")
        }));
        assert!(p.steps.contains(&Step::RemountRo {
            dest: proj.join("src/deep")
        }));
    }

    #[test]
    fn hidden_path_reached_through_a_symlinked_bind_is_still_hidden() {
        let t = tmp("symhide");
        let home = t.0.join("home");
        fs::create_dir_all(home.join("dotfiles/ssh")).unwrap();
        fs::write(home.join("dotfiles/ssh/id_ed25519"), "KEY").unwrap();
        fs::write(home.join("dotfiles/vimrc"), "").unwrap();
        symlink(home.join("dotfiles/ssh"), home.join(".ssh")).unwrap();
        fs::create_dir_all(t.0.join("proj")).unwrap();
        let req = Request {
            command: vec!["true".into()],
            ro: vec![home.join("dotfiles").display().to_string()],
            ..Default::default()
        };
        let p = plan(&spec_for(&t.0, req));
        let b = binds(&p);
        assert!(b.contains(&(home.join("dotfiles/vimrc"), true)), "{b:?}");
        assert!(
            !b.iter()
                .any(|(d, _)| d.starts_with(home.join("dotfiles/ssh"))),
            "{b:?}"
        );
    }

    #[test]
    fn missing_paths_are_skipped_and_symlinked_paths_mirrored() {
        let t = tmp("sym");
        let home = t.0.join("home");
        fs::create_dir_all(home.join("real")).unwrap();
        symlink(home.join("real"), home.join(".tool")).unwrap();
        fs::create_dir_all(t.0.join("proj")).unwrap();
        let req = Request {
            command: vec!["true".into()],
            rw: vec!["~/.tool".into(), "~/.missing".into()],
            ..Default::default()
        };
        let p = plan(&spec_for(&t.0, req));
        assert!(binds(&p).contains(&(home.join("real"), false)));
        assert!(p.steps.contains(&Step::Symlink {
            target: home.join("real"),
            link: home.join(".tool")
        }));
        assert!(!binds(&p).iter().any(|(d, _)| d.ends_with(".missing")));
    }

    #[test]
    fn gpu_flag_adds_only_existing_devices() {
        let mut steps = Vec::new();
        dev_steps(&mut steps, true);
        for s in &steps {
            if let Step::Bind { src, .. } = s {
                assert!(src.exists(), "{src:?}");
            }
        }
        assert!(steps.contains(&Step::Devpts {
            dest: "/dev/pts".into()
        }));
    }
}

//! The mount plan: turns the filesystem policy of a `JailSpec` into an
//! ordered list of setup steps. It reads the host filesystem (existence,
//! symlinks, directory listings for hidden paths) but changes nothing, so it
//! runs before fork and is unit-tested on temporary directories. Used by
//! the launcher (which executes it), `jail explain` (which prints it), the
//! guard and review (protected paths); it runs no process of its own.
//!
//! Paths in steps are jail paths (as seen inside); the executor prefixes
//! them with the staging locations of the old and new root.

pub mod git;
pub mod hide;
pub mod hostrun;
pub mod net;
pub mod protect;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::spec::{HomeMode, JailSpec, NetMode};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Step {
    /// The one tmpfs every `Tmpfs` step is a directory of, mounted where
    /// the jail is built and never shown itself: so what /tmp, /var/tmp,
    /// /dev/shm, /run, /dev and a tmpfs home hold together is bounded by
    /// `size` (bytes) and `inodes`. The first step when present.
    Scratch { size: u64, inodes: u64 },
    /// A fresh directory of the scratch tmpfs at `dest` (its own tmpfs
    /// when the plan has no `Scratch`), with `mode`.
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
    /// A hidden file in a writable directory: an empty, unreadable (mode
    /// 000), read-only file mounted over it. It exists (EACCES on open)
    /// and cannot be removed, while the directory stays writable.
    MaskFile { dest: PathBuf },
    /// The read-only host directory `src` shown at `dest` without the
    /// entries `names`: a read-only overlay with a layer of whiteouts, so
    /// each hidden entry is absent (ENOENT) at the cost of one mount.
    Whiteout {
        src: PathBuf,
        dest: PathBuf,
        names: Vec<std::ffi::OsString>,
        /// Files of jail's own in that top layer (path relative to `dest`,
        /// bytes), over the host's: a config layer only the jail sees.
        files: Vec<(PathBuf, Vec<u8>)>,
    },
    /// The host directory `lower` at `dest`, writable, with every write
    /// kept in `upper` (jail's own storage): a cache the program reads and
    /// adds to, while the host's copy is never written.
    Overlay {
        lower: PathBuf,
        upper: PathBuf,
        work: PathBuf,
        dest: PathBuf,
    },
    /// Review mode: before any other step, the host directory `lower` (the
    /// project), as the jail's setup sees it, becomes an overlay whose
    /// writes go to `upper` (host paths, all three). Every bind of a path
    /// in it then shows the overlay, so the plan needs no other change.
    ReviewOverlay {
        lower: PathBuf,
        upper: PathBuf,
        work: PathBuf,
    },
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
            | Step::MaskFile { dest }
            | Step::Whiteout { dest, .. }
            | Step::Overlay { dest, .. }
            | Step::File { dest, .. } => dest,
            Step::Symlink { link, .. } => link,
            Step::ReviewOverlay { lower, .. } => lower,
            Step::Scratch { .. } => Path::new("/"),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Step::Scratch { size, inodes } => format!(
                "mount the jail's tmpfs ({}, {inodes} inodes) that holds every tmpfs directory below",
                crate::config::limits::show_size(*size)
            ),
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
            Step::MaskFile { dest } => format!("mask {} (empty, unreadable)", dest.display()),
            Step::Overlay { lower, upper, .. } => format!(
                "show {} with its writes kept in {}",
                lower.display(),
                upper.display()
            ),
            Step::ReviewOverlay { lower, upper, .. } => format!(
                "make {} an overlay for review mode (its changes go to {})",
                lower.display(),
                upper.display()
            ),
            Step::File { dest, contents } => format!(
                "write jail's own {} ({} bytes, read-only)",
                dest.display(),
                contents.len()
            ),
            Step::Whiteout {
                dest, names, files, ..
            } => {
                let mut what = Vec::new();
                if !names.is_empty() {
                    what.push(format!(
                        "without {}",
                        names
                            .iter()
                            .map(|n| n.to_string_lossy().into_owned())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
                for (f, _) in files {
                    what.push(format!("with jail's own {}", dest.join(f).display()));
                }
                format!("show {} {}", dest.display(), what.join(" and "))
            }
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
    pub protected: Vec<protect::Protected>,
    /// How each hidden path that exists is hidden (for `jail explain`).
    pub hidden: Vec<(PathBuf, hide::Hiding)>,
    /// The project repository's git directories known at start.
    pub gitdirs: Vec<PathBuf>,
    /// The host directories the jail can write (the project first).
    pub writable: Vec<PathBuf>,
    /// Watched files whose trust entries jail keeps for jailed runs
    /// (`protect::KEPT`): (the file, the profile's storage).
    pub kept: Vec<(PathBuf, PathBuf)>,
    /// Variables for the program that tell a jailed agent of trust kept
    /// that way (`protect::Via::Env`).
    pub env: Vec<(String, String)>,
}

impl Plan {
    /// Shows the terminal the jail runs on (the host's `tty`, e.g.
    /// /dev/pts/3, from the launcher's stdio) at /dev/console, as
    /// bubblewrap does. The jail's private devpts does not hold the host's
    /// pty, so without this `tty` and ttyname(3) answer "not a tty" inside,
    /// and GPG_TTY=$(tty) breaks. The program holds the terminal already
    /// (stdin/stdout); reopening it by name gives it nothing more, and
    /// TIOCSTI stays refused by seccomp whatever the fd.
    pub fn add_console(&mut self, tty: &Path) {
        let at = self
            .steps
            .iter()
            .position(|s| matches!(s, Step::Devpts { .. }))
            .map_or(self.steps.len(), |i| i + 1);
        self.steps.insert(
            at,
            Step::Bind {
                src: tty.into(),
                dest: "/dev/console".into(),
                dir: false,
                ro: false,
            },
        );
    }

    /// A Slurm step's tasks on one node share `dir` (a private directory
    /// of the user's on the node's /dev/shm, made by the job launcher) as
    /// their /dev/shm instead of each having its own: MPI ranks of a node
    /// map each other's shared-memory segments there.
    pub fn share_shm(&mut self, dir: &Path) {
        for s in &mut self.steps {
            if matches!(s, Step::Tmpfs { dest, .. } if dest == Path::new("/dev/shm")) {
                *s = Step::Bind {
                    src: dir.into(),
                    dest: "/dev/shm".into(),
                    dir: true,
                    ro: false,
                };
            }
        }
    }
}

/// Review mode: where the project's overlay keeps its changes (host
/// paths in jail's state, never visible inside a jail; a session of
/// `review::Session`).
#[derive(Debug, Clone)]
pub struct OverlayDirs {
    pub upper: PathBuf,
    pub work: PathBuf,
}

/// The steps a run executes: the policy's plan, the console when jail
/// runs on a terminal (`tty`), and, in review mode, the overlay of the
/// project (first: every later bind of a project path then shows the
/// overlay). The launcher runs it and `jail explain` prints it, so what
/// explain shows is what runs.
pub fn for_run(spec: &JailSpec, tty: Option<&Path>, review: Option<&OverlayDirs>) -> Plan {
    let mut plan = plan(spec);
    if let Some(tty) = tty {
        plan.add_console(tty);
    }
    if let Some(o) = review {
        plan.steps.insert(
            0,
            Step::ReviewOverlay {
                lower: spec.project.value.clone(),
                upper: o.upper.clone(),
                work: o.work.clone(),
            },
        );
    }
    plan
}

/// Every step of a plan, one a line, for `jail explain -v`.
pub fn explain_steps(plan: &Plan) -> String {
    let mut o = String::from("[steps]\n");
    for s in &plan.steps {
        o.push_str("  ");
        o.push_str(&s.describe());
        o.push('\n');
    }
    o
}

/// One request to make a host path visible.
#[derive(Debug, Clone)]
pub(super) struct Visible {
    /// The path as named (jail path).
    pub(super) literal: PathBuf,
    /// Where it really is on the host.
    pub(super) canonical: PathBuf,
    pub(super) dir: bool,
    pub(super) ro: bool,
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
    crate::host::with_canonical_cache(|| plan_uncached(spec))
}

fn plan_uncached(spec: &JailSpec) -> Plan {
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

    let storage = spec.filesystem.storage.as_deref();
    match (spec.filesystem.home.value, storage) {
        (HomeMode::Persist, Some(st)) => early.push(Step::Bind {
            src: crate::storage::home_dir(st),
            dest: home.clone(),
            dir: true,
            ro: false,
        }),
        (HomeMode::Tmpfs | HomeMode::Persist, _) => early.push(Step::Tmpfs {
            dest: home.clone(),
            mode: 0o700,
        }),
        (mode, _) => {
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
    let project = &spec.project.value;
    // `--ro PROJECT` (or `ro = ["."]`) makes the project read-only.
    let project_ro = spec.filesystem.ro.iter().any(|r| &r.value == project);
    visible.retain(|v| &v.literal != project);
    visible.extend(visible_path(project, project_ro));
    // A worktree made on the host: its `.git` file names a git directory
    // in the main repository; that repository's git directory is shown
    // read-write (objects, refs, index), its control files protected.
    let worktree_common = worktree_common_dir(project);
    if let Some(c) = &worktree_common {
        visible.extend(visible_path(c, false));
    }

    // Hidden paths that exist: by the name given and by where they lead.
    let mut hidden = BTreeSet::new();
    for h in &spec.filesystem.hide {
        if fs::symlink_metadata(&h.value).is_ok() {
            hidden.insert(h.value.clone());
            if let Ok(c) = crate::host::canonical(&h.value) {
                hidden.insert(c);
            }
        }
    }

    let mut binds = Vec::new();
    let mut late = Vec::new();
    let visible: Vec<Visible> = visible
        .into_iter()
        // A hidden path never shows, even when named.
        .filter(|v| !hidden.contains(&v.canonical) && !hidden.contains(&v.literal))
        .collect();
    for v in &visible {
        binds.push(Step::Bind {
            src: v.canonical.clone(),
            dest: v.canonical.clone(),
            dir: v.dir,
            ro: v.ro,
        });
        if v.literal != v.canonical {
            binds.push(Step::Symlink {
                target: v.canonical.clone(),
                link: v.literal.clone(),
            });
        }
    }
    let overlay = hide::overlay_usable();
    let mut hiding = hide::place(&hidden, &visible, overlay);
    let (kept, env) = match storage {
        Some(st) => kept_trust(spec, st, &visible, &mut hiding, overlay),
        None => Default::default(),
    };
    hiding.steps(&mut binds, &mut late);
    if let (HomeMode::Persist, Some(st)) = (spec.filesystem.home.value, storage) {
        // The persistent home is jail's own, but it must not hold what the
        // profile hides either (another agent's login run under this one).
        for h in &spec.filesystem.hide {
            let Ok(rel) = h.value.strip_prefix(home) else {
                continue;
            };
            match fs::symlink_metadata(crate::storage::home_dir(st).join(rel)) {
                Ok(m) if m.is_dir() => {
                    binds.push(Step::Tmpfs {
                        dest: h.value.clone(),
                        mode: 0,
                    });
                    late.push(Step::RemountRo {
                        dest: h.value.clone(),
                    });
                }
                Ok(_) => binds.push(Step::MaskFile {
                    dest: h.value.clone(),
                }),
                Err(_) => continue,
            }
            hiding.report.push((h.value.clone(), hide::Hiding::Masked));
        }
    }
    if let Some(st) = storage {
        binds.extend(cache_steps(spec, st, &visible, &hidden, overlay));
        for o in &spec.filesystem.own {
            if hidden.contains(&o.value) || visible.iter().any(|v| v.literal == o.value) {
                continue;
            }
            binds.push(Step::Bind {
                src: crate::storage::own_dir(st, &o.value),
                dest: o.value.clone(),
                dir: true,
                ro: false,
            });
        }
    }

    binds.extend(slurm_stubs(spec));

    let relaxed: Vec<PathBuf> = spec.filesystem.rw.iter().map(|s| s.value.clone()).collect();
    let writable: Vec<PathBuf> = visible
        .iter()
        .filter(|v| v.dir && !v.ro)
        .map(|v| v.canonical.clone())
        .collect();
    let extra: Vec<PathBuf> = spec
        .filesystem
        .protect
        .iter()
        .map(|s| s.value.clone())
        .collect();
    let watched: Vec<(PathBuf, Vec<String>)> = spec
        .filesystem
        .watch
        .iter()
        .map(|w| (w.file.clone(), w.keys.clone()))
        .collect();
    let global_git_configs = [
        home.join(".gitconfig"),
        home.join(".config/git/config"),
        PathBuf::from("/etc/gitconfig"),
    ];
    let survey = protect::survey(&protect::Areas {
        project,
        writable: &writable,
        relaxed: &relaxed,
        extra: &extra,
        watched: &watched,
        global_git_configs: &global_git_configs,
        home,
    });
    binds.extend(protect::steps(&survey.protected));

    // Parents before children; ties keep plan order (a bind before the
    // overlay or mask stacked on it).
    let mut steps = early;
    steps.extend(binds);
    steps.sort_by_cached_key(|s| s.dest().components().count());
    // Files jail writes itself go over whatever the binds put there.
    steps.extend(net::file_steps(&spec.network));
    late.push(Step::RemountRo { dest: "/".into() });
    steps.extend(late);
    // Resolved by the caller (`launcher::limits::tmpfs` probes how the
    // memory limit is enforced); unresolved, the limit is taken whole.
    let size = spec.limits.tmpfs.as_ref().map_or_else(
        || {
            crate::config::limits::tmpfs_size(spec.limits.memory.as_ref(), crate::sys::ram(), false)
                .value
        },
        |t| t.value,
    );
    steps.insert(
        0,
        Step::Scratch {
            size,
            inodes: crate::config::limits::tmpfs_inodes(size),
        },
    );
    Plan {
        steps,
        kept,
        env,
        protected: survey.protected,
        gitdirs: survey.gitdirs,
        writable,
        hidden: hiding.report,
    }
}

/// (watched file, the profile's storage) pairs, and variables to set.
type KeptTrust = (Vec<(PathBuf, PathBuf)>, Vec<(String, String)>);

/// What shows a jailed agent the trust it was given in earlier jailed
/// runs (`protect::KEPT`), for the files this profile watches for that
/// key: jail's own config file in an overlay of the read-only system
/// directory (never on the host), or a variable for the program. Returns
/// the files whose entries the guard keeps at exit, and the variables;
/// no file where the layer cannot be shown (the agent then asks again,
/// and the notice says how to keep the answer).
fn kept_trust(
    spec: &JailSpec,
    storage: &Path,
    visible: &[Visible],
    hiding: &mut hide::Placement,
    overlay: bool,
) -> KeptTrust {
    use protect::Via;
    let home = &spec.user.home;
    let project = &spec.project.value;
    let (mut out, mut env) = (Vec::new(), Vec::new());
    for k in protect::KEPT {
        let file = home.join(k.file);
        let key = format!("{}.*.{}", k.table, k.key);
        if !spec
            .filesystem
            .watch
            .iter()
            .any(|w| w.file == file && w.keys.contains(&key))
        {
            continue;
        }
        match k.via {
            Via::Env(_) => env.extend(k.env(storage, project, &spec.cwd)),
            Via::Layer(layer) => {
                if !overlay || !layer_shown(k, Path::new(layer), storage, project, visible, hiding)
                {
                    continue;
                }
            }
        }
        out.push((file, storage.to_path_buf()));
    }
    (out, env)
}

/// Shows the kept entries of `k` at `layer` in the jail; false where it
/// cannot be (no read-only system directory holds it, or the host's own
/// file there, an admin's, is not one jail can read and extend: the
/// jail's would hide it).
fn layer_shown(
    k: &protect::Kept,
    layer: &Path,
    storage: &Path,
    project: &Path,
    visible: &[Visible],
    hiding: &mut hide::Placement,
) -> bool {
    // The deepest read-only system directory that holds it.
    let Some(dir) = visible
        .iter()
        .filter(|v| v.dir && v.ro && v.literal == v.canonical && layer.starts_with(&v.canonical))
        .max_by_key(|v| v.canonical.components().count())
    else {
        return false;
    };
    let Ok(rel) = layer.strip_prefix(&dir.canonical) else {
        return false;
    };
    let host_ok = match crate::host::read_regular(layer, 1 << 20) {
        crate::host::Read::Absent => true,
        crate::host::Read::Text(b) => std::str::from_utf8(&b)
            .ok()
            .is_some_and(|t| toml::from_str::<toml::Table>(t).is_ok()),
        crate::host::Read::Suspect(_) => false,
    };
    if !host_ok {
        return false;
    }
    match k.layer_text(storage, project) {
        Some(text) => hiding.add_file(dir.canonical.clone(), rel.to_path_buf(), text.into_bytes()),
        None => true,
    }
}

/// Caches: the host's directory with the jail's writes kept in its own
/// layer (overlay), or only that layer where the host has no such
/// directory or its filesystem cannot hold an overlay's upper layer. A
/// cache the user named in `ro`/`rw`, or hid, is left as they said.
fn cache_steps(
    spec: &JailSpec,
    storage: &Path,
    visible: &[Visible],
    hidden: &BTreeSet<PathBuf>,
    overlay: bool,
) -> Vec<Step> {
    // Asked once, and only when some cache exists on the host.
    let mut overlay_ok = None;
    let mut out = Vec::new();
    for c in &spec.filesystem.cache {
        let host = &c.value;
        if hidden.contains(host) || visible.iter().any(|v| &v.literal == host) {
            continue;
        }
        let (upper, work) = crate::storage::cache_layer(storage, host);
        let host_dir = fs::symlink_metadata(host).is_ok_and(|m| m.is_dir());
        if host_dir
            && *overlay_ok.get_or_insert_with(|| overlay && crate::storage::can_hold_upper(storage))
        {
            out.push(Step::Overlay {
                lower: host.clone(),
                upper,
                work,
                dest: host.clone(),
            });
        } else if host_dir
            || upper.is_dir()
            || spec.filesystem.home.value == HomeMode::Tmpfs
            || in_writable_bind(host, visible)
        {
            // Only jail's own layer: downloads still persist. Below a
            // read-write bind of a host directory (an agent's `~/.codex`)
            // a path absent at start must get it too, or what the program
            // writes there (a package the host's agent later runs) would
            // land in the host's directory. Its mount point is then made
            // there: an empty directory, the only trace on the host.
            out.push(Step::Bind {
                src: upper,
                dest: host.clone(),
                dir: true,
                ro: false,
            });
        }
        // Else the persistent home keeps what is downloaded there.
    }
    out
}

/// Whether `p` lies below a directory bound read-write from the host.
fn in_writable_bind(p: &Path, visible: &[Visible]) -> bool {
    visible.iter().any(|v| {
        v.dir
            && !v.ro
            && ((p.starts_with(&v.literal) && p != v.literal)
                || (p.starts_with(&v.canonical) && p != v.canonical))
    })
}

/// Directories the launcher makes in jail's own storage before the jail
/// starts (the persistent home, each cache's layer).
pub fn storage_dirs(plan: &Plan, spec: &JailSpec) -> Vec<PathBuf> {
    let Some(st) = spec.filesystem.storage.as_deref() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for s in &plan.steps {
        match s {
            Step::Bind { src, .. } if src.starts_with(st) => out.push(src.clone()),
            Step::Overlay { upper, work, .. } => {
                out.push(upper.clone());
                out.push(work.clone());
            }
            _ => {}
        }
    }
    out
}

/// The plan's protections in readable form, for `jail explain`.
pub fn explain(plan: &Plan) -> String {
    use protect::Start;
    use std::fmt::Write;
    let mut o = String::from("[protection]\n");
    if plan.hidden.is_empty() {
        o.push_str("  hidden          (no hidden path exists on this host)\n");
    } else {
        o.push_str("  hidden:\n");
        for (p, h) in &plan.hidden {
            let _ = writeln!(o, "    {:<40} {}", p.display(), h.describe());
        }
    }
    let list = |st: &dyn Fn(&Start) -> bool| -> Vec<String> {
        plan.protected
            .iter()
            .filter(|p| st(&p.start))
            .map(|p| p.path.display().to_string())
            .collect()
    };
    let held = list(&|s| *s == Start::Held);
    let absent = list(&|s| *s == Start::Absent);
    let links = list(&|s| matches!(s, Start::Symlink(_) | Start::Via(_)));
    let watched = list(&|s| matches!(s, Start::Watched { .. }));
    for (title, v) in [
        ("read-only (could run code outside the jail)", held),
        ("moved away at exit if created", absent),
        ("symlinks: moved away at exit if changed", links),
        ("watched: command-running entries put back at exit", watched),
    ] {
        if !v.is_empty() {
            let _ = writeln!(o, "  {title}:");
            for p in v {
                let _ = writeln!(o, "    {p}");
            }
        }
    }
    for (f, _) in &plan.kept {
        let _ = writeln!(
            o,
            "  kept trust      a folder trusted in {} by a jailed run: put back there, kept \
             for this profile's jailed runs in this project",
            f.display()
        );
    }
    for s in &plan.steps {
        if let Step::Whiteout { dest, files, .. } = s {
            for (f, _) in files {
                let _ = writeln!(
                    o,
                    "  file            {}: jail's own",
                    dest.join(f).display()
                );
            }
        }
    }
    for (k, v) in &plan.env {
        let _ = writeln!(
            o,
            "  env             {k}={v} (trust kept from a jailed run)"
        );
    }
    if !plan.writable.is_empty() {
        let _ = writeln!(
            o,
            "  git             a git directory created in the project is checked at exit: \
             control files not harmless by content are moved away (found as git finds \
             them: .git directories, files and symlinks, bare repositories by shape)"
        );
    }
    o
}

/// For a project whose `.git` is a file naming a git directory outside
/// it (a worktree made on the host): the repository's common directory.
fn worktree_common_dir(project: &Path) -> Option<PathBuf> {
    let dotgit = project.join(".git");
    if fs::symlink_metadata(&dotgit).ok()?.is_dir() {
        return None;
    }
    let gitdir = git::gitdir_of(&dotgit)?;
    let common = crate::host::canonical(&git::common_dir(&gitdir)).ok()?;
    (!common.starts_with(project) && common.is_dir()).then_some(common)
}

/// With Slurm on: jail's own binary, read-only, in /run/jail/bin (first
/// on the jail's PATH) under a hidden name, and each Slurm command's name
/// a symlink to it, so `sbatch` & co. run the stub that talks to the
/// chaperon (it goes by argv[0]). One bind, not one per command: every
/// mount costs at start and again when the jail ends. The real commands
/// stay where they are, useless without munge.
fn slurm_stubs(spec: &JailSpec) -> Vec<Step> {
    if !spec.slurm.enabled.value {
        return Vec::new();
    }
    let Ok(exe) = std::env::current_exe().and_then(fs::canonicalize) else {
        return Vec::new();
    };
    let dir = Path::new(STUB_DIR);
    std::iter::once(Step::Bind {
        src: exe,
        dest: dir.join(STUB_BINARY),
        dir: false,
        ro: true,
    })
    .chain(STUBS.iter().map(|name| Step::Symlink {
        target: STUB_BINARY.into(),
        link: dir.join(name),
    }))
    .collect()
}

/// The commands that are stubs inside a jail.
pub const STUBS: &[&str] = &[
    "sbatch", "srun", "squeue", "scancel", "scontrol", "sacct", "salloc",
];
/// Where the stubs are, inside the jail (first on PATH).
pub const STUB_DIR: &str = "/run/jail/bin";
/// The name of jail's binary among the Slurm stubs (hidden: `jail` inside
/// stays whatever the host's PATH finds).
const STUB_BINARY: &str = ".jail";

fn visible_path(p: &Path, ro: bool) -> Option<Visible> {
    let canonical = crate::host::canonical(p).ok()?;
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
pub(super) fn bind_with_holes(
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
    use crate::config::{resolve, Catalogue, Request};
    use std::os::unix::fs::symlink;

    use crate::testutil::Tmp;

    fn tmp(name: &str) -> Tmp {
        Tmp::new(&format!("plan-{name}"))
    }

    fn spec_for(root: &Path, req: Request) -> JailSpec {
        let facts = crate::testutil::facts(1, &root.join("home"), &root.join("proj"));
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
    fn a_run_adds_the_console_after_devpts_and_the_review_overlay_first() {
        let t = tmp("for-run");
        fs::create_dir_all(t.0.join("proj")).unwrap();
        fs::create_dir_all(t.0.join("home")).unwrap();
        let spec = spec_for(
            &t.0,
            Request {
                command: vec!["true".into()],
                ..Default::default()
            },
        );
        let base = plan(&spec);
        assert_eq!(for_run(&spec, None, None).steps, base.steps);
        let o = OverlayDirs {
            upper: t.0.join("s/upper"),
            work: t.0.join("s/work"),
        };
        let run = for_run(&spec, Some(Path::new("/dev/pts/7")), Some(&o));
        assert_eq!(run.steps.len(), base.steps.len() + 2);
        assert!(matches!(&run.steps[0],
            Step::ReviewOverlay { lower, upper, .. } if lower == &t.0.join("proj") && upper == &o.upper));
        let devpts = run
            .steps
            .iter()
            .position(|s| matches!(s, Step::Devpts { .. }));
        let console = run.steps.iter().position(|s| {
            matches!(s, Step::Bind { src, dest, .. }
                if src == Path::new("/dev/pts/7") && dest == Path::new("/dev/console"))
        });
        assert_eq!(console, devpts.map(|i| i + 1), "{:#?}", run.steps);
        let listed = explain_steps(&run);
        assert_eq!(listed.lines().count(), run.steps.len() + 1);
        assert!(listed.contains("an overlay for review mode"), "{listed}");
    }

    #[test]
    fn a_step_shares_its_nodes_shm_directory_in_place_of_its_own() {
        let t = tmp("shm");
        fs::create_dir_all(t.0.join("proj")).unwrap();
        fs::create_dir_all(t.0.join("home")).unwrap();
        let spec = spec_for(
            &t.0,
            Request {
                command: vec!["true".into()],
                ..Default::default()
            },
        );
        let base = plan(&spec);
        let mut shared = plan(&spec);
        shared.share_shm(Path::new("/dev/shm/jail-1000/7.0"));
        assert_eq!(shared.steps.len(), base.steps.len());
        let at = |p: &Plan| {
            p.steps
                .iter()
                .position(|s| s.dest() == Path::new("/dev/shm"))
        };
        assert!(at(&base).is_some());
        assert_eq!(at(&shared), at(&base));
        assert!(matches!(&shared.steps[at(&shared).unwrap()],
            Step::Bind { src, dir: true, ro: false, .. } if src == Path::new("/dev/shm/jail-1000/7.0")));
        // Nothing else changes.
        let others = |p: &Plan| {
            p.steps
                .iter()
                .filter(|s| s.dest() != Path::new("/dev/shm"))
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(others(&shared), others(&base));
    }

    #[test]
    fn every_tmpfs_is_a_directory_of_one_scratch_tmpfs_sized_by_the_limits() {
        let t = tmp("scratch");
        fs::create_dir_all(t.0.join("proj")).unwrap();
        fs::create_dir_all(t.0.join("home")).unwrap();
        let mut spec = spec_for(
            &t.0,
            Request {
                command: vec!["true".into()],
                ..Default::default()
            },
        );
        spec.limits.apply_cli(None, Some(64 << 20), None, None);
        let p = plan(&spec);
        assert_eq!(
            p.steps[0],
            Step::Scratch {
                size: 64 << 20,
                inodes: 16384
            }
        );
        assert_eq!(
            p.steps
                .iter()
                .filter(|s| matches!(s, Step::Scratch { .. }))
                .count(),
            1
        );
        for d in ["/tmp", "/var/tmp", "/dev/shm", "/run", "/dev"] {
            assert!(
                p.steps
                    .iter()
                    .any(|s| matches!(s, Step::Tmpfs { dest, .. } if dest == Path::new(d))),
                "{d}"
            );
        }
        // A size resolved by the caller wins (explain shows that one).
        spec.limits.tmpfs = Some(crate::config::spec::Sourced::new(
            8 << 20,
            crate::config::spec::Source::Derived("test".into()),
        ));
        assert!(matches!(plan(&spec).steps[0], Step::Scratch { size, .. } if size == 8 << 20));
    }

    #[test]
    fn hidden_file_in_the_writable_project_is_masked_not_a_hole() {
        let t = tmp("hole");
        let proj = t.0.join("proj");
        fs::create_dir_all(proj.join("src/deep")).unwrap();
        fs::create_dir_all(t.0.join("home")).unwrap();
        fs::write(proj.join(".env"), "SECRET").unwrap();
        fs::write(proj.join("Makefile"), "").unwrap();
        fs::write(proj.join("src/deep/key"), "").unwrap();
        fs::create_dir_all(proj.join("secrets")).unwrap();
        let req = Request {
            command: vec!["true".into()],
            hide: vec![".env".into(), "src/deep/key".into(), "secrets".into()],
            ..Default::default()
        };
        let p = plan(&spec_for(&t.0, req));
        let b = binds(&p);
        assert!(
            b.contains(&(proj.clone(), false)),
            "project bound whole: {b:?}"
        );
        assert!(!b.iter().any(|(d, _)| d == &proj.join("Makefile")), "{b:?}");
        for f in [".env", "src/deep/key"] {
            assert!(
                p.steps.contains(&Step::MaskFile { dest: proj.join(f) }),
                "{f}"
            );
        }
        assert!(p.steps.contains(&Step::Tmpfs {
            dest: proj.join("secrets"),
            mode: 0
        }));
        assert!(p.steps.contains(&Step::RemountRo {
            dest: proj.join("secrets")
        }));
        assert!(!p.steps.contains(&Step::RemountRo { dest: proj.clone() }));
        assert_eq!(
            hide_report(&p, &proj.join(".env")),
            Some(hide::Hiding::Masked)
        );
    }

    fn hide_report(p: &Plan, path: &Path) -> Option<hide::Hiding> {
        p.hidden
            .iter()
            .find(|(q, _)| q == path)
            .map(|(_, h)| h.clone())
    }

    #[test]
    fn hidden_entries_of_a_read_only_directory_cost_one_overlay() {
        let t = tmp("wo");
        let data = t.0.join("data");
        fs::create_dir_all(data.join("munge")).unwrap();
        for i in 0..200 {
            fs::write(data.join(format!("f{i}")), "").unwrap();
        }
        fs::write(data.join("token"), "").unwrap();
        fs::create_dir_all(t.0.join("proj")).unwrap();
        fs::create_dir_all(t.0.join("home")).unwrap();
        let d = data.display().to_string();
        let req = Request {
            command: vec!["true".into()],
            ro: vec![d.clone()],
            hide: vec![format!("{d}/munge"), format!("{d}/token")],
            ..Default::default()
        };
        let p = plan(&spec_for(&t.0, req));
        let under: Vec<&Step> = p
            .steps
            .iter()
            .filter(|s| s.dest().starts_with(&data))
            .collect();
        assert_eq!(under.len(), 2, "one bind and one overlay: {under:#?}");
        assert!(p.steps.contains(&Step::Whiteout {
            src: data.clone(),
            dest: data.clone(),
            names: vec!["munge".into(), "token".into()],
            files: Vec::new(),
        }));
        assert_eq!(
            hide_report(&p, &data.join("munge")),
            Some(hide::Hiding::Absent)
        );
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
        assert!(binds(&p).contains(&(home.join("dotfiles"), true)));
        assert!(
            p.steps.contains(&Step::Whiteout {
                src: home.join("dotfiles"),
                dest: home.join("dotfiles"),
                names: vec!["ssh".into()],
                files: Vec::new(),
            }),
            "{:#?}",
            p.steps
        );
    }

    #[test]
    fn a_path_shown_below_a_hidden_entry_falls_back_to_binds_of_its_siblings() {
        let t = tmp("below");
        let home = t.0.join("home");
        fs::create_dir_all(home.join(".ssh")).unwrap();
        fs::write(home.join(".ssh/config"), "Host x").unwrap();
        fs::write(home.join(".ssh/id_ed25519"), "KEY").unwrap();
        fs::write(home.join(".vimrc"), "").unwrap();
        fs::create_dir_all(t.0.join("proj")).unwrap();
        let h = home.display().to_string();
        let req = Request {
            command: vec!["true".into()],
            ro: vec![h.clone(), format!("{h}/.ssh/config")],
            ..Default::default()
        };
        let p = plan(&spec_for(&t.0, req));
        let b = binds(&p);
        assert!(b.contains(&(home.join(".ssh/config"), true)), "{b:?}");
        assert!(
            b.contains(&(home.join(".vimrc"), true)),
            "sibling bound: {b:?}"
        );
        assert!(!b.iter().any(|(d, _)| d == &home.join(".ssh/id_ed25519")));
        assert!(p.steps.contains(&Step::RemountRo { dest: home.clone() }));
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

//! Review mode and resource limits as policy: the `review` key and the
//! `[limits]` section of the profile schema, the values they take
//! (durations, sizes, CPU counts, review modes), and how the layers
//! combine them. Pure: no syscalls; `launcher::limits` and `review` are the
//! mechanisms.
//!
//! Layering (see `resolve`): a later layer overrides an earlier one. The
//! site's values are bounds: each limit in the site's jail.toml is a
//! maximum (it also applies when no layer sets one), and its `review` is
//! a floor. A value beyond them chosen by the user (their files, the
//! project file, the command line) is refused; a builtin value is
//! clamped. For the project file, raising a limit or weakening review is
//! a widening that needs `jail trust`.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

use super::spec::{Source, Sourced};

/// What happens to the project's changes in review mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReviewMode {
    /// No review: the project is written directly.
    Off,
    /// Ask at exit on a terminal; keep the changes without one.
    Ask,
    /// Apply every change that can be applied safely, without asking.
    Apply,
    /// Throw every change away.
    Discard,
    /// Keep the changes for a later `jail review PATH`.
    Keep,
}

impl ReviewMode {
    /// How much say the user keeps over what lands in the project: a
    /// later layer lowering it widens the policy (a site's is a floor).
    pub fn rank(self) -> u8 {
        match self {
            ReviewMode::Off => 0,
            ReviewMode::Apply => 1,
            ReviewMode::Ask | ReviewMode::Keep | ReviewMode::Discard => 2,
        }
    }

    pub fn is_on(self) -> bool {
        self != ReviewMode::Off
    }

    pub fn name(self) -> &'static str {
        match self {
            ReviewMode::Off => "off",
            ReviewMode::Ask => "ask",
            ReviewMode::Apply => "apply",
            ReviewMode::Discard => "discard",
            ReviewMode::Keep => "keep",
        }
    }
}

/// `review = true | false | "ask" | "apply" | "discard" | "keep"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ReviewSetting {
    Bool(bool),
    Mode(ReviewMode),
}

impl ReviewSetting {
    pub fn mode(self) -> ReviewMode {
        match self {
            ReviewSetting::Bool(true) => ReviewMode::Ask,
            ReviewSetting::Bool(false) => ReviewMode::Off,
            ReviewSetting::Mode(m) => m,
        }
    }
}

/// `[limits]` as written in a profile.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// Wall-clock time before the jail is stopped.
    pub timeout: Option<Seconds>,
    /// Time between SIGTERM and SIGKILL when the timeout fires.
    pub grace: Option<Seconds>,
    /// Memory (bytes).
    pub memory: Option<Bytes>,
    /// Processes and threads of the program.
    pub pids: Option<Count>,
    /// CPUs (fractions allowed).
    pub cpus: Option<MilliCpus>,
}

/// A duration in whole seconds: `90`, `"90s"`, `"15m"`, `"2h"`, `"1d"`, `"1h30m"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Seconds(pub u64);

/// A size in bytes: `1048576`, `"512K"`, `"512M"`, `"8G"`, `"1.5G"`, `"1T"`
/// (binary multiples; `KiB`/`KB`/`k` spellings too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Bytes(pub u64);

/// A positive count (`pids`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Count(pub u32);

/// CPUs in thousandths: `2`, `2.5`, `"0.5"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct MilliCpus(pub u32);

/// `--timeout` and `timeout = ...`.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let bad = || format!("`{s}` is not a duration (e.g. `90`, `90s`, `15m`, `2h`, `1d`, `1h30m`)");
    let t = s.trim();
    if t.is_empty() {
        return Err(bad());
    }
    if let Ok(n) = t.parse::<u64>() {
        return if n > 0 { Ok(n) } else { Err(bad()) };
    }
    let (mut total, mut num) = (0u64, String::new());
    for c in t.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            _ => return Err(bad()),
        };
        let n: u64 = num.parse().map_err(|_| bad())?;
        num.clear();
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
    }
    if !num.is_empty() || total == 0 {
        return Err(bad());
    }
    Ok(total)
}

/// `--memory` and `memory = ...`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let bad = || format!("`{s}` is not a size (e.g. `512M`, `8G`, `1.5G`, or bytes)");
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return Err(bad()),
    };
    let bytes = if num.contains('.') {
        let f: f64 = num.parse().map_err(|_| bad())?;
        let v = f * mult as f64;
        if !v.is_finite() || v >= u64::MAX as f64 {
            return Err(bad());
        }
        v as u64
    } else {
        let n: u64 = num.parse().map_err(|_| bad())?;
        n.checked_mul(mult).ok_or_else(bad)?
    };
    if bytes == 0 {
        return Err(bad());
    }
    Ok(bytes)
}

/// `--cpus` and `cpus = ...`: thousandths of a CPU, at least 0.01.
pub fn parse_cpus(s: &str) -> Result<u32, String> {
    let bad = || format!("`{s}` is not a number of CPUs (e.g. `2`, `0.5`, `2.5`)");
    let f: f64 = s.trim().parse().map_err(|_| bad())?;
    cpus_from_f64(f).ok_or_else(bad)
}

fn cpus_from_f64(f: f64) -> Option<u32> {
    if !f.is_finite() || !(0.01..=100_000.0).contains(&f) {
        return None;
    }
    Some((f * 1000.0).round() as u32)
}

/// `--pids` and `pids = ...`.
pub fn parse_pids(s: &str) -> Result<u32, String> {
    match s.trim().parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("`{s}` is not a positive number of processes")),
    }
}

fn pids_u64(s: &str) -> Result<u64, String> {
    parse_pids(s).map(u64::from)
}

fn cpus_u64(s: &str) -> Result<u64, String> {
    parse_cpus(s).map(u64::from)
}

/// A number or a string, parsed by `parse`.
struct NumOrText<F> {
    what: &'static str,
    parse: F,
}

impl<F> Visitor<'_> for NumOrText<F>
where
    F: Fn(&str) -> Result<u64, String>,
{
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.what)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        (self.parse)(&v.to_string()).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        (self.parse)(&v.to_string()).map_err(E::custom)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<u64, E> {
        (self.parse)(&v.to_string()).map_err(E::custom)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
        (self.parse)(v).map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NumOrText {
            what: "a duration such as 90, \"15m\" or \"2h\"",
            parse: parse_duration,
        })
        .map(Seconds)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NumOrText {
            what: "a size such as \"512M\" or \"8G\"",
            parse: parse_size,
        })
        .map(Bytes)
    }
}

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NumOrText {
            what: "a positive number of processes",
            parse: pids_u64,
        })
        .map(|v| Count(v as u32))
    }
}

impl<'de> Deserialize<'de> for MilliCpus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NumOrText {
            what: "a number of CPUs such as 2 or 0.5",
            parse: cpus_u64,
        })
        .map(|v| MilliCpus(v as u32))
    }
}

/// The resolved limits (`JailSpec::limits`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Seconds of wall-clock time.
    pub timeout: Option<Sourced<u64>>,
    /// Seconds between SIGTERM and SIGKILL after the timeout.
    pub grace: Sourced<u64>,
    /// Bytes.
    pub memory: Option<Sourced<u64>>,
    /// Processes and threads of the program (jail's pid 1 not counted).
    pub pids: Option<Sourced<u32>>,
    /// Thousandths of a CPU.
    pub cpus: Option<Sourced<u32>>,
    /// How this host enforces them (cgroup v2 or rlimits), filled in by
    /// the caller from a probe (`launcher::limits`); `None`: not probed.
    pub mechanism: Option<String>,
    /// Bytes the jail's tmpfs mounts may hold together (`tmpfs_size`),
    /// filled in by the caller from the machine's RAM; `None`: not yet
    /// (the plan then works it out itself). Not carried to other hosts
    /// (a job's node): each works it out from its own RAM.
    #[serde(skip)]
    pub tmpfs: Option<Sourced<u64>>,
}

/// Default grace period after a timeout's SIGTERM.
pub const DEFAULT_GRACE: u64 = 10;

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            timeout: None,
            grace: Sourced::new(DEFAULT_GRACE, Source::Derived("jail's default".into())),
            memory: None,
            pids: None,
            cpus: None,
            mechanism: None,
            tmpfs: None,
        }
    }
}

impl Limits {
    /// Whether any limit needs a mechanism (cgroup or rlimits) in the jail.
    pub fn any_resource(&self) -> bool {
        self.memory.is_some() || self.pids.is_some() || self.cpus.is_some()
    }

    /// Merges one profile-schema layer.
    pub fn apply(&mut self, l: &LimitsSection, src: &Source) {
        if let Some(v) = l.timeout {
            self.timeout = Some(Sourced::new(v.0, src.clone()));
        }
        if let Some(v) = l.grace {
            self.grace = Sourced::new(v.0, src.clone());
        }
        if let Some(v) = l.memory {
            self.memory = Some(Sourced::new(v.0, src.clone()));
        }
        if let Some(v) = l.pids {
            self.pids = Some(Sourced::new(v.0, src.clone()));
        }
        if let Some(v) = l.cpus {
            self.cpus = Some(Sourced::new(v.0, src.clone()));
        }
    }

    /// The command line's values.
    pub fn apply_cli(
        &mut self,
        timeout: Option<u64>,
        memory: Option<u64>,
        pids: Option<u32>,
        cpus: Option<u32>,
    ) {
        let cli = |f: &str| Source::Cli(f.to_string());
        if let Some(v) = timeout {
            self.timeout = Some(Sourced::new(v, cli("--timeout")));
        }
        if let Some(v) = memory {
            self.memory = Some(Sourced::new(v, cli("--memory")));
        }
        if let Some(v) = pids {
            self.pids = Some(Sourced::new(v, cli("--pids")));
        }
        if let Some(v) = cpus {
            self.cpus = Some(Sourced::new(v, cli("--cpus")));
        }
    }

    /// What `after` raised compared with `self` (a project file's
    /// widenings), as (key, what).
    pub fn raised(&self, after: &Limits) -> Vec<(String, String)> {
        let mut w = Vec::new();
        let mut check =
            |key: &str, b: Option<u64>, a: Option<u64>, show: &dyn Fn(u64) -> String| {
                if let (Some(b), Some(a)) = (b, a) {
                    if a > b {
                        w.push((format!("limits.{key}"), format!("{key} {}", show(a))));
                    }
                }
            };
        let v64 = |s: &Option<Sourced<u64>>| s.as_ref().map(|x| x.value);
        let v32 = |s: &Option<Sourced<u32>>| s.as_ref().map(|x| u64::from(x.value));
        check("timeout", v64(&self.timeout), v64(&after.timeout), &|v| {
            show_duration(v)
        });
        check(
            "grace",
            Some(self.grace.value),
            Some(after.grace.value),
            &show_duration,
        );
        check("memory", v64(&self.memory), v64(&after.memory), &show_size);
        check("pids", v32(&self.pids), v32(&after.pids), &|v| {
            v.to_string()
        });
        check("cpus", v32(&self.cpus), v32(&after.cpus), &|v| {
            show_cpus(v as u32)
        });
        w
    }

    /// Applies the site's maxima: a value over one is refused when the
    /// user chose it (`Err((key, message))`), else clamped; an unset
    /// limit takes the site's value. Returns notes for `explain`.
    pub fn enforce_site(
        &mut self,
        site: &LimitsSection,
        ssrc: &Source,
        chosen_by_user: impl Fn(&Source) -> bool,
    ) -> Result<Vec<String>, (String, String)> {
        let mut notes = Vec::new();
        fn bound<T: Copy + PartialOrd>(
            key: &str,
            cur: &mut Option<Sourced<T>>,
            max: Option<T>,
            ssrc: &Source,
            user: &dyn Fn(&Source) -> bool,
            show: &dyn Fn(T) -> String,
            notes: &mut Vec<String>,
        ) -> Result<(), (String, String)> {
            let Some(max) = max else { return Ok(()) };
            match cur {
                Some(c) if c.value <= max => {}
                Some(c) if user(&c.source) => {
                    return Err((
                        format!("limits.{key}"),
                        format!(
                            "{key} {} (from {}) is above the site's maximum {}",
                            show(c.value),
                            c.source,
                            show(max)
                        ),
                    ))
                }
                Some(c) => {
                    notes.push(format!(
                        "site lowered {key} {} (from {}) to {}",
                        show(c.value),
                        c.source,
                        show(max)
                    ));
                    *cur = Some(Sourced::new(max, ssrc.clone()));
                }
                None => *cur = Some(Sourced::new(max, ssrc.clone())),
            }
            Ok(())
        }
        let user: &dyn Fn(&Source) -> bool = &chosen_by_user;
        bound(
            "timeout",
            &mut self.timeout,
            site.timeout.map(|v| v.0),
            ssrc,
            user,
            &show_duration,
            &mut notes,
        )?;
        let mut grace = Some(self.grace.clone());
        bound(
            "grace",
            &mut grace,
            site.grace.map(|v| v.0),
            ssrc,
            user,
            &show_duration,
            &mut notes,
        )?;
        if let Some(g) = grace {
            self.grace = g;
        }
        bound(
            "memory",
            &mut self.memory,
            site.memory.map(|v| v.0),
            ssrc,
            user,
            &show_size,
            &mut notes,
        )?;
        bound(
            "pids",
            &mut self.pids,
            site.pids.map(|v| v.0),
            ssrc,
            user,
            &|v: u32| v.to_string(),
            &mut notes,
        )?;
        bound(
            "cpus",
            &mut self.cpus,
            site.cpus.map(|v| v.0),
            ssrc,
            user,
            &show_cpus,
            &mut notes,
        )?;
        Ok(notes)
    }
}

/// What the jail's writable tmpfs mounts (/tmp, /var/tmp, /dev/shm, /run,
/// /dev and a tmpfs home) may hold together: they are directories of one
/// tmpfs of this size, so the bound is on their sum. By default half of
/// the machine's RAM, the kernel's own default for a single tmpfs (and
/// what the host's /dev/shm already lets the user fill), instead of half
/// for each; with `--memory`, at most that. Without a delegated cgroup
/// (`cgroup` false) this size is the only bound on what the files take
/// (rlimits do not count them), so it is the whole limit; with one, their
/// pages are charged to the jail's cgroup along with the programs'
/// memory, so it is half the limit: a full tmpfs is then ENOSPC, not the
/// kernel killing the writer for memory.
pub fn tmpfs_size(memory: Option<&Sourced<u64>>, ram: u64, cgroup: bool) -> Sourced<u64> {
    let half = (ram / 2).max(MIN_TMPFS);
    let share = |m: u64| if cgroup { m / 2 } else { m };
    match memory {
        Some(m) if share(m.value) < half => Sourced::new(
            share(m.value).max(MIN_TMPFS),
            Source::Derived(if cgroup {
                format!(
                    "half the memory limit (from {}), which the jail's cgroup shares with its processes",
                    m.source
                )
            } else {
                format!("the memory limit (from {})", m.source)
            }),
        ),
        _ => Sourced::new(
            half,
            Source::Derived(format!("half of this machine's {} of RAM", show_size(ram))),
        ),
    }
}

/// The smallest tmpfs jail makes (a page-sized /tmp breaks even a shell's
/// here-document).
pub const MIN_TMPFS: u64 = 1 << 20;

/// Inodes of the jail's tmpfs: one per 4 KiB page of its size, as the
/// kernel gives a tmpfs of half the RAM. Each inode costs kernel memory
/// beyond `size`, so an unbounded count would let empty files escape it.
pub fn tmpfs_inodes(size: u64) -> u64 {
    (size / 4096).max(1024)
}

/// `7200` → `2h`, `5400` → `1h30m`, `45` → `45s`.
pub fn show_duration(s: u64) -> String {
    if s == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let mut rest = s;
    for (unit, n) in [("d", 86400), ("h", 3600), ("m", 60), ("s", 1)] {
        if rest >= n {
            out.push_str(&format!("{}{unit}", rest / n));
            rest %= n;
        }
    }
    out
}

/// `536870912` → `512 MiB`.
pub fn show_size(b: u64) -> String {
    for (unit, n) in [
        ("TiB", 1u64 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ] {
        if b >= n {
            let v = b as f64 / n as f64;
            return if b.is_multiple_of(n) {
                format!("{} {unit}", b / n)
            } else {
                format!("{v:.1} {unit}")
            };
        }
    }
    format!("{b} bytes")
}

/// `2500` → `2.5`.
pub fn show_cpus(m: u32) -> String {
    if m.is_multiple_of(1000) {
        (m / 1000).to_string()
    } else {
        let s = format!("{:.3}", f64::from(m) / 1000.0);
        s.trim_end_matches('0').to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_every_form_and_reject_nonsense() {
        assert_eq!(parse_duration("90"), Ok(90));
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("15m"), Ok(900));
        assert_eq!(parse_duration("2h"), Ok(7200));
        assert_eq!(parse_duration("1d"), Ok(86400));
        assert_eq!(parse_duration("1h30m"), Ok(5400));
        for bad in [
            "",
            "0",
            "0s",
            "h",
            "10x",
            "1.5h",
            "-3",
            "5m3",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(show_duration(5400), "1h30m");
        assert_eq!(show_duration(45), "45s");
    }

    #[test]
    fn sizes_are_binary_multiples() {
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("8G"), Ok(8 << 30));
        assert_eq!(parse_size("8GiB"), Ok(8 << 30));
        assert_eq!(parse_size("1.5G"), Ok(3 << 29));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("100k"), Ok(100 << 10));
        for bad in ["", "0", "M", "12Q", "1..5G", "-1G", "99999999999T"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert_eq!(show_size(512 << 20), "512 MiB");
        assert_eq!(show_size(3 << 29), "1.5 GiB");
    }

    #[test]
    fn cpus_and_pids_must_be_positive() {
        assert_eq!(parse_cpus("2"), Ok(2000));
        assert_eq!(parse_cpus("0.5"), Ok(500));
        assert_eq!(parse_cpus("2.5"), Ok(2500));
        assert!(parse_cpus("0").is_err() && parse_cpus("-1").is_err() && parse_cpus("x").is_err());
        assert_eq!(show_cpus(2500), "2.5");
        assert_eq!(show_cpus(3000), "3");
        assert_eq!(parse_pids("64"), Ok(64));
        assert!(parse_pids("0").is_err() && parse_pids("-3").is_err());
    }

    #[test]
    fn review_ranks_order_the_users_say() {
        assert!(ReviewMode::Off.rank() < ReviewMode::Apply.rank());
        assert!(ReviewMode::Apply.rank() < ReviewMode::Ask.rank());
        assert_eq!(ReviewSetting::Bool(true).mode(), ReviewMode::Ask);
        assert_eq!(ReviewSetting::Bool(false).mode(), ReviewMode::Off);
    }

    #[test]
    fn site_maxima_clamp_builtins_refuse_users_and_fill_gaps() {
        let site = LimitsSection {
            memory: Some(Bytes(1 << 30)),
            pids: Some(Count(100)),
            ..LimitsSection::default()
        };
        let ssrc = Source::Site("/etc/jail/jail.toml".into());
        let user = |s: &Source| matches!(s, Source::Cli(_));
        let mut l = Limits {
            memory: Some(Sourced::new(2 << 30, Source::Builtin("x".into()))),
            ..Limits::default()
        };
        let notes = l.enforce_site(&site, &ssrc, user).unwrap();
        assert_eq!(l.memory.as_ref().unwrap().value, 1 << 30);
        assert_eq!(
            l.pids.as_ref().unwrap().value,
            100,
            "unset takes the site's"
        );
        assert_eq!(l.pids.as_ref().unwrap().source, ssrc);
        assert_eq!(notes.len(), 1, "{notes:?}");
        let mut l = Limits::default();
        l.apply_cli(None, None, Some(500), None);
        let (key, msg) = l.enforce_site(&site, &ssrc, user).unwrap_err();
        assert_eq!(key, "limits.pids");
        assert!(msg.contains("above the site's maximum 100"), "{msg}");
        let mut l = Limits::default();
        l.apply_cli(None, None, Some(50), None);
        l.enforce_site(&site, &ssrc, user).unwrap();
        assert_eq!(l.pids.unwrap().value, 50, "lower is fine");
    }

    #[test]
    fn tmpfs_is_half_the_ram_for_all_together_and_at_most_the_memory_limit() {
        let ram = 24u64 << 30;
        let d = tmpfs_size(None, ram, false);
        assert_eq!(d.value, 12 << 30);
        assert!(
            d.source.to_string().contains("24 GiB of RAM"),
            "{}",
            d.source
        );
        let m = Sourced::new(64 << 20, Source::Cli("--memory".into()));
        let t = tmpfs_size(Some(&m), ram, false);
        assert_eq!(t.value, 64 << 20);
        assert!(t.source.to_string().contains("--memory"), "{}", t.source);
        // A cgroup counts the files with the processes: half for files.
        let t = tmpfs_size(Some(&m), ram, true);
        assert_eq!(t.value, 32 << 20);
        assert!(t.source.to_string().contains("half the memory limit"));
        // A limit above half the RAM leaves the default.
        let big = Sourced::new(20 << 30, Source::Cli("--memory".into()));
        assert_eq!(tmpfs_size(Some(&big), ram, false).value, 12 << 30);
        // Tiny values stay usable.
        let tiny = Sourced::new(4096, Source::Cli("--memory".into()));
        assert_eq!(tmpfs_size(Some(&tiny), ram, false).value, MIN_TMPFS);
        assert_eq!(tmpfs_inodes(64 << 20), 16384);
        assert_eq!(tmpfs_inodes(MIN_TMPFS), 1024);
    }

    #[test]
    fn raising_a_limit_is_a_widening_lowering_is_not() {
        let mut before = Limits::default();
        before.apply_cli(Some(60), Some(1 << 30), None, None);
        let mut lower = before.clone();
        lower.apply_cli(Some(30), Some(1 << 20), Some(10), None);
        assert!(before.raised(&lower).is_empty());
        let mut higher = before.clone();
        higher.apply_cli(Some(120), None, None, None);
        assert_eq!(before.raised(&higher)[0].0, "limits.timeout");
    }
}

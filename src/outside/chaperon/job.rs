//! The job wrapper's format, shared by the chaperon (which writes it) and
//! the job launcher on the compute node (`node`, which reads it).
//!
//! Jobs run jailed on the compute node, under the policy of the jail that
//! submitted them.
//!
//! The chaperon never gives Slurm the program's script or command. For
//! sbatch it submits a wrapper (`wrapper`): a `/bin/sh` preamble that
//! execs `JAIL __slurm-job` on the node, or, where jail's binary is
//! missing, puts the reason in the job's Comment and exits 125, and after
//! it a data line the shell never reaches, carrying the `JobSpec` as
//! JSON: the resolved policy, the program's environment, its working
//! directory, its script (base64) and its output files. The shell runs
//! with the job's environment as the user's own jail launcher gave it to
//! sbatch (`--export=ALL` of a fresh environment; the program's own
//! variables are in the JSON only), as `sh`, which reads no startup file
//! (ENV, BASH_ENV) when not interactive, and expands no data. sbatch stops
//! reading directives at the preamble's first command, and the program's
//! own script, encoded, holds none. For srun the step's
//! command is `JAIL __slurm-step` and the `JobSpec` travels in its
//! environment (`JAIL_SLURM_STEP`), which only the user's own processes
//! can read. Neither can be changed after submission by the program.
//!
//! On the node, `jail __slurm-job` / `__slurm-step` runs the same launcher
//! as `jail` itself with that policy: the script is written into the jail
//! (/tmp/jail-job-script) by its pid 1, the output, error and input files
//! are opened inside the jail (never by slurmstepd: see `rules`), and a
//! chaperon starts for the job too, so `srun` inside a batch script makes
//! jailed steps.

use std::path::{Path, PathBuf};

use base64::Engine;
use serde::{Deserialize, Serialize};

use super::rules::{Export, Io};
use crate::config::JailSpec;

/// First word of the wrapper's data line (and its format version).
pub const MARK: &str = "JAIL-SLURM-JOB-1";
/// The environment variable a step's `JobSpec` travels in.
pub const STEP_VAR: &str = "JAIL_SLURM_STEP";
/// Hidden entry points on the compute node.
pub const JOB_ARG: &str = "__slurm-job";
pub const STEP_ARG: &str = "__slurm-step";
/// Where the batch script is written inside the job's jail: its own
/// /tmp, where the program may execute files (Landlock allows no
/// execution on /run).
pub const SCRIPT_PATH: &str = "/tmp/jail-job-script";

/// Everything a job or step needs to run jailed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    pub spec: JailSpec,
    /// The program's environment inside the job (before Slurm's own
    /// SLURM_* variables of the job are added).
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    /// Step: the command; batch: the script's arguments.
    pub command: Vec<String>,
    /// Batch: the script, base64.
    pub script: Option<String>,
    pub io: Io,
    /// jail's state directory (quarantine of created protected paths).
    pub state: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("{0}: not a batch script written by jail's Slurm chaperon")]
    NotOurs(String),
    #[error("cannot read {0}: {1}")]
    Read(String, std::io::Error),
    #[error("the job's policy does not decode: {0}")]
    Decode(String),
    #[error("jail's path {0} holds a control character: install jail at a plain path")]
    BadExe(String),
}

/// The environment of the job's program, from the submitting side and
/// `--export`. `submit`: the stub's environment (what the program had);
/// `fresh`: a new jail's environment (for NONE).
pub fn export_env(
    export: &Export,
    submit: &[(String, String)],
    fresh: &[(String, String)],
) -> Vec<(String, String)> {
    type Env = Vec<(String, String)>;
    let (mut env, set): (Env, &Env) = match export {
        Export::All { set } => (submit.to_vec(), set),
        Export::Fresh { set } => (fresh.to_vec(), set),
        Export::Only { names, set } => (
            submit
                .iter()
                .filter(|(k, _)| names.contains(k))
                .cloned()
                .collect(),
            set,
        ),
    };
    for (k, v) in set {
        env.retain(|(n, _)| n != k);
        env.push((k.clone(), v.clone()));
    }
    // The submitting side's job variables are not the job's.
    env.retain(|(k, _)| !k.starts_with("SLURM_"));
    env
}

/// The wrapper's first line.
const SHEBANG: &str = "#!/bin/sh";

/// The wrapper batch script for `job`, run on the node as `exe`'s:
/// `/bin/sh` execs `exe __slurm-job SCRIPT ARGS`; where `exe` is missing
/// there, the one-line reason goes to the job's Comment (`scontrol show
/// job`, `sacct -o Comment`) and the job ends with 125, never running
/// unjailed. (Its output file does not get the line: it would be written
/// outside any jail, by a shell that cannot open it safely.) `scontrol`
/// is the real command's absolute path (the chaperon's): the shell runs
/// outside any jail in the job's directory, so a PATH lookup could find
/// a `scontrol` the program planted (a relative PATH entry, such as
/// `bin` or an empty one, names a directory of the project there).
pub fn wrapper(exe: &Path, scontrol: Option<&Path>, job: &JobSpec) -> Result<Vec<u8>, JobError> {
    let shown = exe.display().to_string();
    if !safe_path(exe) {
        return Err(JobError::BadExe(shown));
    }
    let quote = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
    let quoted = quote(&shown);
    // Without a usable path the Comment is not written; the job still
    // ends with 125.
    let scontrol = quote(
        &scontrol
            .filter(|p| safe_path(p))
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
    );
    let json = serde_json::to_string(job).map_err(|e| JobError::Decode(e.to_string()))?;
    Ok(format!(
        "{SHEBANG}\n\
         j={quoted}\n\
         test -x \"$j\" && exec \"$j\" {JOB_ARG} \"$0\" \"$@\"\n\
         r=\"jail: slurm job: no jail binary at $j on ${{SLURMD_NODENAME:-the node}}: the job did not run\"\n\
         s={scontrol}\n\
         test -x \"$s\" && \"$s\" update JobId=\"$SLURM_JOB_ID\" Comment=\"$r\" >/dev/null 2>&1\n\
         exit 125\n\
         {MARK} {json}\n"
    )
    .into_bytes())
}

/// An absolute path the preamble can hold on one line.
fn safe_path(p: &Path) -> bool {
    p.is_absolute() && !p.display().to_string().contains(|c: char| c.is_control())
}

/// Reads a wrapper back (on the compute node).
pub fn parse_wrapper(text: &[u8], name: &str) -> Result<JobSpec, JobError> {
    let not_ours = || JobError::NotOurs(name.to_string());
    let text = std::str::from_utf8(text).map_err(|_| not_ours())?;
    let mut lines = text.lines();
    if lines.next() != Some(SHEBANG) {
        return Err(not_ours());
    }
    let data = lines
        .find_map(|l| l.strip_prefix(MARK))
        .and_then(|l| l.strip_prefix(' '))
        .ok_or_else(not_ours)?;
    serde_json::from_str(data).map_err(|e| JobError::Decode(e.to_string()))
}

pub fn encode_script(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn decode_script(s: &str) -> Result<Vec<u8>, JobError> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| JobError::Decode(e.to_string()))
}

#[cfg(test)]
mod tests {

    use super::*;

    fn test_spec() -> JailSpec {
        crate::testutil::spec(true)
    }

    #[test]
    fn exports_shape_the_environment() {
        let sub = vec![
            ("A".to_string(), "1".to_string()),
            ("B".to_string(), "2".to_string()),
            ("SLURM_JOB_ID".to_string(), "9".to_string()),
        ];
        let fresh = vec![("F".to_string(), "f".to_string())];
        let all = export_env(
            &Export::All {
                set: vec![("B".into(), "3".into())],
            },
            &sub,
            &fresh,
        );
        assert_eq!(
            all,
            vec![("A".into(), "1".into()), ("B".into(), "3".into())]
        );
        let only = export_env(
            &Export::Only {
                names: vec!["A".into()],
                set: vec![],
            },
            &sub,
            &fresh,
        );
        assert_eq!(only, vec![("A".into(), "1".into())]);
        let none = export_env(&Export::Fresh { set: vec![] }, &sub, &fresh);
        assert_eq!(none, fresh);
    }

    #[test]
    fn the_wrapper_round_trips_and_holds_no_directive() {
        let spec = test_spec();
        let job = JobSpec {
            spec,
            env: vec![("X".into(), "a\nb".into())],
            cwd: "/p".into(),
            command: vec!["arg".into()],
            script: Some(encode_script(b"#!/bin/sh\n#SBATCH --uid=0\necho hi\n")),
            io: Io::default(),
            state: "/s".into(),
        };
        let w = wrapper(Path::new("/usr/bin/jail"), None, &job).unwrap();
        let text = String::from_utf8(w.clone()).unwrap();
        assert!(text.starts_with("#!/bin/sh\nj='/usr/bin/jail'\n"), "{text}");
        assert_eq!(text.lines().filter(|l| l.starts_with(MARK)).count(), 1);
        assert!(text
            .lines()
            .last()
            .unwrap()
            .starts_with("JAIL-SLURM-JOB-1 {"));
        // What sbatch reads of it: no options at all.
        let d = super::super::script::directives(&w, false).unwrap();
        assert!(d.opts.is_empty());
        assert_eq!(parse_wrapper(&w, "s").unwrap(), job);
        assert!(parse_wrapper(b"#!/bin/sh\necho\n", "s").is_err());
        assert!(wrapper(Path::new("/a\nb/jail"), None, &job).is_err());
        assert!(wrapper(Path::new("jail"), None, &job).is_err());
    }

    /// The preamble, run by a real sh: it execs jail's binary with the
    /// script and its arguments, whatever its path; without the binary it
    /// exits 125 and never reaches the data line.
    #[test]
    fn the_wrapper_execs_jail_or_exits_125() {
        let job = JobSpec {
            spec: test_spec(),
            env: vec![],
            cwd: "/p".into(),
            command: vec![],
            script: None,
            io: Io::default(),
            state: "/s".into(),
        };
        let dir = std::env::temp_dir().join(format!("jail-wrap-{}/it's a dir", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fake = dir.join("jail");
        std::fs::write(&fake, "#!/bin/sh\nprintf '%s|' \"$@\"\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        // The real scontrol (the chaperon's absolute path) notes its
        // arguments; a `scontrol` the program planted in the job's
        // directory, on a relative PATH entry, must never run (it would
        // run outside any jail).
        let real = dir.join("real scontrol");
        let noted = dir.join("noted");
        std::fs::write(&real, "#!/bin/sh\nprintf '%s|' \"$@\" > \"$NOTED\"\n").unwrap();
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        let planted = dir.join("planted");
        let fake_sc = dir.join("bin/scontrol");
        std::fs::write(&fake_sc, "#!/bin/sh\ntouch \"$PLANTED\"\n").unwrap();
        for f in [&fake, &real, &fake_sc] {
            std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let script = dir.join("wrapper");
        let run = |sc: Option<&Path>| {
            std::fs::write(&script, wrapper(&fake, sc, &job).unwrap()).unwrap();
            std::process::Command::new("/bin/sh")
                .arg(&script)
                .args(["a b", "$HOME"])
                .current_dir(&dir)
                .env("PATH", "bin::/usr/bin:/bin")
                .env("SLURM_JOB_ID", "7")
                .env("SLURMD_NODENAME", "n1")
                .env("NOTED", &noted)
                .env("PLANTED", &planted)
                .output()
                .unwrap()
        };
        let o = run(Some(&real));
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            format!("__slurm-job|{}|a b|$HOME|", script.display())
        );
        std::fs::remove_file(&fake).unwrap();
        for sc in [Some(real.as_path()), None, Some(Path::new("scontrol"))] {
            let o = run(sc);
            assert_eq!(o.status.code(), Some(125));
            assert!(o.stdout.is_empty() && o.stderr.is_empty(), "{o:?}");
            assert!(!planted.exists(), "a planted scontrol ran ({sc:?})");
        }
        assert_eq!(
            std::fs::read_to_string(&noted).unwrap(),
            format!(
                "update|JobId=7|Comment=jail: slurm job: no jail binary at {} on n1: the job did not run|",
                fake.display()
            )
        );
        let _ = std::fs::remove_dir_all(dir.parent().unwrap());
    }
}

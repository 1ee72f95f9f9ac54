//! CUDA under `--gpu`, on a machine with an NVIDIA GPU and PyTorch: a real
//! CUDA program runs in the jail with Landlock and seccomp on, and sees
//! no GPU without `--gpu`. Skips (saying why) where there is no GPU.

mod common;
use common::*;
use std::path::Path;

const PROBE: &str = "import torch\n\
ok = torch.cuda.is_available()\n\
print('cuda', ok)\n\
if ok:\n\
    x = torch.ones(1024, 1024, device='cuda')\n\
    print('sum', (x @ x).sum().item())\n";

#[test]
fn a_cuda_program_runs_under_gpu_and_sees_no_gpu_without_it() {
    if !Path::new("/dev/nvidiactl").exists() {
        skip(
            Lack::Machine,
            "no NVIDIA GPU on this machine (/dev/nvidiactl is absent)",
        );
        return;
    }
    let sb = Sandbox::new("cuda");
    let host = sb.host_sh(&format!("python3 -c \"{PROBE}\""));
    if !stdout(&host).contains("cuda True") {
        skip(
            Lack::Machine,
            &format!(
                "PyTorch with CUDA does not run here outside the jail either: {}{}",
                stdout(&host),
                stderr(&host)
            ),
        );
        return;
    }
    let ro: Vec<&str> = ["/usr/local", "/opt"]
        .into_iter()
        .filter(|p| Path::new(p).exists())
        .flat_map(|p| ["--ro", p])
        .collect();
    let mut args = vec!["--gpu"];
    args.extend(&ro);
    args.extend(["--", "python3", "-c", PROBE]);
    let o = sb.jail(&args);
    assert_code(&o, 0);
    let out = stdout(&o);
    assert!(out.contains("cuda True"), "{out}\n{}", stderr(&o));
    assert!(out.contains("sum 1073741824"), "{out}");
    // Hardening was on.
    let o = sb.jail(&[
        "--gpu",
        "--",
        "grep",
        "-c",
        "^Seccomp:\t2",
        "/proc/self/status",
    ]);
    assert_eq!(stdout(&o).trim(), "1");
    // Without --gpu: no device, no CUDA.
    let mut args: Vec<&str> = ro.clone();
    args.extend(["--", "python3", "-c", PROBE]);
    let o = sb.jail(&args);
    assert!(stdout(&o).contains("cuda False"), "{}", stdout(&o));
}

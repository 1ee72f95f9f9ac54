mod harden_bench;

fn main() {
    // Minimal dispatch so `cargo xtask harden-bench` can be tried; the
    // owner of this file wires harden_bench::run into `cargo xtask bench`.
    if std::env::args().nth(1).as_deref() == Some("harden-bench") {
        match harden_bench::run() {
            Ok(report) => print!("{report}"),
            Err(e) => {
                eprintln!("xtask: harden-bench: {e}");
                std::process::exit(1);
            }
        }
    }
}

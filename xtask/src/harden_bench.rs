//! PLACEHOLDER: replaced at merge by the `harden` branch's xtask/src/harden_bench.rs.
//! Same signature: markdown on success, a note on failure.

pub fn run() -> Result<String, String> {
    Err("harden_bench not merged yet".to_string())
}

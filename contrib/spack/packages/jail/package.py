# Spack recipe for jail (a repository of its own: contrib/spack/repo.yaml).
#
#   spack repo add /path/to/jail/contrib/spack
#   spack env create jail-build && spack env activate jail-build
#   spack add jail@=main
#   spack develop --path /path/to/jail jail@=main   # build this checkout
#   spack install
#
# There is no public release to fetch yet: `spack develop` builds a local
# checkout. A site that mirrors the repository sets `git` below to its
# mirror and installs `jail@main` directly. Spack's generated module puts
# bin/ on PATH and share/man on MANPATH (`module load jail`).
#
# jail must be at the same path on login and compute nodes: a jailed
# Slurm job runs the same binary on the node. Install it on a filesystem
# every node mounts (the usual Spack tree on shared storage).

import os

from spack.package import *


class Jail(Package):
    """An unprivileged process jail for AI coding agents and any command:
    user, mount, pid and network namespaces, Landlock and seccomp, without
    root, setuid or a daemon. /etc/jail/jail.toml holds an enforced site
    policy."""

    # git = "https://git.example.org/mirror/jail.git"  # your site's mirror

    license("Apache-2.0")

    version("main")

    # Cargo.toml's rust-version; crates come from crates.io (--locked).
    depends_on("rust@1.88:", type="build")

    # Linux only: namespaces, Landlock and seccomp.
    requires("platform=linux", msg="jail uses Linux namespaces, Landlock and seccomp")

    def install(self, spec, prefix):
        cargo = which("cargo", required=True)
        cargo("build", "--release", "--locked", "-p", "jail")
        mkdirp(prefix.bin)
        install("target/release/jail", prefix.bin)
        # The pages and completions are generated into the repository
        # (cargo xtask man, cargo xtask completions).
        man1 = join_path(prefix.share, "man", "man1")
        man5 = join_path(prefix.share, "man", "man5")
        mkdirp(man1)
        mkdirp(man5)
        for page in find("man", "*.1", recursive=False):
            install(page, man1)
        install("man/jail.toml.5", man5)
        for src, dest in [
            ("jail.bash", "bash-completion/completions/jail"),
            ("_jail", "zsh/site-functions/_jail"),
            ("jail.fish", "fish/vendor_completions.d/jail.fish"),
        ]:
            target = join_path(prefix.share, dest)
            mkdirp(os.path.dirname(target))
            install(join_path("man", "completions", src), target)
        # The AppArmor profile, for an admin to install (Ubuntu 23.10+).
        mkdirp(join_path(prefix.share, "jail", "apparmor"))
        install("contrib/apparmor/jail", join_path(prefix.share, "jail", "apparmor", "jail"))

# jail's %postun ($1: 0 erase, 1 upgrade): on erase, the AppArmor profile
# %post copied (and the parser's cache of it) goes with the package, and
# so do the package's directories when empty (cargo-generate-rpm cannot
# list directories; a changed /etc/jail/jail.toml stays as .rpmsave).
if [ "$1" = 0 ]; then
    rm -f /etc/apparmor.d/jail
    rm -f /var/cache/apparmor/*/jail
    for d in /usr/share/jail/apparmor /usr/share/jail /usr/share/doc/jail \
        /usr/share/licenses/jail /etc/jail; do
        rmdir "$d" 2>/dev/null || true
    done
fi
exit 0

# jail's %preun ($1: 0 erase, 1 upgrade): on erase, unload jail's AppArmor
# profile from the kernel (the binary it is for is going).
if [ "$1" = 0 ] \
    && grep -qs '^jail ' /sys/kernel/security/apparmor/profiles \
    && command -v apparmor_parser >/dev/null 2>&1; then
    apparmor_parser -R /etc/apparmor.d/jail || true
fi
exit 0

# jail's %post ($1: 1 install, 2 upgrade). Where the AppArmor userspace
# knows user-namespace rules (AppArmor 4: /etc/apparmor.d/abi/4.0), install
# jail's profile, which lets /usr/bin/jail (and only jail) create user
# namespaces where AppArmor restricts them
# (kernel.apparmor_restrict_unprivileged_userns), and load it where AppArmor
# is active. Not a packaged file: an older parser cannot read its `userns`
# rule. Local changes go in /etc/apparmor.d/local/jail. On SELinux systems
# there is nothing to do. A profile that fails to load never fails the
# install.
profile=/etc/apparmor.d/jail
if [ -e /etc/apparmor.d/abi/4.0 ]; then
    install -m 644 /usr/share/jail/apparmor/jail "$profile"
    if [ "$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)" = Y ] \
        && command -v apparmor_parser >/dev/null 2>&1; then
        apparmor_parser -r -T -W "$profile" \
            || echo "jail: could not load the AppArmor profile $profile (see jail doctor)" >&2
    fi
fi
exit 0

#!/usr/bin/env bash
# Install the Debian packages the test suite needs, only those missing; safe to run again and again.
#
# slapd: the tests start their own slapd instance (a temporary config on a free loopback port), so the
# package is preseeded to create no default database and the system service is left stopped.
set -euo pipefail

PACKAGES=(
    slapd
    ldap-utils
    chromium
)

missing=()
for pkg in "${PACKAGES[@]}"; do
    if dpkg -s "$pkg" >/dev/null 2>&1 && dpkg -s "$pkg" | grep -q '^Status: install ok installed'; then
        echo "install-system-packages: $pkg is installed"
    else
        missing+=("$pkg")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "install-system-packages: nothing to install"
    exit 0
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
        echo "install-system-packages: missing ${missing[*]}; run this script as root (or install sudo)" >&2
        exit 1
    fi
    SUDO=(sudo)
fi

export DEBIAN_FRONTEND=noninteractive

for pkg in "${missing[@]}"; do
    if [ "$pkg" = slapd ]; then
        echo "install-system-packages: preseeding slapd to configure no default database"
        printf '%s\n' \
            "slapd slapd/no_configuration boolean true" \
            "slapd shared/organization string example" \
            "slapd slapd/domain string gov.example" \
            | "${SUDO[@]}" debconf-set-selections
    fi
done

apt_install() {
    echo "install-system-packages: apt-get install ${missing[*]}"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${missing[@]}"
}

apt_update() {
    echo "install-system-packages: apt-get update"
    "${SUDO[@]}" apt-get update -q
}

# Refresh the package lists only when they do not know a package (a fresh image) or are stale.
updated=false
for pkg in "${missing[@]}"; do
    if ! apt-cache policy "$pkg" 2>/dev/null | grep -q 'Candidate: [^(]'; then
        apt_update
        updated=true
        break
    fi
done
if ! apt_install; then
    if [ "$updated" = true ]; then
        exit 1
    fi
    apt_update
    apt_install
fi
echo "install-system-packages: done"

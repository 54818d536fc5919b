#!/usr/bin/env bash
# Install the Debian packages the test suite needs, only those missing; safe to run again and again.
#
# slapd: the tests start their own slapd instance (a temporary config on a free loopback port), so the
# package is preseeded to create no default database and the system service is left stopped.
# redis-server: besides the Redis service the tests use, its binary runs the tests' own Redis master,
# replica and Sentinel processes (tests/store/sentinel_topology.py) on free loopback ports.
# redis-tools: redis-cli, which forms the tests' Redis Cluster (tests/store/cluster_topology.py).
# nginx: tests/live/test_nodes.py runs its own nginx (a generated config, a free loopback port, every
# path under the test's temporary directory) as the load balancer in front of several provider nodes.
# Debian starts and enables the system nginx on port 80 when the package is installed; this script
# stops and disables it right after installing it, and leaves an nginx that was installed before alone.
set -euo pipefail

PACKAGES=(
    redis-server
    redis-tools
    slapd
    ldap-utils
    chromium
    nginx
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

# The system nginx that the package has just started (on systemd hosts) is not ours to leave running.
for pkg in "${missing[@]}"; do
    if [ "$pkg" = nginx ]; then
        if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
            echo "install-system-packages: stopping and disabling the system nginx service"
            "${SUDO[@]}" systemctl disable --now nginx >/dev/null 2>&1 || true
        elif [ -s /run/nginx.pid ] && "${SUDO[@]}" kill -0 "$(cat /run/nginx.pid)" 2>/dev/null; then
            echo "install-system-packages: stopping the system nginx"
            "${SUDO[@]}" /usr/sbin/nginx -s quit || true
        fi
    fi
done
echo "install-system-packages: done"

#!/usr/bin/env bash
# renewd under a real systemd 252 (Debian 12 booted with systemd-nspawn), as root.
# scripts/test runs it; alone: bash tests/e2e/systemd.sh
#
# Part 1 — the packaging files, no daemon needed: the unit, sysusers.d, tmpfiles.d and the
#   polkit rule from packaging/ installed by hand; verify + security of the unit inside the
#   guest; the polkit rule lets user renewd reload the listed units, also from inside the
#   unit's sandbox, and nothing else; the sandbox lets renewd bind port 80.
# Part 2 — the daemon, from the .deb (scripts/build-deb), against pebble inside the guest.
#   Skipped while crates/renewd does not exist.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/e2e/lib/nspawn.sh

[ "$(id -u)" = 0 ] || { echo "FAIL: tests/e2e/systemd.sh needs root (systemd-nspawn)" >&2; exit 1; }

UNIT=renewd.service
work=$(mktemp -d /tmp/renewd-e2e-work.XXXXXX)   # bind-mounted read-write at /mnt/work
daemon_built=0
[ -d crates/renewd ] && daemon_built=1

ok() { echo "ok: $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

# wait_until SECONDS WHAT COMMAND... — poll COMMAND until it succeeds, fail after SECONDS.
wait_until() {
  local secs=$1 what=$2 t0=$EPOCHREALTIME
  shift 2
  until "$@" >/dev/null 2>&1; do
    [ "$(nspawn_elapsed "$t0" | cut -d. -f1)" -lt "$secs" ] || fail "timed out after ${secs} s: $what"
    sleep 0.1
  done
}

prop() { in_guest systemctl show -P "$1" "${2:-$UNIT}"; }
as_renewd() { in_guest runuser -u renewd -- "$@"; }
rd() { as_renewd /usr/bin/renewd --config /etc/renewd/renewd.toml "$@"; }
journal_cursor() { in_guest journalctl --show-cursor -n 0 -q | sed -n 's/^-- cursor: //p'; }

on_exit() {
  local rc=$?
  set +e
  if [ "$rc" != 0 ] && [ -n "$NSPAWN_LEADER" ]; then
    echo "---- systemctl status $UNIT" >&2
    in_guest systemctl status "$UNIT" --no-pager -l >&2
    echo "---- journalctl -u $UNIT" >&2
    in_guest journalctl -b -u "$UNIT" --no-pager -n 200 >&2
    echo "---- failed units" >&2
    in_guest systemctl --failed --no-pager >&2
  fi
  nspawn_teardown
  rm -rf "$work"
  exit "$rc"
}
trap on_exit EXIT

# Build before booting, so the guest does not wait for cargo.
deb=""
if [ "$daemon_built" = 1 ]; then
  deb=$(scripts/build-deb --out "$work")
fi

nspawn_rootfs
nspawn_boot --bind-ro="$PWD:/mnt/src" --bind="$work:/mnt/work"

###############################################################################################
# Part 1: packaging files
###############################################################################################

in_guest install -D -m 0644 /mnt/src/packaging/renewd.service /lib/systemd/system/renewd.service
in_guest install -D -m 0644 /mnt/src/packaging/sysusers.d/renewd.conf /usr/lib/sysusers.d/renewd.conf
in_guest install -D -m 0644 /mnt/src/packaging/tmpfiles.d/renewd.conf /usr/lib/tmpfiles.d/renewd.conf
in_guest install -D -m 0644 /mnt/src/packaging/polkit/50-renewd-reload.rules \
  /usr/share/polkit-1/rules.d/50-renewd-reload.rules
in_guest systemd-sysusers renewd.conf
in_guest systemd-tmpfiles --create renewd.conf
in_guest systemctl daemon-reload

passwd=$(in_guest getent passwd renewd) || fail "sysusers.d did not create user renewd"
IFS=: read -r _ _ uid gid _ home shell <<<"$passwd"
[ "$uid" -lt 1000 ] && [ "$home" = /var/lib/renewd ] && [ "$shell" = /usr/sbin/nologin ] ||
  fail "user renewd: $passwd"
[ "$(in_guest getent group renewd | cut -d: -f3)" = "$gid" ] || fail "group renewd"
ok "sysusers.d: system user renewd (uid $uid), home /var/lib/renewd, nologin"

check_dir() { # check_dir PATH MODE OWNER:GROUP
  local got
  got=$(in_guest stat -c '%a %U:%G' "$1") || fail "tmpfiles.d did not create $1"
  [ "$got" = "$2 $3" ] || fail "$1 is $got, want $2 $3"
}
check_dir /var/lib/renewd 700 renewd:renewd
check_dir /etc/renewd 750 root:renewd
check_dir /etc/renewd/credentials 700 root:root
ok "tmpfiles.d: /var/lib/renewd 0700 renewd, /etc/renewd 0750 root:renewd, credentials 0700 root"

[ "$(prop LoadState)" = loaded ] || fail "$UNIT does not load: $(prop LoadState)"
in_guest /mnt/src/scripts/check-unit /lib/systemd/system/renewd.service | sed 's/^/guest /'
score=$(in_guest systemd-analyze security "$UNIT" --no-pager --threshold=20 |
  sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\) .*/\1/p') ||
  fail "systemd-analyze security $UNIT in the guest: above 2.0"
ok "guest: systemd-analyze security $UNIT (loaded unit, systemd 252): $score"

# --- polkit: deploy hooks reload listed services as user renewd, nothing more -------------
# Stand-ins for two services: nginx.service is in the shipped rule's list, e2e-other is not.
# Each reload appends a line to /run/e2e-reloads/NAME.
for svc in nginx e2e-other; do
  in_guest sh -c "cat > /etc/systemd/system/$svc.service" <<EOF
[Unit]
Description=stand-in for a service that uses renewd's certificates
[Service]
ExecStart=/bin/sleep infinity
ExecReload=/bin/sh -c 'mkdir -p /run/e2e-reloads && echo reload >> /run/e2e-reloads/$svc'
EOF
done
in_guest systemctl daemon-reload
in_guest systemctl start nginx.service e2e-other.service
reloads() { in_guest sh -c "cat /run/e2e-reloads/$1 2>/dev/null | wc -l"; }

as_renewd systemctl reload nginx || fail "user renewd: systemctl reload nginx was refused"
[ "$(reloads nginx)" = 1 ] || fail "nginx stand-in was not reloaded"
ok "polkit: user renewd may 'systemctl reload nginx'"

denied() { # denied WHAT COMMAND...: the command must fail with polkit's refusal
  local what=$1 out
  shift
  if out=$("$@" 2>&1); then fail "$what allowed: $*"; fi
  grep -qiE 'access denied|interactive authentication required|not authorized' <<<"$out" ||
    fail "$what: unexpected error: $out"
}
denied "reload of an unlisted unit" as_renewd systemctl reload e2e-other
denied "restart of a listed unit" as_renewd systemctl restart nginx
denied "stop of a listed unit" as_renewd systemctl stop nginx
denied "reload by another user" in_guest runuser -u nobody -- systemctl reload nginx
[ "$(reloads nginx)" = 1 ] && [ "$(reloads e2e-other)" = 0 ] || fail "a refused request acted"
[ "$(prop ActiveState nginx.service)" = active ] || fail "nginx stand-in was stopped"
ok "polkit: unlisted unit, restart, stop and other users are refused"

# The documented way to extend the list: a copy with the same name in /etc wins.
cursor=$(journal_cursor)
in_guest sh -c 'sed "s/^\(.*\)\"nginx.service\",/&\n\1\"e2e-other.service\",/" \
  /usr/share/polkit-1/rules.d/50-renewd-reload.rules > /etc/polkit-1/rules.d/50-renewd-reload.rules'
in_guest grep -q '"e2e-other.service",' /etc/polkit-1/rules.d/50-renewd-reload.rules ||
  fail "could not edit the rule's list"
wait_until 20 "polkitd reloading its rules" in_guest sh -c \
  "journalctl -u polkit.service --after-cursor='$cursor' | grep -q 'Finished loading, compiling and executing'"
as_renewd systemctl reload e2e-other || fail "reload of a unit added in /etc/polkit-1 refused"
[ "$(reloads e2e-other)" = 1 ] || fail "e2e-other stand-in was not reloaded"
in_guest rm /etc/polkit-1/rules.d/50-renewd-reload.rules
ok "polkit: a copy in /etc/polkit-1/rules.d with an added unit replaces the shipped list"

# --- the unit's sandbox ---------------------------------------------------------------------
# A probe unit: the installed renewd.service with only its type and command replaced, so the
# command runs with renewd's exact user, capabilities and sandbox.
sandbox_probe() { # sandbox_probe NAME TYPE COMMAND [EXTRA-LINE]
  in_guest sh -c "sed -e 's|^Type=.*|Type=$2|' -e '/^NotifyAccess=/d' -e '/^WatchdogSec=/d' \
    -e '/^ExecReload=/d' -e '/^Restart=/d' -e 's|^ExecStart=.*|ExecStart=$3\n${4:-}|' \
    /lib/systemd/system/renewd.service > /run/systemd/system/$1.service"
  in_guest systemctl daemon-reload
}
sandbox_probe e2e-hook-allowed oneshot "/usr/bin/systemctl reload nginx.service"
in_guest systemctl start e2e-hook-allowed.service || fail "deploy hook in renewd's sandbox: reload nginx"
[ "$(reloads nginx)" = 2 ] || fail "nginx stand-in was not reloaded from the sandbox"
sandbox_probe e2e-hook-denied oneshot "/usr/bin/systemctl reload e2e-other.service"
if in_guest systemctl start e2e-hook-denied.service 2>/dev/null; then
  fail "deploy hook in renewd's sandbox could reload an unlisted unit"
fi
ok "sandbox: a deploy hook 'systemctl reload nginx' works under the unit's hardening; unlisted refused"

# http-01 / tls-alpn-01 need ports 80/443: CAP_NET_BIND_SERVICE as user renewd.
port80() { in_guest bash -c 'exec 3<>/dev/tcp/127.0.0.1/80'; }
bind_denied() { in_guest sh -c "journalctl -u $1 | grep -q 'bind: permission denied'"; }
bind_probe_cmd="/usr/bin/pebble-challtestsrv -http01 127.0.0.1:80 -https01 \"\" -tlsalpn01 \"\" -dns01 \"\" -management 127.0.0.1:8056"
sandbox_probe e2e-bind simple "$bind_probe_cmd"
in_guest systemctl start e2e-bind.service
t0=$EPOCHREALTIME
until port80 2>/dev/null; do
  bind_denied e2e-bind.service && fail "user renewd could not bind port 80 in the sandbox"
  [ "$(nspawn_elapsed "$t0" | cut -d. -f1)" -lt 20 ] || fail "no listener on port 80 after 20 s"
  sleep 0.1
done
in_guest systemctl stop e2e-bind.service
ok "sandbox: user renewd binds port 80 (AmbientCapabilities=CAP_NET_BIND_SERVICE)"

# Why the unit has no PrivateUsers=: in a user namespace of its own the capability no longer
# counts for the host's network namespace, and the bind fails.
sandbox_probe e2e-bind-privusers simple "$bind_probe_cmd" "PrivateUsers=yes"
in_guest systemctl start e2e-bind-privusers.service
wait_until 20 "bind refused with PrivateUsers=yes" bind_denied e2e-bind-privusers.service
in_guest systemctl stop e2e-bind-privusers.service
ok "sandbox: with PrivateUsers=yes the same bind is refused (why the unit does not set it)"

###############################################################################################
# Part 2: the daemon, from the .deb
###############################################################################################
if [ "$daemon_built" = 0 ]; then
  echo "SKIP: daemon not built yet (crates/renewd missing)"
  echo "timing: rootfs $NSPAWN_SETUP_KIND ${NSPAWN_SETUP_SECONDS} s, boot ${NSPAWN_BOOT_SECONDS} s"
  exit 0
fi
echo "timing: rootfs $NSPAWN_SETUP_KIND ${NSPAWN_SETUP_SECONDS} s, boot ${NSPAWN_BOOT_SECONDS} s"

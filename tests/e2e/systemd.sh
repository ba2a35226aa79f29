#!/usr/bin/env bash
# renewd under a real systemd 252 (Debian 12 booted with systemd-nspawn), as root.
# scripts/test runs it; alone: bash tests/e2e/systemd.sh
#
# Part 1 — the packaging files, no daemon needed: the unit, sysusers.d, tmpfiles.d and the
#   polkit rule from packaging/ installed by hand; verify + security of the unit inside the
#   guest; the polkit rule lets user renewd reload the listed units, also from inside the
#   unit's sandbox, and nothing else; the sandbox lets renewd bind port 80.
# Part 2 — the daemon, from the .deb (scripts/build-deb), against two pebbles inside the
#   guest (CA "zerossl" requires EAB, CA "short" issues 10-second certificates): install;
#   check outside the unit; start (READY=1); issuance and the deploy hook through polkit;
#   journal fields; reload with a good and a bad config; the watchdog; an upgrade; the
#   expiry alarm at priority crit; stop (STOPPING=1, exit 0); security; purge.
#
# RENEWD_E2E_DEB=PATH tests that package instead of building one. A cached rootfs takes
# about 80 s in all, most of it waiting for the expiry alarm (a minute of back-off).
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/e2e/lib/nspawn.sh

[ "$(id -u)" = 0 ] || { echo "FAIL: tests/e2e/systemd.sh needs root (systemd-nspawn)" >&2; exit 1; }

UNIT=renewd.service
work=$(mktemp -d /tmp/renewd-e2e-work.XXXXXX)   # bind-mounted read-write at /mnt/work

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
# unit_log_since CURSOR UNIT [MAX-PRIORITY]: "PID MESSAGE" lines of UNIT — its own and
# systemd's about it — logged after CURSOR. Filtered with jq rather than journalctl's -u/-p:
# systemd 252's --after-cursor with a match skips the first matching entry whenever the
# cursor's own entry does not match (it skips two entries from the cursor's position).
unit_log_since() {
  in_guest journalctl --after-cursor="$1" -o json --no-pager |
    in_guest jq -r --arg u "$2" --argjson p "${3:-7}" \
      'select((._SYSTEMD_UNIT == $u or .UNIT == $u) and ((.PRIORITY // "6") | tonumber) <= $p)
       | "\(._PID) \(.MESSAGE)"'
}
# unit_log_grep CURSOR UNIT MAX-PRIORITY GREP-ARGS...: grep on unit_log_since's lines, read
# whole first. `unit_log_since ... | grep -q` ends the pipe at the first match; jq, still
# writing, dies of SIGPIPE and pipefail fails the pipeline although the line is there.
unit_log_grep() {
  local out
  out=$(unit_log_since "$1" "$2" "$3") || return 2
  grep "${@:4}" <<<"$out"
}

on_exit() {
  local rc=$?
  set +e
  if [ "$rc" != 0 ] && [ -n "$NSPAWN_LEADER" ]; then
    echo "---- systemctl status $UNIT" >&2
    in_guest systemctl status "$UNIT" --no-pager -l >&2
    echo "---- journalctl -u $UNIT" >&2
    in_guest journalctl -b -u "$UNIT" --no-pager -n 200 >&2
    if [ "$(in_guest systemctl show -P LoadState e2e-pebble.service)" = loaded ]; then
      echo "---- journalctl -u e2e-pebble (last 30)" >&2
      in_guest journalctl -b -u e2e-pebble.service --no-pager -n 30 >&2
    fi
    echo "---- failed units" >&2
    in_guest systemctl --failed --no-pager >&2
  fi
  nspawn_teardown
  rm -rf "$work"
  exit "$rc"
}
trap on_exit EXIT

# Build before booting, so the guest does not wait for cargo.
# RENEWD_E2E_DEB=path tests that package instead of building one.
t_build=$EPOCHREALTIME
deb=${RENEWD_E2E_DEB:-}
[ -n "$deb" ] || deb=$(scripts/build-deb --out "$work")
build_seconds=$(nspawn_elapsed "$t_build")

nspawn_rootfs
nspawn_boot --bind-ro="$PWD:/mnt/src" --bind="$work:/mnt/work"
t_guest=$EPOCHREALTIME

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
# Written beside rules.d and moved in: polkitd reloads as soon as a file appears there, and
# must not read a half-written (or empty) copy.
in_guest sh -c 'sed "s/^\(.*\)\"nginx.service\",/&\n\1\"e2e-other.service\",/" \
  /usr/share/polkit-1/rules.d/50-renewd-reload.rules > /etc/polkit-1/e2e-rule.tmp &&
  mv /etc/polkit-1/e2e-rule.tmp /etc/polkit-1/rules.d/50-renewd-reload.rules'
in_guest grep -q '"e2e-other.service",' /etc/polkit-1/rules.d/50-renewd-reload.rules ||
  fail "could not edit the rule's list"
polkit_reloaded() { unit_log_grep "$cursor" polkit.service 7 -q 'Finished loading, compiling and executing'; }
wait_until 20 "polkitd reloading its rules" polkit_reloaded
as_renewd systemctl reload e2e-other || fail "reload of a unit added in /etc/polkit-1 refused"
[ "$(reloads e2e-other)" = 1 ] || fail "e2e-other stand-in was not reloaded"
cursor=$(journal_cursor)
in_guest rm /etc/polkit-1/rules.d/50-renewd-reload.rules
wait_until 20 "polkitd reloading the shipped rules" polkit_reloaded
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
# Part 2: the daemon, installed from the .deb, against pebble inside the guest
# (RENEWD_E2E_DEB=path tests a given .deb instead of building one).
###############################################################################################

t_part2=$EPOCHREALTIME

# --- install, from a clean slate: undo part 1's hand installation first -----------------------
in_guest systemctl stop nginx.service e2e-other.service
in_guest rm -f /lib/systemd/system/renewd.service /usr/lib/sysusers.d/renewd.conf \
  /usr/lib/tmpfiles.d/renewd.conf /usr/share/polkit-1/rules.d/50-renewd-reload.rules
in_guest rm -rf /var/lib/renewd /etc/renewd
in_guest userdel renewd
in_guest sh -c '! getent group renewd >/dev/null || groupdel renewd'
in_guest systemctl daemon-reload
in_guest systemctl start nginx.service e2e-other.service

cp "$deb" "$work/renewd.deb"
in_guest dpkg -i /mnt/work/renewd.deb >/dev/null
in_guest getent passwd renewd >/dev/null || fail "postinst did not create user renewd"
check_dir /var/lib/renewd 700 renewd:renewd
check_dir /etc/renewd 750 root:renewd
check_dir /etc/renewd/credentials 700 root:root
for f in lib/systemd/system/renewd.service usr/lib/sysusers.d/renewd.conf \
    usr/lib/tmpfiles.d/renewd.conf usr/share/polkit-1/rules.d/50-renewd-reload.rules; do
  in_guest dpkg -S "/$f" >/dev/null || fail "the .deb does not own /$f"
done
in_guest cmp /lib/systemd/system/renewd.service /mnt/src/packaging/renewd.service
grep -q ' /etc/renewd/renewd.toml ' <<<"$(in_guest dpkg-query -W -f='${Conffiles}\n' renewd)" ||
  fail "/etc/renewd/renewd.toml is not a conffile"
check_dir /etc/renewd/renewd.toml 640 root:renewd
[ "$(in_guest systemctl is-enabled renewd.service || true)" = disabled ] || fail "installed enabled"
[ "$(prop ActiveState)" = inactive ] || fail "the package started the daemon"
ok "dpkg -i: user and directories created, conffile 0640 root:renewd, service neither enabled nor started"

out=$(in_guest systemd-analyze verify /lib/systemd/system/renewd.service 2>&1) || true
[ -z "$out" ] || fail "systemd-analyze verify renewd.service in the guest printed: $out"
ok "guest: systemd-analyze verify renewd.service with the real binary: no output"

# --- pebble inside the guest, with a TLS certificate made here --------------------------------
mkdir -p "$work/pebble"
(
  cd "$work/pebble"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=renewd e2e pebble root" -keyout root.key -out root.pem \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
    -keyout leaf.key -out leaf.csr
  printf '%s\n' 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1' 'basicConstraints=CA:FALSE' \
    'keyUsage=critical,digitalSignature' 'extendedKeyUsage=serverAuth' >leaf.ext
  openssl x509 -req -in leaf.csr -CA root.pem -CAkey root.key -set_serial "0x$(openssl rand -hex 8)" \
    -days 2 -extfile leaf.ext -out leaf.pem
) 2>/dev/null
eab_key=$(openssl rand 32 | base64 -w0 | tr '+/' '-_' | tr -d '=')
# pebble_config PORT MANAGEMENT-PORT EAB-REQUIRED VALIDITY-SECONDS
pebble_config() {
  cat <<EOF
{"pebble": {"listenAddress": "127.0.0.1:$1", "managementListenAddress": "127.0.0.1:$2",
  "certificate": "/mnt/work/pebble/leaf.pem", "privateKey": "/mnt/work/pebble/leaf.key",
  "httpPort": 80, "tlsPort": 443, "ocspResponderURL": "",
  "externalAccountBindingRequired": $3, "externalAccountMACKeys": {"kid-1": "$eab_key"},
  "certificateValidityPeriod": $4}}
EOF
}
# CA "zerossl": EAB required, 90-day certificates. CA "short": 10-second certificates, for
# the expiry alarm (stopped once it has issued one, so that every renewal fails).
pebble_config 14000 15000 true 7776000 >"$work/pebble/pebble.json"
pebble_config 14001 15001 false 10 >"$work/pebble/pebble-short.json"
# every name resolves to 127.0.0.1, where renewd's http-01 responder listens on port 80
in_guest systemd-run -q --unit=e2e-challtestsrv /usr/bin/pebble-challtestsrv -dns01 127.0.0.1:8053 \
  -http01 "" -https01 "" -tlsalpn01 "" -management 127.0.0.1:8055 -defaultIPv4 127.0.0.1 -defaultIPv6 ""
challtestsrv_up() { in_guest bash -c 'exec 3<>/dev/tcp/127.0.0.1/8055'; }
wait_until 30 "pebble-challtestsrv's management port" challtestsrv_up
for p in pebble pebble-short; do
  in_guest systemd-run -q --unit="e2e-$p" -E PEBBLE_VA_NOSLEEP=1 -E PEBBLE_WFE_NONCEREJECT=0 \
    -E PEBBLE_AUTHZREUSE=0 /usr/bin/pebble -config "/mnt/work/pebble/$p.json" -dnsserver 127.0.0.1:8053
done
for p in pebble pebble-short; do
  wait_until 30 "$p's directory" in_guest sh -c \
    "journalctl -u e2e-$p | grep -q 'ACME directory available'"
done
ok "pebble in the guest: CA zerossl (EAB required), CA short (10 s certificates); http-01 on port 80"

# --- configuration: the EAB key as a credential, through the shipped example drop-in ---------
in_guest install -m 0644 /mnt/work/pebble/root.pem /etc/renewd/e2e-pebble-root.pem
printf '%s\n' "$eab_key" | in_guest install -m 0600 /dev/stdin /etc/renewd/credentials/zerossl.eab
in_guest install -D -m 0644 /usr/share/doc/renewd/examples/eab-credential.conf \
  /etc/systemd/system/renewd.service.d/eab-credential.conf
# short watchdog and restart delay so the watchdog check takes seconds
in_guest sh -c 'printf "[Service]\nWatchdogSec=4s\nRestartSec=1s\n" > /etc/systemd/system/renewd.service.d/e2e.conf'
in_guest systemctl daemon-reload

# write_config CERT... : each CERT is NAME (CA zerossl, a deploy hook reloading nginx) or
# NAME@CA (no hook); the domain is NAME.e2e.test.
write_config() {
  local spec name ca
  {
    printf '%s\n' 'state_dir = "/var/lib/renewd"' '' '[daemon]' 'workers = 2' '' \
      '[[ca]]' 'name = "zerossl"' 'directory = "https://127.0.0.1:14000/dir"' \
      'trust_roots = ["/etc/renewd/e2e-pebble-root.pem"]' 'eab_kid = "kid-1"' \
      'eab_hmac_key_credential = "zerossl.eab"' '' \
      '[[ca]]' 'name = "short"' 'directory = "https://127.0.0.1:14001/dir"' \
      'trust_roots = ["/etc/renewd/e2e-pebble-root.pem"]' '' '[http01]' 'listen = ["127.0.0.1:80"]'
    for spec in "$@"; do
      name=${spec%@*}
      ca=zerossl
      [ "$spec" = "$name" ] || ca=${spec#*@}
      printf '\n[[cert]]\nname = "%s"\ndomains = ["%s.e2e.test"]\ncas = ["%s"]\n' "$name" "$name" "$ca"
      printf 'key = "ecdsa-p256"\nchallenge = "http-01"\n'
      [ "$ca" != zerossl ] ||
        printf 'deploy_hook = ["/usr/bin/systemctl", "reload", "nginx"]\n'
    done
  } | in_guest install -m 0640 -g renewd /dev/stdin /etc/renewd/renewd.toml
}
write_config www brief@short
# as the operator would: as user renewd, outside the service, so without the credential
# (only systemd reads it, into the unit's $CREDENTIALS_DIRECTORY): a warning, exit 0
err=$(rd check 2>&1 >/dev/null) || fail "renewd check rejected the e2e config: $err"
grep -q 'warning: eab_hmac_key_credential "zerossl.eab" not checked: \$CREDENTIALS_DIRECTORY is unset' <<<"$err" ||
  fail "renewd check outside the unit: no warning about the credential: $err"
ok "renewd check (as user renewd, outside the unit): valid, the credential a warning"
# packaging.md's way to check the credential too: where systemd hands it over
err=$(in_guest systemd-run --pipe --wait -q -p User=renewd \
  -p LoadCredential=zerossl.eab:/etc/renewd/credentials/zerossl.eab \
  /usr/bin/renewd --config /etc/renewd/renewd.toml check 2>&1 >/dev/null) ||
  fail "renewd check with the credential (systemd-run -p LoadCredential=): $err"
[ -z "$err" ] || fail "renewd check with the credential printed: $err"
ok "renewd check under systemd-run -p LoadCredential=: the credential read, no warning"

# systemd's own debug log shows the notifications it receives (READY=1, STOPPING=1)
manager_debug() { in_guest systemd-analyze log-level "$1"; }
notified() { # notified CURSOR STATE: systemd logged STATE from renewd's main process
  unit_log_grep "$1" "$UNIT" 7 -q "Got notification message from PID [0-9]* (.*$2"
}
# journal_since_has PATTERN: renewd.service's log since $cursor has a line matching PATTERN.
# journald stores messages asynchronously: callers wait for them rather than read once.
journal_since_has() { unit_log_grep "$cursor" "$UNIT" 7 -q "$1"; }

# --- start: active only once READY=1 ----------------------------------------------------------
nginx_reloads=$(reloads nginx)
cursor=$(journal_cursor)
manager_debug debug
in_guest systemctl start "$UNIT"   # Type=notify: returns once READY=1 arrived, else fails
manager_debug info
[ "$(prop ActiveState)/$(prop SubState)" = active/running ] || fail "not active/running after start"
# journald may store the two lines a moment apart: wait until both are there.
start_logged() {
  unit_log_since "$cursor" "$UNIT" >"$work/start.log" &&
    grep -q 'Got notification message from PID [0-9]* (.*READY=1' "$work/start.log" &&
    grep -q 'Started renewd.service' "$work/start.log"
}
wait_until 10 "systemd logging READY=1 from renewd, and 'Started'" start_logged
ready_line=$(grep -m1 -n 'Got notification message from PID [0-9]* (.*READY=1' "$work/start.log" | cut -d: -f1)
started_line=$(grep -m1 -n 'Started renewd.service' "$work/start.log" | cut -d: -f1)
[ -n "$started_line" ] && [ "$ready_line" -lt "$started_line" ] || fail "'Started' logged before READY=1"
[ -n "$(prop StatusText)" ] || fail "no STATUS= text"
in_guest sh -c '[ -n "$(ls -A /var/lib/renewd)" ]' || fail "READY=1 before the store exists"
pid=$(prop MainPID)
[ "$(in_guest ps -o user= -p "$pid")" = renewd ] || fail "main process does not run as renewd"
caps=$(in_guest sed -n 's/^CapEff:\s*//p' "/proc/$pid/status")
[ "$caps" = 0000000000000400 ] || fail "effective capabilities $caps, want CAP_NET_BIND_SERVICE only"
ok "systemctl start: READY=1 then active; STATUS='$(prop StatusText)'; user renewd, CapEff $caps"

# --- a certificate is issued and the deploy hook ran -------------------------------------------
status_of() { rd status --json | in_guest jq -er --arg n "$1" --arg f "$2" '.[] | select(.name == $n) | .[$f]'; }
is_valid() { [ "$(status_of "$1" state)" = valid ]; }
reloaded_since() { [ "$(reloads nginx)" -gt "$1" ]; }
wait_until 120 "certificate www issued" is_valid www
live=/var/lib/renewd/certs/www/live
for f in cert chain fullchain privkey; do
  in_guest test -s "$live/$f.pem" || fail "missing $live/$f.pem"
done
[ "$(in_guest stat -L -c '%a %U' "$live/privkey.pem")" = "600 renewd" ] || fail "privkey.pem not 0600 renewd"
mkdir -p "$work/out"
for f in cert privkey; do in_guest cat "$live/$f.pem" >"$work/out/$f.pem"; done
grep -q 'DNS:www.e2e.test' <<<"$(openssl x509 -in "$work/out/cert.pem" -noout -ext subjectAltName)" ||
  fail "issued certificate lacks www.e2e.test"
[ "$(openssl x509 -in "$work/out/cert.pem" -noout -pubkey)" = "$(openssl pkey -in "$work/out/privkey.pem" -pubout)" ] ||
  fail "certificate and privkey.pem do not match"
hex() { tr 'A-F' 'a-f' | sed 's/^0*//'; }
serial=$(status_of www serial | hex) || fail "no serial for www in status --json"
[ "$serial" = "$(openssl x509 -in "$work/out/cert.pem" -noout -serial | cut -d= -f2 | hex)" ] ||
  fail "status serial $serial does not match the installed certificate"
wait_until 30 "the deploy hook reloading nginx" reloaded_since "$nginx_reloads"
ok "certificate www issued (serial $serial), live/ complete, privkey 0600; deploy hook reloaded nginx"

# The 10-second certificate: once issued, its CA goes away, so every renewal fails; the one
# that starts near expiry (critical urgency) raises the alarm, checked further down.
wait_until 60 "certificate brief issued by CA short" is_valid brief
in_guest systemctl stop e2e-pebble-short.service
ok "certificate brief (10 s) issued by CA short; CA short stopped"

# --- structured journal fields ---------------------------------------------------------------
journal_has_cert() { [ -n "$(in_guest journalctl -b -u "$UNIT" CERT_NAME=www -o json --no-pager)" ]; }
wait_until 10 "journal entries with CERT_NAME=www" journal_has_cert
in_guest journalctl -b -u "$UNIT" CERT_NAME=www -o json --no-pager >"$work/journal.json"
n=$(wc -l <"$work/journal.json")
in_guest jq -e -s 'all(.[]; .CERT_NAME == "www" and ._SYSTEMD_UNIT == "renewd.service")' \
  <"$work/journal.json" >/dev/null || fail "journal entries without CERT_NAME/_SYSTEMD_UNIT"
in_guest jq -e -s 'any(.[]; .CA == "zerossl")' <"$work/journal.json" >/dev/null ||
  fail "no journal entry for www carries CA=zerossl"
ok "journalctl -u $UNIT CERT_NAME=www -o json: $n entries with CERT_NAME, CA fields"

# --- reload: a good config is taken, a bad one is refused and the old one kept ----------------
restarts=$(prop NRestarts)
nginx_reloads=$(reloads nginx)
write_config www brief@short mail
rd check >/dev/null 2>&1 || fail "renewd check rejected the three-certificate config"
in_guest systemctl reload "$UNIT"
wait_until 120 "certificate mail issued after reload" is_valid mail
[ "$(prop MainPID)" = "$pid" ] && [ "$(prop NRestarts)" = "$restarts" ] || fail "reload restarted the daemon"
wait_until 30 "the deploy hook for mail" reloaded_since "$nginx_reloads"
ok "systemctl reload with a new certificate: same PID $pid, mail issued, deploy hook ran"

in_guest cp /etc/renewd/renewd.toml /root/renewd.toml.good
in_guest sh -c 'printf "state_dir = \"/var/lib/renewd\"\n[[cert]]\nname = \n" > /etc/renewd/renewd.toml'
rc=0
err=$(rd check 2>&1 >/dev/null) || rc=$?
[ "$rc" = 78 ] || fail "renewd check on a broken config exited $rc, want 78"
grep -qE '^/etc/renewd/renewd.toml:[0-9]+:[0-9]+: ' <<<"$err" || fail "renewd check error not PATH:LINE:COL: $err"
cursor=$(journal_cursor)
in_guest systemctl reload "$UNIT"
warned() { unit_log_grep "$cursor" "$UNIT" 4 -q "^$pid .*renewd.toml"; }
wait_until 20 "a warning naming the bad config in the journal" warned
is_active() { [ "$(prop ActiveState)" = active ]; }
wait_until 20 "back to active after the refused reload" is_active
[ "$(prop MainPID)" = "$pid" ] || fail "a bad config killed the daemon"
in_guest cp /root/renewd.toml.good /etc/renewd/renewd.toml
in_guest systemctl reload "$UNIT"
wait_until 20 "active after restoring the config" is_active
is_valid www && is_valid mail || fail "status after the refused reload"
ok "systemctl reload with a broken config: check exits 78 with PATH:LINE:COL; warning logged, still active, same PID"

# --- watchdog: a stopped main process is killed and restarted, and the daemon resumes ---------
restarts=$(prop NRestarts)
serial_before=$(status_of www serial) || fail "no serial for www in status --json"
cursor=$(journal_cursor)
in_guest kill -STOP "$pid"
restarted() { [ "$(prop NRestarts)" -gt "$restarts" ] && [ "$(prop ActiveState)" = active ] &&
  [ "$(prop MainPID)" != "$pid" ] && [ "$(prop MainPID)" != 0 ]; }
wait_until 60 "watchdog kill and restart" restarted
wait_until 10 "'Watchdog timeout' in the journal" journal_since_has 'Watchdog timeout'
pid=$(prop MainPID)
is_valid www && is_valid mail || fail "certificates not valid after the restart"
[ "$(status_of www serial)" = "$serial_before" ] || fail "the restart re-issued www"
# the new process answers on its control socket: renew is forwarded to it
out=$(rd renew --cert www 2>"$work/renew.err") || fail "renew after the restart: $(cat "$work/renew.err")"
[[ $out == "www: not due (next renewal "* ]] && grep -q 'a daemon is running' "$work/renew.err" ||
  fail "renew after the restart was not answered by the daemon: $out / $(cat "$work/renew.err")"
ok "watchdog: SIGSTOP -> killed and restarted (NRestarts=$(prop NRestarts), new PID $pid), resumed without re-issuing; control socket answers"

# --- upgrade while running: postinst restarts the daemon -----------------------------------------
restarts=$(prop NRestarts)
in_guest dpkg -i /mnt/work/renewd.deb >/dev/null
upgraded() { [ "$(prop ActiveState)" = active ] && [ "$(prop MainPID)" != "$pid" ] && [ "$(prop MainPID)" != 0 ]; }
wait_until 30 "the daemon restarted by the upgrade" upgraded
pid=$(prop MainPID)
is_valid www || fail "status after the upgrade"
ok "dpkg -i over a running daemon (upgrade): restarted, PID $pid, certificates kept"

# --- the expiry alarm: brief's CA is gone and it is past expiry -> PRIORITY=2 (crit) ----------
crit_alarm() { in_guest journalctl -b -u "$UNIT" -p crit -o json --no-pager |
  in_guest jq -e -s 'any(.[]; .CERT_NAME == "brief" and .ALARM == "expiry_danger" and .PRIORITY == "2")'; }
# the first failed renewal backs off about a minute; the next one starts past expiry
wait_until 150 "an expiry alarm for brief at priority crit" crit_alarm
alarm=$(in_guest journalctl -b -u "$UNIT" -p crit -o cat --no-pager CERT_NAME=brief | awk 'NR == 1')
in_guest journalctl -b -u "$UNIT" CERT_NAME=brief -o json --no-pager >"$work/brief.json"
in_guest jq -e -s 'any(.[]; .CA == "short" and .STEP != null and .CLASS == "ca_unavailable")' \
  <"$work/brief.json" >/dev/null || fail "no journal entry for brief with CA=short, STEP and CLASS=ca_unavailable"
ok "journalctl -p crit -u $UNIT: '$alarm'; failures carry CERT_NAME, CA, STEP, CLASS"

# --- stop: STOPPING=1, clean exit 0 -----------------------------------------------------------
cursor=$(journal_cursor)
manager_debug debug
in_guest systemctl stop "$UNIT"
manager_debug info
[ "$(prop ActiveState)" = inactive ] && [ "$(prop Result)" = success ] && [ "$(prop ExecMainStatus)" = 0 ] ||
  fail "stop: state $(prop ActiveState), result $(prop Result), status $(prop ExecMainStatus)"
wait_until 10 "'Stopped renewd.service' in the journal" journal_since_has 'Stopped renewd.service'
wait_until 10 "systemd logging STOPPING=1 from renewd" notified "$cursor" STOPPING=1
rc=0
unit_log_grep "$cursor" "$UNIT" 7 -qE 'SIGKILL|timed out' || rc=$?
[ "$rc" = 1 ] || fail "stop needed SIGKILL (or the journal could not be read: grep status $rc)"
ok "systemctl stop: STOPPING=1, exit 0 after SIGTERM, no kill"

score=$(in_guest systemd-analyze security "$UNIT" --no-pager --threshold=20 |
  sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\) .*/\1/p') ||
  fail "systemd-analyze security $UNIT: above 2.0"
awk -v s="$score" 'BEGIN { exit !(s != "" && s + 0 <= 2.0) }' ||
  fail "systemd-analyze security $UNIT: exposure '$score', want <= 2.0"
ok "guest: systemd-analyze security $UNIT (installed, with the drop-ins): $score"

# --- purge: the state goes, the user stays ----------------------------------------------------
in_guest dpkg --purge renewd >/dev/null
in_guest test ! -e /var/lib/renewd || fail "purge left /var/lib/renewd"
in_guest test ! -e /lib/systemd/system/renewd.service || fail "purge left the unit"
in_guest getent passwd renewd >/dev/null || fail "purge removed the renewd user"
in_guest test -f /etc/renewd/credentials/zerossl.eab || fail "purge removed the administrator's credential"
ok "dpkg --purge: state directory and unit removed; user and the administrator's credential kept"

echo "timing: build-deb ${build_seconds} s, rootfs $NSPAWN_SETUP_KIND ${NSPAWN_SETUP_SECONDS} s," \
  "boot ${NSPAWN_BOOT_SECONDS} s, guest checks $(nspawn_elapsed "$t_guest") s (part 2: $(nspawn_elapsed "$t_part2") s)"

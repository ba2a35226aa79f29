# shellcheck shell=bash
# A real systemd (Debian 12, systemd 252) booted under systemd-nspawn, for end-to-end tests on
# a host whose PID 1 need not be systemd. Source this file from a test script (bash, root):
#
#   . tests/e2e/lib/nspawn.sh
#   nspawn_rootfs                         # cached Debian 12 rootfs -> $NSPAWN_ROOT
#   nspawn_boot --bind-ro="$PWD:/mnt/src" # boot it; teardown is armed on EXIT
#   in_guest systemctl is-active dbus.socket
#
# Design:
# - The rootfs is `debootstrap --variant=minbase` plus $NSPAWN_PACKAGES, trimmed, and cached
#   as a zstd tarball named after a hash of everything that shapes it (suite, package list,
#   recipe version), so changing the list builds a new one. The tarball is extracted once
#   into a sibling directory that later runs reuse: every boot uses --volatile=overlay, so
#   the guest writes only to a tmpfs layer and the extracted tree stays pristine.
# - The container runs in cgroups of its own (named after this shell's PID) so nspawn's
#   payload/supervisor sub-cgroups, and anything left in them, can be removed afterwards.
# - --private-network: the guest sees loopback only. --register=no --keep-unit: no machined
#   and no host systemd needed.
# - Commands run inside with `nsenter -t LEADER -a` (all of the guest's namespaces), with a
#   clean environment so nothing of the host's leaks in.
#
# Timings land in NSPAWN_SETUP_KIND (cold | tarball | warm), NSPAWN_SETUP_SECONDS and
# NSPAWN_BOOT_SECONDS, and are printed to stderr.

# Packages on top of minbase. pebble runs inside the guest; polkitd + dbus + logind for the
# reload-by-polkit test; jq reads `renewd status --json`.
NSPAWN_PACKAGES=(systemd systemd-sysv libpam-systemd dbus polkitd procps ca-certificates
  pebble jq)
NSPAWN_SUITE=bookworm
# This file's directory, absolute: resolved now, since callers may cd later.
NSPAWN_LIBDIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NSPAWN_RECIPE_VERSION=1   # bump when the build/trim steps below change
NSPAWN_BOOT_TIMEOUT=${NSPAWN_BOOT_TIMEOUT:-90}
NSPAWN_CACHE=${NSPAWN_CACHE:-${XDG_CACHE_HOME:-/var/cache}/renewd-e2e}

NSPAWN_PID=""
NSPAWN_LEADER=""
NSPAWN_CGROUP=renewd-e2e-$$
NSPAWN_MACHINE=renewd-e2e-$$
NSPAWN_LOGDIR=""

nspawn_log() { printf 'nspawn: %s\n' "$*" >&2; }

# Seconds since an $EPOCHREALTIME taken earlier, with one decimal.
nspawn_elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

# Host tools: systemd-nspawn, debootstrap, zstd, nsenter (util-linux, always there).
nspawn_host_tools() {
  local need=()
  command -v systemd-nspawn >/dev/null || need+=(systemd-container)
  command -v debootstrap >/dev/null || need+=(debootstrap)
  command -v zstd >/dev/null || need+=(zstd)
  [ ${#need[@]} -eq 0 ] && return 0
  nspawn_log "installing ${need[*]}"
  . "$NSPAWN_LIBDIR/../../../scripts/lib/apt.sh"
  apt_install "${need[@]}"
}

# The Debian mirror this host's apt already uses: the first URIs:/deb line, deb822 or not,
# that is not the security archive; a mirror+file: list (cloud images) gives its first
# entry. NSPAWN_MIRROR overrides.
nspawn_mirror() {
  if [ -n "${NSPAWN_MIRROR:-}" ]; then echo "$NSPAWN_MIRROR"; return; fi
  local f uri
  for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -r "$f" ] || continue
    uri=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) print $i }
      /^deb / { for (i = 2; i <= NF; i++) if ($i ~ /:\/\//) { print $i; break } }' "$f" |
      awk '!/security/ && !found { found = 1; print }')
    case $uri in
      mirror+file:*) uri=$(awk '/^[a-z]+:\/\// && !found { found = 1; print $1 }' "${uri#mirror+file:}" 2>/dev/null) ;;
    esac
    if [ -n "$uri" ]; then echo "$uri"; return; fi
  done
}

nspawn_cache_key() {
  printf '%s\n' "$NSPAWN_SUITE" minbase "$NSPAWN_RECIPE_VERSION" "$(uname -m)" \
    "$(printf '%s\n' "${NSPAWN_PACKAGES[@]}" | sort -u)" | sha256sum | cut -c1-16
}

# debootstrap into $1 and trim what a test never reads.
nspawn_debootstrap() {
  local dir=$1 mirror log
  mirror=$(nspawn_mirror)
  [ -n "$mirror" ] || { nspawn_log "no Debian mirror in the host's apt sources"; return 1; }
  log=$NSPAWN_CACHE/debootstrap.log
  nspawn_log "debootstrap $NSPAWN_SUITE from $mirror (log: $log)"
  # Twice: a mirror in the middle of a sync answers with mismatched hashes for a moment.
  local try
  for try in 1 2; do
    debootstrap --variant=minbase --include="$(IFS=,; echo "${NSPAWN_PACKAGES[*]}")" \
      "$NSPAWN_SUITE" "$dir" "$mirror" >"$log" 2>&1 && break
    tail -n 30 "$log" >&2
    [ "$try" = 2 ] && return 1
    nspawn_log "debootstrap failed; once more in 15 s"
    rm -rf "$dir" && mkdir -p "$dir"
    sleep 15
  done
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* \
    "$dir"/usr/share/doc/* "$dir"/usr/share/man/* "$dir"/usr/share/locale/* "$dir"/usr/share/info/*
  # no machine-id: systemd makes a transient one at every boot
  : >"$dir/etc/machine-id"
}

# Make $NSPAWN_ROOT a ready rootfs: reuse the extracted tree, else extract the cached
# tarball, else debootstrap and cache. Serialised with flock so parallel runs share work.
nspawn_rootfs() {
  nspawn_host_tools
  mkdir -p "$NSPAWN_CACHE"
  local key tarball t0
  key=$(nspawn_cache_key)
  tarball=$NSPAWN_CACHE/rootfs-$key.tar.zst
  NSPAWN_ROOT=$NSPAWN_CACHE/rootfs-$key
  t0=$EPOCHREALTIME
  exec {lockfd}>"$NSPAWN_CACHE/.lock"
  flock "$lockfd"
  if [ -f "$NSPAWN_ROOT/.complete" ]; then
    NSPAWN_SETUP_KIND=warm
  else
    rm -rf "$NSPAWN_ROOT" "$NSPAWN_ROOT.tmp"
    mkdir -p "$NSPAWN_ROOT.tmp"
    if [ -f "$tarball" ]; then
      NSPAWN_SETUP_KIND=tarball
    else
      NSPAWN_SETUP_KIND=cold
      nspawn_debootstrap "$NSPAWN_ROOT.tmp" || { rm -rf "$NSPAWN_ROOT.tmp"; flock -u "$lockfd"; return 1; }
      tar -C "$NSPAWN_ROOT.tmp" --numeric-owner --xattrs --xattrs-include='*' --zstd \
        -cpf "$tarball.tmp" .
      mv "$tarball.tmp" "$tarball"
      rm -rf "$NSPAWN_ROOT.tmp"
      mkdir -p "$NSPAWN_ROOT.tmp"
    fi
    # Always boot from what the tarball holds, so a cold run tests the cache too.
    tar -C "$NSPAWN_ROOT.tmp" --numeric-owner --xattrs --xattrs-include='*' --zstd -xpf "$tarball"
    touch "$NSPAWN_ROOT.tmp/.complete"
    mv "$NSPAWN_ROOT.tmp" "$NSPAWN_ROOT"
  fi
  flock -u "$lockfd"
  exec {lockfd}>&-
  NSPAWN_SETUP_SECONDS=$(nspawn_elapsed "$t0")
  nspawn_log "rootfs ready ($NSPAWN_SETUP_KIND) in ${NSPAWN_SETUP_SECONDS} s: $NSPAWN_ROOT"
}

# The cgroup hierarchies this host has that nspawn cares about (v2 and/or name=systemd v1).
nspawn_hierarchies() {
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    echo /sys/fs/cgroup                                     # pure cgroup v2
  else
    local h
    for h in unified systemd; do [ -d /sys/fs/cgroup/$h ] && echo /sys/fs/cgroup/$h; done
  fi
}

# Boot the rootfs. Extra arguments go to systemd-nspawn (e.g. --bind-ro=SRC:DST).
# Sets NSPAWN_PID (nspawn) and NSPAWN_LEADER (the guest's PID 1 as the host sees it).
nspawn_boot() {
  [ -n "${NSPAWN_ROOT:-}" ] || { nspawn_log "nspawn_rootfs first"; return 1; }
  NSPAWN_LOGDIR=$(mktemp -d /tmp/renewd-e2e.XXXXXX)
  # A caller with an EXIT trap of its own must call nspawn_teardown from it.
  [ -n "$(trap -p EXIT)" ] || trap nspawn_teardown EXIT
  trap 'exit 130' INT HUP    # so that the EXIT trap runs on these too
  trap 'exit 143' TERM
  local h hierarchies t0 state left c
  hierarchies=$(nspawn_hierarchies)
  for h in $hierarchies; do mkdir -p "$h/$NSPAWN_CGROUP"; done
  t0=$EPOCHREALTIME
  # Only the subshell that becomes nspawn moves into the new cgroup; this shell stays put.
  (
    for h in $hierarchies; do echo "$BASHPID" >"$h/$NSPAWN_CGROUP/cgroup.procs"; done
    exec setsid systemd-nspawn --quiet -D "$NSPAWN_ROOT" --boot -M "$NSPAWN_MACHINE" \
      --register=no --keep-unit --volatile=overlay --private-network --console=read-only \
      "$@"
  ) >"$NSPAWN_LOGDIR/console.log" 2>&1 </dev/null &
  NSPAWN_PID=$!
  while :; do
    kill -0 "$NSPAWN_PID" 2>/dev/null || {
      nspawn_log "systemd-nspawn exited during boot"; cat "$NSPAWN_LOGDIR/console.log" >&2; return 1; }
    if [ -z "$NSPAWN_LEADER" ]; then
      # The guest's PID 1: nspawn's child in another PID namespace. nspawn first forks a
      # short-lived helper in ours, which must not be taken for it.
      for c in $(cat "/proc/$NSPAWN_PID/task/$NSPAWN_PID/children" 2>/dev/null || true); do
        if [ "$(readlink "/proc/$c/ns/pid" 2>/dev/null)" != "$(readlink /proc/self/ns/pid)" ] &&
            [ -n "$(readlink "/proc/$c/ns/pid" 2>/dev/null)" ]; then
          NSPAWN_LEADER=$c
        fi
      done
    fi
    if [ -n "$NSPAWN_LEADER" ]; then
      # --wait blocks until boot has finished; it fails while the guest's manager is not
      # reachable yet, so keep asking until the deadline.
      left=$((NSPAWN_BOOT_TIMEOUT - $(nspawn_elapsed "$t0" | cut -d. -f1)))
      state=$(timeout "$((left > 1 ? left : 1))" nsenter -t "$NSPAWN_LEADER" -a \
        systemctl is-system-running --wait 2>/dev/null || true)
      case $state in
        running) break ;;
        degraded)
          nspawn_log "guest booted degraded:"; in_guest systemctl --failed --no-pager >&2 || true
          return 1 ;;
      esac
    fi
    if [ "$(nspawn_elapsed "$t0" | cut -d. -f1)" -ge "$NSPAWN_BOOT_TIMEOUT" ]; then
      nspawn_log "boot timeout after ${NSPAWN_BOOT_TIMEOUT} s (state: ${state:-none})"
      cat "$NSPAWN_LOGDIR/console.log" >&2
      return 1
    fi
    sleep 0.1
  done
  NSPAWN_BOOT_SECONDS=$(nspawn_elapsed "$t0")
  nspawn_log "guest running in ${NSPAWN_BOOT_SECONDS} s (leader PID $NSPAWN_LEADER)"
}

# Run a command inside the guest: all its namespaces, its root, a clean environment.
in_guest() {
  nsenter -t "$NSPAWN_LEADER" -a -- /usr/bin/env -i \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 TERM=dumb SYSTEMD_PAGER= SYSTEMD_COLORS=0 "$@"
}

# Copy a host file into the guest: in_guest_install MODE SRC DST
in_guest_install() {
  in_guest install -D -m "$1" /dev/stdin "$3" <"$2"
}

# Stop the guest and remove every trace: nspawn, its cgroups, the log dir. Runs on EXIT,
# also after a failure, so it never fails itself.
nspawn_teardown() {
  local rc=$? h
  set +e
  if [ -n "$NSPAWN_PID" ] && kill -0 "$NSPAWN_PID" 2>/dev/null; then
    kill -TERM "$NSPAWN_PID"          # nspawn asks the guest to halt cleanly (SIGRTMIN+3)
    for _ in $(seq 150); do kill -0 "$NSPAWN_PID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$NSPAWN_PID" 2>/dev/null; then
      nspawn_log "guest did not halt in 15 s: killing"
      kill -KILL "$NSPAWN_PID"
    fi
    wait "$NSPAWN_PID" 2>/dev/null
  fi
  for h in $(nspawn_hierarchies); do
    [ -d "$h/$NSPAWN_CGROUP" ] || continue
    # anything still alive in there (only after a KILL) goes too
    [ -f "$h/$NSPAWN_CGROUP/cgroup.kill" ] && echo 1 >"$h/$NSPAWN_CGROUP/cgroup.kill" 2>/dev/null
    find "$h/$NSPAWN_CGROUP" -depth -type d -exec rmdir {} + 2>/dev/null
    [ -d "$h/$NSPAWN_CGROUP" ] && nspawn_log "could not remove cgroup $h/$NSPAWN_CGROUP"
  done
  [ -n "$NSPAWN_LOGDIR" ] && rm -rf "$NSPAWN_LOGDIR"
  NSPAWN_PID=""
  NSPAWN_LEADER=""
  return "$rc"
}

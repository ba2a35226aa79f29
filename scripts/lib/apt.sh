# apt_install PACKAGE...: installs packages with apt-get, as root or through sudo, on a
# fresh Debian machine. Waits for the locks that apt-daily, unattended-upgrades or
# cloud-init hold there for a while: install waits for the dpkg lock (up to 10 min), and
# update, which gives up at once on the lists lock, is tried every 10 s for 5 min. A
# download that a mirror answered badly is retried too. Sourced by scripts/test, scripts/demo, scripts/bench and the e2e
# test's nspawn library.
apt_install() {
  local sudo=() try
  [ "$(id -u)" = 0 ] || sudo=(sudo)
  local apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q
    -o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)
  for try in $(seq 30); do
    "${apt[@]}" update -qq && break
    [ "$try" = 30 ] && { echo "apt-get update failed 30 times in 5 min" >&2; return 1; }
    sleep 10
  done
  for try in 1 2; do
    "${apt[@]}" install -y -qq --no-install-recommends $(printf '%s\n' "$@" | sort -u) >/dev/null &&
      return 0
    [ "$try" = 2 ] && { echo "apt-get install $* failed twice" >&2; return 1; }
    sleep 10
  done
}

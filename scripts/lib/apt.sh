# apt_install PACKAGE...: installs packages with apt-get, as root or through sudo, on a
# fresh Debian machine. Waits for a dpkg lock held by unattended-upgrades or cloud-init
# (up to 10 min) rather than failing at once, and retries an update or download that a
# mirror answered badly. Sourced by scripts/test, scripts/demo, scripts/bench and the e2e
# test's nspawn library.
apt_install() {
  local sudo=() try
  [ "$(id -u)" = 0 ] || sudo=(sudo)
  local apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q
    -o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)
  for try in 1 2 3; do
    "${apt[@]}" update -qq && break
    [ "$try" = 3 ] && { echo "apt-get update failed 3 times" >&2; return 1; }
    sleep 10
  done
  for try in 1 2; do
    "${apt[@]}" install -y -qq --no-install-recommends $(printf '%s\n' "$@" | sort -u) >/dev/null &&
      return 0
    [ "$try" = 2 ] && { echo "apt-get install $* failed twice" >&2; return 1; }
    sleep 10
  done
}

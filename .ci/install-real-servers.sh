#!/usr/bin/env bash
# Installs the real servers the integration tests start on loopback:
# - tests/integration/real_mta.rs: Debian's postfix (the MTA) and nginx (the MTA-STS policy
#   host);
# - tests/integration/real_dns.rs: Debian's unbound (a validating recursive resolver) and
#   ldnsutils (ldns-keygen and ldns-signzone, which sign the zones unbound serves);
# - the `mxprobe serve` tests: Debian's prometheus (the server, which scrapes the exporter,
#   and promtool, which checks the exposition and the alerting rules);
# - the distributed-scan tests: Debian's redis-server (and redis-tools for redis-cli);
# - the HTML report tests: Debian's chromium (headless, to render the report and take a
#   screenshot).
#
# - Idempotent: installs only the packages whose binaries are missing; does nothing when all
#   are there.
# - postfix is preseeded with "No configuration", so the package sets up no mail system; the
#   test writes its own main.cf/master.cf in a temporary directory and starts its own master.
#   The unbound test likewise writes its own unbound.conf (its own port on 127.0.0.1, its own
#   zones and private trust anchor) and never uses the package's configuration or service.
# - Nothing is left running or listening: service starts during the install are refused (a
#   temporary /usr/sbin/policy-rc.d when the machine has none), and after an install the
#   script fails if one of these servers listens on any address outside
#   loopback.
# - Needs root (apt-get). Without root it says so and exits 0: the tests then skip (or fail
#   under CI=true, where the binaries must be present).
set -euo pipefail

# package -> the binaries that show it is installed
declare -A needs=(
  [postfix]="/usr/sbin/postfix /usr/lib/postfix/sbin/master"
  [nginx]="/usr/sbin/nginx"
  [unbound]="/usr/sbin/unbound"
  [ldnsutils]="/usr/bin/ldns-keygen /usr/bin/ldns-signzone"
  [prometheus]="/usr/bin/prometheus /usr/bin/promtool"
  [redis-server]="/usr/bin/redis-server"
  [redis-tools]="/usr/bin/redis-cli"
  [chromium]="/usr/bin/chromium"
)

missing=()
for package in postfix nginx unbound ldnsutils prometheus redis-server redis-tools chromium; do
  for binary in ${needs[$package]}; do
    if [ ! -x "$binary" ]; then
      missing+=("$package")
      break
    fi
  done
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "real servers: postfix, nginx, unbound, ldnsutils, prometheus, redis-server and chromium already installed"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "real servers: not root, cannot install ${missing[*]}; the real-server tests will skip" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
# "No configuration": the package writes no main.cf and configures no mail delivery.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
own_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  # Exit code 101 = "action forbidden": invoke-rc.d starts no service during the install,
  # so nginx never listens on 0.0.0.0:80, unbound never on port 53, postfix, prometheus and
  # redis-server never start.
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  own_policy=1
fi
cleanup() {
  if [ "$own_policy" -eq 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
}
trap cleanup EXIT
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
cleanup
trap - EXIT
for package in "${missing[@]}"; do
  for binary in ${needs[$package]}; do
    if [ ! -x "$binary" ]; then
      echo "real servers: $binary still missing after apt-get install $package" >&2
      exit 1
    fi
  done
done
echo "real servers: installed $(dpkg-query -W -f='${Package} ${Version}\n' "${missing[@]}" | paste -sd, -)"

# The install must have started nothing: no postfix, nginx, unbound, prometheus or redis
# process may listen
# outside loopback (the tests start and stop their own instances on 127.0.0.x).
if command -v ss >/dev/null 2>&1; then
  listening=$(ss -Hltunp 2>/dev/null \
    | grep -E 'users:\(\("(master|nginx|smtpd|unbound|prometheus|redis-server)"' \
    | awk '$5 !~ /^(127\.|\[::1\]:)/' || true)
  if [ -n "$listening" ]; then
    echo "real servers: the install left a server listening beyond loopback:" >&2
    echo "$listening" >&2
    exit 1
  fi
fi

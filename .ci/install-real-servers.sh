#!/usr/bin/env bash
# Installs the real servers that tests/integration/real_mta.rs starts on loopback: Debian's
# postfix (the MTA) and nginx (the MTA-STS policy host).
#
# - Idempotent: does nothing when both binaries are already there.
# - postfix is preseeded with "No configuration", so the package sets up no mail system; the
#   test writes its own main.cf/master.cf in a temporary directory and starts its own master.
# - Nothing is left running or listening: service starts during the install are refused (a
#   temporary /usr/sbin/policy-rc.d when the machine has none), and after an install the
#   script fails if a postfix or nginx process listens on any address outside loopback.
# - Needs root (apt-get). Without root it says so and exits 0: the test then skips (or fails
#   under CI=true, where the binaries must be present).
set -euo pipefail

have_binaries() {
  [ -x /usr/sbin/postfix ] && [ -x /usr/lib/postfix/sbin/master ] && [ -x /usr/sbin/nginx ]
}

if have_binaries; then
  echo "real servers: postfix and nginx already installed"
else
  if [ "$(id -u)" -ne 0 ]; then
    echo "real servers: not root, cannot install postfix and nginx; the real-MTA test will skip" >&2
    exit 0
  fi
  export DEBIAN_FRONTEND=noninteractive
  # "No configuration": the package writes no main.cf and configures no mail delivery.
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    # Exit code 101 = "action forbidden": invoke-rc.d starts no service during the install,
    # so nginx never listens on 0.0.0.0:80 and postfix never starts.
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    own_policy=1
  fi
  cleanup() {
    if [ "$own_policy" -eq 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
  }
  trap cleanup EXIT
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends postfix nginx >/dev/null
  cleanup
  trap - EXIT
  have_binaries || {
    echo "real servers: postfix or nginx still missing after apt-get install" >&2
    exit 1
  }
  echo "real servers: installed $(dpkg-query -W -f='${Package} ${Version}\n' postfix nginx | paste -sd, -)"

  # The install must have started nothing: no postfix or nginx process may listen outside
  # loopback (the test starts and stops its own instances on 127.0.0.x).
  if command -v ss >/dev/null 2>&1; then
    listening=$(ss -Hltnp 2>/dev/null \
      | grep -E 'users:\(\("(master|nginx|smtpd)"' \
      | awk '$4 !~ /^(127\.|\[::1\]:)/' || true)
    if [ -n "$listening" ]; then
      echo "real servers: the install left postfix or nginx listening beyond loopback:" >&2
      echo "$listening" >&2
      exit 1
    fi
  fi
fi

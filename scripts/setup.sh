#!/usr/bin/env bash
# Installs the Debian packages the test suite drives (`npm run setup`, as root; .ci/run runs it too):
# whichever of scripts/preflight.mjs's list it finds missing. curl (the lab's printed curl lines are run by
# a test), python3-exchangelib (a real EWS client the Autodiscover tests drive with Debian's
# /usr/bin/python3; test/e2e/autodiscover-clients.e2e.test.ts), slapd + ldap-utils (OpenLDAP:
# test/directory/ldap-directory.contract.test.ts starts throwaway slapds, src/lab/slapd.ts), redis-server
# (the shared store of several front ends: src/lab/redis.ts starts throwaway ones), sogo +
# sogo-activesync + dovecot-imapd + memcached + postgresql (a real ActiveSync back end: the SOGo tests
# start throwaway SOGo stacks on loopback, src/lab/sogo/; docs/lab.md §3) and
# libwbxml2-utils (xml2wbxml/wbxml2xml, to decode EAS traffic by hand), haproxy + nginx + libnginx-mod-stream +
# systemd (the load balancers and the unit of deploy/, run and checked by test/deploy/), samba +
# samba-ad-provision + samba-dsdb-modules + samba-vfs-modules + winbind (a real Active Directory: throwaway Samba AD
# domain controllers on loopback addresses of their own, src/lab/samba/; docs/lab.md §5), krb5-user + squid (kinit
# against the lab DC's KDC, and squid's Kerberos acceptor negotiate_kerberos_auth: docs/lab.md §5.6). Without them those tests fail, they
# never skip. No package's service is started by the install (a deny-all policy-rc.d is in place while
# apt-get runs): the tests start their own daemons on loopback addresses. Needs node (for the list), not node_modules.
set -euo pipefail
cd "$(dirname "$0")/.."

list=$(node scripts/preflight.mjs --missing) # apart, so that set -e stops here if it fails
read -r -a missing <<<"$list"
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: every Debian package the tests drive is installed"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "setup: installing Debian packages needs root: run sudo npm run setup (missing: ${missing[*]})" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null; then
  echo "setup: no apt-get here; install these Debian packages (or their equivalents) by hand: ${missing[*]}" >&2
  exit 1
fi
apt-get update -qq
# slapd asks for a domain and an admin password unless told to make no database: then it installs
# without prompts, and its system service has no configuration and serves nothing. It would not matter
# if it did: the tests start their own slapd on random loopback ports (docs/lab.md
# §1).
echo 'slapd slapd/no_configuration boolean true' | debconf-set-selections
# Without a policy-rc.d, apt would start dovecot (IMAP on all interfaces), memcached, Redis, PostgreSQL's
# cluster, SOGo and Samba's smbd, nmbd and winbind as services. A deny-all one (exit 101: "action forbidden") keeps them all stopped; one
# that is already there (container images ship one) is left as it is.
policy=/usr/sbin/policy-rc.d
made_policy=
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\n# Temporary, from scripts/setup.sh: start no service during apt-get.\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  made_policy=1
  trap 'rm -f "$policy"' EXIT # also when apt-get fails
fi
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
if [ -n "$made_policy" ]; then
  rm -f "$policy"
  trap - EXIT
fi
node scripts/preflight.mjs

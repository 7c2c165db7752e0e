#!/bin/sh
# netns.sh - run a command in a fresh network namespace whose resolver is 127.0.0.1
# SPDX-License-Identifier: BSD-2-Clause
# Usage: netns.sh COMMAND [ARG]...  (root; exit 77 = skipped when not possible)
# Creates pdspfNNNN with only "lo" up and /etc/netns/pdspfNNNN/resolv.conf,
# runs COMMAND there with PDSPF_NETNS set, and always removes both.
if [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null 2>&1; then
	echo "SKIP: needs root and iproute2 for ip netns"
	exit 77
fi
NS="pdspf$$"
cleanup() {
	ip netns delete "$NS" 2>/dev/null
	rm -rf "/etc/netns/$NS"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
if ! ip netns add "$NS"; then
	echo "ERROR: ip netns add $NS failed"
	exit 99
fi
mkdir -p "/etc/netns/$NS" || exit 99
echo "nameserver 127.0.0.1" >"/etc/netns/$NS/resolv.conf"
ip netns exec "$NS" ip link set lo up || exit 99
PDSPF_NETNS="$NS" ip netns exec "$NS" "$@"
rc=$?
exit $rc

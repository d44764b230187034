#!/usr/bin/env bash
# Smoke scenario: proves the harness. Each VM shows its addresses, pings the other over
# eth1, runs a netlab binary built on the host, and the shared folder is shown live in
# both directions (host1 writes, host2 reads and answers, host1 reads the answer).
set -euo pipefail
# shellcheck source=lib.sh
. "$REPO/vm/guest/lib.sh"

step "addresses"
ip addr show
ip -br addr show eth1 | grep -F "$IP/24" || fail "eth1 does not have $IP/24"

barrier up
step "ping $PEER ($PEER_IP) over eth1"
ping -c 3 -i 0.2 -W 2 -I eth1 "$PEER_IP"

step "host binaries run here"
netlab --version
uname -r

step "the shared folder is live"
case "$HOST" in
  host1)
    token="host1 $(cat /proc/sys/kernel/random/boot_id)"
    mark shared-from-host1 "$token"
    wait_for shared-from-host2 60
    answer="$(cat "$SHARED/shared-from-host2")"
    [ "$answer" = "host2 read: $token" ] || fail "host2 answered '$answer'"
    echo "host2 read what host1 wrote: $answer"
    ;;
  host2)
    wait_for shared-from-host1 60
    token="$(cat "$SHARED/shared-from-host1")"
    echo "host1 wrote: $token"
    mark shared-from-host2 "host2 read: $token"
    ;;
esac

barrier finished
step "smoke passed"

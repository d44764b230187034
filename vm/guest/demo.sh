# shellcheck shell=bash
# The body of the demo scenarios (static.sh, dir.sh, etcd.sh, flannel.sh set DEMO and
# STORE, then source this): what a Vagrant VM does, then the checks.
#  1. eth1 as it was before anything (addresses, MTU, state, master).
#  2. vagrant/provision.sh, as Vagrant runs it (offline: the packages are the host's;
#     netlab from the Debian package packaging/build-deb made on the host).
#  3. the overlay pings the other VM's container; `netlab check` of the half passes.
#  4. teardown (daemons stopped, `netlab destroy`, the container detached): eth1 is
#     exactly as it was.
set -euo pipefail
# shellcheck source=lib.sh
. "$REPO/vm/guest/lib.sh"

n=${HOST#host}
# The card's link, addresses and routes; the IPv6 link-local address's duplicate
# detection (`tentative` for its first second) is the kernel's, not a change.
card_state() {
  ip -d -o link show eth1 | sed 's/ *\(link\/ether\|altname\).*//'
  ip -o addr show eth1 | sed 's/ tentative//'
  ip route show dev eth1
}
before=$(card_state)

step "provision ($DEMO, $STORE store)"
package=$(ls -t "$REPO"/target/debian/netlab_*.deb | head -1)
NETLAB_HOST=$HOST NETLAB_DEMO=$DEMO NETLAB_STORE=$STORE NETLAB_SHARED=$SHARED NETLAB_REPO=$REPO \
  NETLAB_PACKAGE=$package NETLAB_OFFLINE=1 bash "$REPO/vagrant/provision.sh"
dpkg -s netlab | grep -q "^Status: install ok installed" || fail "the netlab package is not installed"
barrier provisioned 180

if [ "$DEMO" = flannel ]; then
  wait_for "overlaynet/$PEER.container" 60
  target=$(cat "$SHARED/overlaynet/$PEER.container")
else
  target=11.11.11.$((4 - n))
fi
step "ct$n pings $PEER's container $target over the overlay"
ok=0
for _ in $(seq 1 40); do
  if ip netns exec "ct$n" ping -c 1 -W 1 "$target" >/dev/null; then ok=1; break; fi
  sleep 0.5
done
[ "$ok" = 1 ] || fail "ct$n cannot reach $target"
ip netns exec "ct$n" ping -c 3 -i 0.2 -W 2 "$target"

if [ "$DEMO" != flannel ]; then
  step "netlab check"
  /usr/bin/netlab check /etc/netlab/overlay.yaml
fi
barrier checked 120

step "teardown"
for pid in /run/vxlan-agent.pid /run/vxlan-agent-node.pid /run/etcd-netlab.pid; do
  if [ -f "$pid" ]; then kill "$(cat "$pid")" 2>/dev/null || true; fi
done
if [ "$DEMO" = flannel ]; then
  echo '{"cniVersion":"1.1.0","name":"vagrant","type":"netlab-cni"}' |
    CNI_COMMAND=DEL CNI_CONTAINERID="ct$n" CNI_NETNS="/var/run/netns/ct$n" CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni \
    /usr/lib/cni/netlab-cni
  ip netns delete "ct$n"
else
  /usr/bin/netlab destroy /etc/netlab/overlay.yaml
  [ -z "$(ip netns list)" ] || fail "namespaces left: $(ip netns list)"
fi
after=$(card_state)
if [ "$before" != "$after" ]; then
  echo "before:"; echo "$before"; echo "after:"; echo "$after"
  fail "eth1 changed"
fi
echo "eth1 as it was:"; echo "$after"
barrier finished 120
step "$SCENARIO passed"

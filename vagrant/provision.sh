#!/usr/bin/env bash
# Provision one VM of the two-VM demos (run as root by Vagrant, and by vm/run in CI).
#   NETLAB_HOST   host1 | host2
#   NETLAB_DEMO   static | dynamic | flannel
#   NETLAB_STORE  dir | etcd (dynamic and flannel)
#   NETLAB_SHARED the folder both VMs share live (default /vagrant): the folder store
#   NETLAB_REPO   the repository: half-files, and the package in target/debian
#                 (default: the shared folder, as Vagrant shares the repository)
#   NETLAB_PACKAGE the package to install (default: the newest in NETLAB_REPO/target/debian)
#   NETLAB_OFFLINE=1  the packages are there already: no apt-get (the CI VMs)
# It installs netlab from the Debian package in $NETLAB_SHARED/target/debian (build it
# on the host: packaging/build-deb --out target/debian), applies the host's half of the
# demo and starts the daemons as systemd units (or, where systemd is not running, the
# units' own command lines in the background).
set -euo pipefail

host=${NETLAB_HOST:?NETLAB_HOST: host1 or host2}
demo=${NETLAB_DEMO:-dynamic}
store=${NETLAB_STORE:-dir}
shared=${NETLAB_SHARED:-/vagrant}
repo=${NETLAB_REPO:-$shared}
case "$host" in host1) address=192.168.104.2 n=1 ;; host2) address=192.168.104.3 n=2 ;; *) echo "NETLAB_HOST=$host: host1 or host2" >&2; exit 2 ;; esac
case "$demo" in static|dynamic|flannel) ;; *) echo "NETLAB_DEMO=$demo: static, dynamic or flannel" >&2; exit 2 ;; esac
case "$store" in dir|etcd) ;; *) echo "NETLAB_STORE=$store: dir or etcd" >&2; exit 2 ;; esac
etcd_url=http://192.168.104.2:2379
say() { echo "provision $host: $*"; }

# The packages.
if [ "${NETLAB_OFFLINE:-0}" != 1 ]; then
  packages=(iproute2 iputils-ping nftables)
  if [ "$store" = etcd ] && [ "$host" = host1 ] && [ "$demo" != static ]; then packages+=(etcd-server); fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${packages[@]}"
fi
package=${NETLAB_PACKAGE:-$(ls -t "$repo"/target/debian/netlab_*.deb 2>/dev/null | head -1 || true)}
if [ -z "$package" ] || [ ! -f "$package" ]; then
  echo "provision $host: no netlab package in $repo/target/debian: run packaging/build-deb on the host first" >&2
  exit 1
fi
say "installing $(basename "$package")"
dpkg -i "$package" >/dev/null

# The VM's own card on the private network (eth1 on Debian's boxes). netlab never
# changes it: the half-files name it only as the VXLAN device's lower device.
card=$(ip -o -4 addr show | awk -v a="$address/" 'index($4, a) == 1 { print $2; exit }')
if [ -z "$card" ]; then
  echo "provision $host: no interface holds $address (the private network)" >&2
  exit 1
fi
say "private network on $card ($address)"

systemd_running() { [ -d /run/systemd/system ]; }

# NAME's value in an environment file as systemd reads it (quotes around it dropped);
# read, never sourced.
env_value() {
  sed -n "s/^$2=//p" "$1" | tail -1 | sed 's/^"\(.*\)"$/\1/'
}

# A unit of the package: enabled and started under systemd; elsewhere the same command
# line the unit runs, in the background, with a pid file.
start_unit() {
  local unit=$1
  if systemd_running; then
    systemctl daemon-reload
    systemctl enable --now "$unit" >/dev/null
    return
  fi
  local -a command
  # As systemd does with $VARIABLE in ExecStart, the arguments are split on spaces.
  case "$unit" in
    netlab@*) command=(/usr/bin/netlab apply "/etc/netlab/${unit#netlab@}.yaml") ;;
    vxlan-agent) read -ra args <<<"$(env_value /etc/netlab/vxlan-agent.env VXLAN_AGENT_ARGS)"; command=(/usr/bin/vxlan-agent run "${args[@]}") ;;
    vxlan-agent-node) read -ra args <<<"$(env_value /etc/netlab/node.env NODE_ARGS)"; command=(/usr/bin/vxlan-agent node "${args[@]}") ;;
  esac
  local name=${unit//@/-}
  nohup "${command[@]}" >"/var/log/$name.log" 2>&1 &
  echo $! >"/run/$name.pid"
}

# etcd on host1, listening on the private network.
start_etcd() {
  if systemd_running; then
    cat >/etc/default/etcd <<ETCD
ETCD_NAME=host1
ETCD_DATA_DIR=/var/lib/etcd/netlab
ETCD_LISTEN_CLIENT_URLS=$etcd_url,http://127.0.0.1:2379
ETCD_ADVERTISE_CLIENT_URLS=$etcd_url
ETCD
    systemctl restart etcd
  else
    mkdir -p /var/lib/etcd-netlab
    nohup etcd --name host1 --data-dir /var/lib/etcd-netlab --listen-client-urls "$etcd_url,http://127.0.0.1:2379" \
      --advertise-client-urls "$etcd_url" >/var/log/etcd-netlab.log 2>&1 &
    echo $! >/run/etcd-netlab.pid
  fi
}

wait_for_etcd() {
  for _ in $(seq 1 240); do
    if (exec 3<>/dev/tcp/192.168.104.2/2379) 2>/dev/null; then return 0; fi
    sleep 0.5
  done
  echo "provision $host: etcd on host1 ($etcd_url) did not answer in 120 s" >&2
  exit 1
}

# The host's half of a demo, with its card's name if it is not eth1.
install_half() {
  sed "s/\\bdev: eth1\\b/dev: $card/" "$repo/topologies/vm/$host-$1.yaml" >/etc/netlab/overlay.yaml
  start_unit netlab@overlay
  if ! systemd_running; then wait "$(cat /run/netlab-overlay.pid)"; fi
}

store_url=dir:$shared/overlaynet/storage
if [ "$store" = etcd ] && [ "$demo" != static ]; then
  store_url=etcd://192.168.104.2:2379
  if [ "$host" = host1 ]; then start_etcd; fi
  wait_for_etcd
fi

case "$demo" in
  static)
    install_half static
    say "part 6 (static): try ip netns exec ct$n ping 11.11.11.$((4 - n))"
    ;;
  dynamic)
    mkdir -p "$shared/overlaynet/storage"
    # netlab's apply runs the half's vxlan-agent (its supervisor restarts it); the
    # agent rescans the shared folder every 5 s, which catches the other VM's writes
    # that inotify cannot see.
    if [ "$store" = etcd ]; then install_half etcd; else install_half dynamic; fi
    say "part 7 ($store store): try ip netns exec ct$n ping 11.11.11.$((4 - n))"
    ;;
  flannel)
    if [ "$store" = dir ]; then store_url=dir:$shared/overlaynet/flannel; mkdir -p "$shared/overlaynet/flannel"; fi
    if [ "$host" = host1 ]; then /usr/bin/vxlan-agent network set --store "$store_url" --network 10.244.0.0/16; fi
    echo "NODE_ARGS=\"--store $store_url --public-ip $address --iface $card --poll 1\"" >/etc/netlab/node.env
    start_unit vxlan-agent-node
    for _ in $(seq 1 120); do [ -s /run/flannel/subnet.env ] && break; sleep 0.5; done
    [ -s /run/flannel/subnet.env ] || { echo "provision $host: no subnet lease after 60 s" >&2; exit 1; }
    # One container, attached by netlab-cni as a runtime would.
    ip netns add ct$n 2>/dev/null || true
    result=$(echo '{"cniVersion":"1.1.0","name":"vagrant","type":"netlab-cni"}' |
      CNI_COMMAND=ADD CNI_CONTAINERID=ct$n CNI_NETNS=/var/run/netns/ct$n CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni \
      /usr/lib/cni/netlab-cni)
    container=$(echo "$result" | sed -n 's/.*"address":"\([0-9.]*\)\/.*/\1/p')
    mkdir -p "$shared/overlaynet"
    echo "$container" >"$shared/overlaynet/$host.container"
    say "flannel mode: $(grep FLANNEL_SUBNET /run/flannel/subnet.env); ct$n is $container; the other host's is in $shared/overlaynet/"
    ;;
esac

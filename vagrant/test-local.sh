#!/usr/bin/env bash
# vagrant/test-local.sh [--demos "static dynamic flannel etcd"] [--no-install] [--no-build] [--keep]
#
# A MANUAL end-to-end test of the Vagrantfile with real Vagrant: `vagrant up` of both
# VMs with vagrant-libvirt, each demo checked over the overlay, `vagrant destroy -f`.
# Not run by CI (it takes a few minutes and boots VMs); run it by hand, as root, on a
# Debian 12 machine, when the Vagrantfile or vagrant/provision.sh changes. It touches
# neither this machine's network nor its own libvirt or Vagrant state: everything runs
# in a sandbox (below), and every process it starts is killed by PID at the end, pass
# or fail.
#
# What it does, in order:
#  1. Installs what is missing (apt-get install --no-install-recommends; --no-install
#     skips this and fails if something is missing): vagrant, vagrant-libvirt,
#     libvirt-daemon, libvirt-daemon-driver-qemu, libvirt-clients, qemu-system-x86,
#     qemu-utils, mmdebstrap, dnsmasq-base, iptables, e2fsprogs, openssh-client, kmod.
#     Not libvirt-daemon-system: no libvirtd, users or network of the machine's own.
#     (~12 s on a machine that already had vagrant, vagrant-libvirt and qemu.)
#  2. Builds the package the VMs install: packaging/build-deb ->
#     target/debian/netlab_*.deb (a release build of the workspace: minutes from scratch,
#     seconds when target/release is fresh; --no-build: take the .deb that is there).
#  3. Builds the box, cached in target/vagrant-box/: vagrant/box/build.sh (mmdebstrap
#     bookworm with openssh-server, sudo, iproute2, iputils-ping, nftables, etcd-server;
#     user vagrant with Vagrant's insecure key; networkd DHCP on eth0; ext4 -> qcow2;
#     booted with the host's own kernel and initrd; see that script). ~100 s, 430 MB.
#  4. Enters a sandbox: `unshare --net --mount --pid --fork` (and its own /proc), a network
#     namespace with only lo (no way out: the VMs reach nothing but each other and the
#     sandbox), a tmpfs over /run (so /var/run), and overlays over /etc and /var whose
#     writes land in the run's folder (libvirt's config, state, images, the libvirt-qemu
#     and libvirt-dnsmasq users libvirtd looks up: none of it reaches the machine).
#     There it starts a private libvirtd (qemu runs as root, no cgroups, no security
#     driver, qemu's output to files: no virtlogd), VAGRANT_HOME and the .vagrant folder in
#     the run's folder, and adds the box as netlab/bookworm-local.
#  5. For each demo (default: static, dynamic, flannel, etcd):
#       NETLAB_BOX=netlab/bookworm-local NETLAB_LIBVIRT_DRIVER=qemu NETLAB_LIBVIRT_SYNC=9p \
#       NETLAB_DEMO=... NETLAB_STORE=... vagrant up --provider libvirt
#     (qemu's TCG: this machine kind has no usable KVM; 9p: an nfs share needs an NFS
#     server on the host), then checks over the overlay, from each VM's container to the
#     other's: static, dynamic (folder store) and etcd (dynamic, etcd on host1):
#       vagrant ssh host1 -c 'sudo ip netns exec ct1 ping -c3 11.11.11.3' (and host2 ->
#       11.11.11.2) and `sudo netlab check /etc/netlab/overlay.yaml` on both;
#     flannel: ct1 pings the address in overlaynet/host2.container, ct2 host1's; then
#     `vagrant destroy -f`. The demos' store is the repository's overlaynet/ folder (the
#     VMs' /vagrant is the repository): it is removed before each demo and at the end.
#
# Output: each step's time, each check PASS/FAIL, then a summary: the box build,
# `vagrant up`, checks and destroy per demo, the total, and the peak memory (the sum of
# the resident sets of all the sandbox's processes, sampled every 2 s: both qemus,
# libvirtd, dnsmasq, Vagrant) and each qemu's own peak (VmHWM). Logs (vagrant's output
# per demo, libvirtd's log, qemu's log per VM): target/vagrant-test/.
# Exit code: 0 every demo's checks passed; 1 something failed (the summary says what);
# 2 usage; 3 a prerequisite is missing.
#
# Options and environment:
#   --demos LIST   the demos, in order, from: static dynamic flannel etcd
#   --no-install   install nothing; --no-build: use the .deb in target/debian as it is
#   --keep         keep the run's folder (${TMPDIR:-/tmp}/netlab-vagrant.XXXXXX: images,
#                  VAGRANT_HOME); its path is printed
#   NETLAB_TEST_WAIT_FOR  a string: before each heavy step (the release build, each
#                  demo's VMs) wait while a process of the machine has it in its command
#                  line (another job's build or test run on a shared machine)
#   NETLAB_TEST_TIMEOUT   seconds for one `vagrant up` (default 900)
#
# Measured on this project's machine kind (2 cores, 24 GB, no KVM), 2026-12-02, while
# three cargo builds ran beside it (load ~6): all four demos PASS; `vagrant up` of both
# VMs 190-325 s (boot to "Machine booted and ready" 101-125 s, the rest 9p mounts,
# eth1 and provisioning), checks 13-36 s, destroy 3-7 s; 1087 s in all; each qemu
# 1.7 GB at peak, 3.7 GB for the whole sandbox. On an idle machine expect about half.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
self=$here/test-local.sh
logs=$repo/target/vagrant-test
box_file=$repo/target/vagrant-box/netlab-bookworm.box
box_name=netlab/bookworm-local

say() { echo "test-local: $*"; }
now() { date +%s; }

# Waits while a process of the machine has NETLAB_TEST_WAIT_FOR in its command line
# (another job's build or test run on a shared machine). The command lines are read
# from PROC (the machine's /proc; inside the sandbox, a bind of it made before the
# sandbox's own /proc hid it) by bash itself, so no process here carries the string.
wait_quiet() {
  local reason=$1 proc=${2:-/proc}
  local pattern=${NETLAB_TEST_WAIT_FOR:-}
  [ -n "$pattern" ] || return 0
  local told=0 busy file line
  while :; do
    busy=""
    for file in "$proc"/[0-9]*/cmdline; do
      line=$(tr '\0' ' ' 2>/dev/null <"$file") || continue
      if [[ $line == *"$pattern"* ]]; then busy=${file%/cmdline}; break; fi
    done
    [ -n "$busy" ] || break
    if [ "$told" = 0 ]; then say "waiting $reason: ${busy##*/} and maybe others run '$pattern'"; told=1; fi
    sleep 15
  done
  if [ "$told" = 1 ]; then say "no process runs '$pattern' now"; fi
}

# ---------------------------------------------------------------------------------
# Inside the sandbox: PID 1 of a fresh PID namespace, in a network namespace of its own.
# ---------------------------------------------------------------------------------
# Globals, as the EXIT trap needs them after sandbox() has returned.
work="" libvirtd_pid="" sampler_pid=""
# The PIDs of libvirt's children: each domain's qemu (not driver.pid: libvirtd's own)
# and each network's dnsmasq.
# shellcheck disable=SC2317 # used by the trap
sandbox_pids() {
  local file
  for file in /run/libvirt/qemu/*.pid /run/libvirt/network/*.pid; do
    [ -f "$file" ] && [ "${file##*/}" != driver.pid ] && cat "$file"
  done
  return 0
}

# shellcheck disable=SC2317 # a trap
cleanup_sandbox() {
  set +e
  trap - EXIT INT TERM
  if [ -d "$work/dotfile/machines" ]; then
    say "cleanup: vagrant destroy -f"
    timeout 300 vagrant destroy -f >>"$logs/cleanup.log" 2>&1
  fi
  local pid
  # Every process started here, by PID: the VMs, libvirt's dnsmasqs, libvirtd, the sampler.
  for pid in $(sandbox_pids) $libvirtd_pid $sampler_pid; do
    local name
    name=$(cat "/proc/$pid/comm" 2>/dev/null) || continue
    kill "$pid" 2>/dev/null && say "cleanup: killed $pid ($name)"
  done
  sleep 2
  for pid in $(sandbox_pids) $libvirtd_pid $sampler_pid; do
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  done
  # Whatever is left dies with this PID namespace when PID 1 (this shell) exits.
}

sandbox() {
  work=$1
  local demos=$2 failed=0
  local -a summary=()
  # /run (so /var/run) fresh; the machine's /proc kept at /run/host-proc for wait_quiet,
  # then this PID namespace's own /proc; /etc and /var overlaid: writes go to the run's
  # folder.
  mount -t tmpfs -o mode=0755 tmpfs /run
  mkdir -p /run/lock /run/host-proc "$work/etc.upper" "$work/etc.work" "$work/var.upper" "$work/var.work"
  mount --bind /proc /run/host-proc
  mount -t proc proc /proc
  mount -t overlay overlay -o "lowerdir=/etc,upperdir=$work/etc.upper,workdir=$work/etc.work" /etc
  mount -t overlay overlay -o "lowerdir=/var,upperdir=$work/var.upper,workdir=$work/var.work" /var
  ip link set lo up

  # The users libvirtd looks up at start (Debian's libvirt-daemon-system makes them).
  grep -q '^libvirt-qemu:' /etc/passwd || echo 'libvirt-qemu:x:64055:64055:Libvirt Qemu:/var/lib/libvirt:/usr/sbin/nologin' >>/etc/passwd
  grep -q '^libvirt-qemu:' /etc/group || echo 'libvirt-qemu:x:64055:' >>/etc/group
  grep -q '^libvirt-dnsmasq:' /etc/passwd || echo 'libvirt-dnsmasq:x:64056:64056:Libvirt Dnsmasq:/var/lib/libvirt/dnsmasq:/usr/sbin/nologin' >>/etc/passwd
  grep -q '^libvirt-dnsmasq:' /etc/group || echo 'libvirt-dnsmasq:x:64056:' >>/etc/group
  mkdir -p /etc/libvirt
  cat >/etc/libvirt/qemu.conf <<'CONF'
# vagrant/test-local.sh: qemu as root, no cgroups (the machine's own hierarchy is left
# alone), no security driver, stdio to files (no virtlogd)
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
stdio_handler = "file"
CONF
  cat >/etc/libvirt/libvirtd.conf <<CONF
unix_sock_group = "root"
unix_sock_rw_perms = "0700"
auth_unix_rw = "none"
log_outputs = "3:file:$logs/libvirtd.log"
CONF

  trap cleanup_sandbox EXIT
  trap 'exit 1' INT TERM

  # Peak memory: the sum of the resident sets of every process in the sandbox.
  (
    peak=0
    while :; do
      sum=0
      for status in /proc/[0-9]*/status; do
        rss=$(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\).*/\1/p' "$status" 2>/dev/null) || true
        sum=$((sum + ${rss:-0}))
      done
      if [ "$sum" -gt "$peak" ]; then peak=$sum; echo "$peak" >"$work/peak-kb"; fi
      sleep 2
    done
  ) &
  sampler_pid=$!

  libvirtd --pid-file /run/libvirtd.pid >>"$logs/libvirtd.out" 2>&1 &
  libvirtd_pid=$!
  for _ in $(seq 1 60); do [ -S /run/libvirt/libvirt-sock ] && break; sleep 0.5; done
  [ -S /run/libvirt/libvirt-sock ] || { say "FAIL: libvirtd did not start (target/vagrant-test/libvirtd.*)"; exit 1; }
  say "libvirtd $(libvirtd --version | awk '{print $NF}') started (pid $libvirtd_pid)"

  export VAGRANT_HOME=$work/vagrant.d VAGRANT_DOTFILE_PATH=$work/dotfile VAGRANT_CHECKPOINT_DISABLE=1
  export VAGRANT_DEFAULT_PROVIDER=libvirt LIBVIRT_DEFAULT_URI=qemu:///system
  export NETLAB_BOX=$box_name NETLAB_LIBVIRT_DRIVER=qemu NETLAB_LIBVIRT_SYNC=9p
  cd "$repo"
  local t0
  t0=$(now)
  vagrant box add --name "$box_name" "$box_file" >"$logs/box-add.log" 2>&1 || { say "FAIL: vagrant box add (target/vagrant-test/box-add.log)"; exit 1; }
  summary+=("box add: $(($(now) - t0)) s")
  say "box $box_name added in $(($(now) - t0)) s"

  vssh() { timeout 180 vagrant ssh "$1" -c "$2" -- -T </dev/null; }
  stamp_lines() {
    local line
    while IFS= read -r line; do
      line=${line//$'\e[K'/}
      # The box upload's progress bar is one line of thousands of "Progress: N%".
      if [[ $line == *Progress:* ]]; then line="(upload progress) ${line##*%}"; fi
      printf '%4d s %s\n' "$(($(now) - $1))" "$line"
    done
  }
  check() {
    local name=$1 host=$2 command=$3 output
    if output=$(vssh "$host" "$command" 2>&1); then
      say "PASS $name: $host: $command"
      echo "$output" | grep -E 'packets transmitted|passed, [0-9]+ failed' | sed 's/^/    /'
      return 0
    fi
    say "FAIL $name: $host: $command"
    echo "$output" | sed 's/^/    /' | tail -8
    return 1
  }

  local demo store up_s check_s destroy_s result
  for demo in $demos; do
    case "$demo" in
      etcd) export NETLAB_DEMO=dynamic NETLAB_STORE=etcd ;;
      *) export NETLAB_DEMO=$demo NETLAB_STORE=dir ;;
    esac
    store=$NETLAB_STORE
    rm -rf "$repo/overlaynet"
    wait_quiet "before vagrant up ($demo)" /run/host-proc
    say "== $demo: NETLAB_DEMO=$NETLAB_DEMO NETLAB_STORE=$store vagrant up --provider libvirt"
    t0=$(now)
    result=PASS
    # Each line of vagrant's output with the seconds since the start of `vagrant up`
    # (pipefail: vagrant's failure fails the pipeline).
    if ! timeout "${NETLAB_TEST_TIMEOUT:-900}" vagrant up --provider libvirt 2>&1 </dev/null |
      stamp_lines "$t0" >"$logs/$demo-up.log"; then
      result=FAIL
      say "FAIL $demo: vagrant up (target/vagrant-test/$demo-up.log), its end:"
      tail -25 "$logs/$demo-up.log" | sed 's/^/    /'
    fi
    up_s=$(($(now) - t0))
    say "$demo: vagrant up took $up_s s"
    grep -E "provision host[12]:" "$logs/$demo-up.log" | sed 's/^/    /' || true
    t0=$(now)
    if [ "$result" = PASS ]; then
      if [ "$demo" = flannel ]; then
        local c1 c2
        c1=$(cat "$repo/overlaynet/host1.container" 2>/dev/null || true)
        c2=$(cat "$repo/overlaynet/host2.container" 2>/dev/null || true)
        if [ -z "$c1" ] || [ -z "$c2" ]; then
          say "FAIL $demo: no container address in overlaynet/host{1,2}.container"; result=FAIL
        else
          check "$demo" host1 "sudo ip netns exec ct1 ping -c3 -W2 $c2" || result=FAIL
          check "$demo" host2 "sudo ip netns exec ct2 ping -c3 -W2 $c1" || result=FAIL
        fi
      else
        # One `vagrant ssh` per VM (each costs seconds of Ruby start-up): the ping, then
        # the half's own checks.
        check "$demo" host1 'sudo ip netns exec ct1 ping -c3 -W2 11.11.11.3 && sudo netlab check /etc/netlab/overlay.yaml' || result=FAIL
        check "$demo" host2 'sudo ip netns exec ct2 ping -c3 -W2 11.11.11.2 && sudo netlab check /etc/netlab/overlay.yaml' || result=FAIL
      fi
    fi
    check_s=$(($(now) - t0))
    # Each qemu's own peak before it goes.
    local pidfile hwm=""
    for pidfile in /run/libvirt/qemu/*.pid; do
      if [ ! -f "$pidfile" ] || [ "${pidfile##*/}" = driver.pid ]; then continue; fi
      hwm+=" $(basename "$pidfile" .pid) $(($(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$(cat "$pidfile")/status" 2>/dev/null || echo 0) / 1024)) MB"
    done
    t0=$(now)
    cp /var/log/libvirt/qemu/*.log "$logs/" 2>/dev/null || true
    if ! timeout 600 vagrant destroy -f >"$logs/$demo-destroy.log" 2>&1; then
      result=FAIL; say "FAIL $demo: vagrant destroy -f (target/vagrant-test/$demo-destroy.log)"
    fi
    destroy_s=$(($(now) - t0))
    if virsh list --all --name 2>/dev/null | grep -q .; then
      result=FAIL; say "FAIL $demo: domains left after destroy: $(virsh list --all --name | xargs)"
    fi
    [ "$result" = PASS ] || failed=1
    summary+=("$demo ($NETLAB_DEMO, store $store): $result; up $up_s s, checks $check_s s, destroy $destroy_s s; qemu peak:${hwm:- n/a}")
    say "== $demo: $result (up $up_s s, checks $check_s s, destroy $destroy_s s)"
  done
  rm -rf "$repo/overlaynet"
  printf '%s\n' "${summary[@]}" >"$work/summary"
  return "$failed"
}

# ---------------------------------------------------------------------------------
# Outside: prerequisites, the package, the box, then the sandbox.
# ---------------------------------------------------------------------------------
if [ "${1:-}" = __sandbox ]; then
  sandbox "$2" "$3"
  exit $?
fi

demos="static dynamic flannel etcd" install=1 build=1 keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --demos) demos=${2:?--demos needs a list}; shift 2 ;;
    --no-install) install=0; shift ;;
    --no-build) build=0; shift ;;
    --keep) keep=1; shift ;;
    *) echo "usage: vagrant/test-local.sh [--demos \"static dynamic flannel etcd\"] [--no-install] [--no-build] [--keep]" >&2; exit 2 ;;
  esac
done
for demo in $demos; do
  case "$demo" in static|dynamic|flannel|etcd) ;; *) echo "test-local: unknown demo '$demo': static, dynamic, flannel or etcd" >&2; exit 2 ;; esac
done
[ "$(id -u)" = 0 ] || { echo "test-local: run as root (libvirtd, mmdebstrap, namespaces)" >&2; exit 3; }

start=$(now)
packages=(vagrant vagrant-libvirt libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86 qemu-utils
  mmdebstrap dnsmasq-base iptables e2fsprogs openssh-client kmod)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$install" = 0 ]; then echo "test-local: missing: ${missing[*]} (apt-get install --no-install-recommends ...)" >&2; exit 3; fi
  say "installing ${missing[*]}"
  t0=$(now)
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  say "installed in $(($(now) - t0)) s"
fi
if pgrep -x libvirtd >/dev/null; then
  say "note: a libvirtd of the machine runs; the sandbox's own is separate (its socket lives in the sandbox's /run)"
fi

rm -rf "$logs"
mkdir -p "$logs"
if [ "$build" = 1 ]; then
  wait_quiet "before packaging/build-deb (a release build)"
  t0=$(now)
  say "packaging/build-deb"
  "$repo/packaging/build-deb" >"$logs/build-deb.log" 2>&1 || { say "FAIL: packaging/build-deb (target/vagrant-test/build-deb.log)"; tail -20 "$logs/build-deb.log"; exit 1; }
  deb_s=$(($(now) - t0))
  say "package built in $deb_s s: $(tail -1 "$logs/build-deb.log")"
fi
compgen -G "$repo/target/debian/netlab_*.deb" >/dev/null || { echo "test-local: no target/debian/netlab_*.deb: run packaging/build-deb" >&2; exit 3; }

t0=$(now)
"$here/box/build.sh" 2>&1 | tee "$logs/box-build.log" | grep '^box:' || { say "FAIL: vagrant/box/build.sh (target/vagrant-test/box-build.log)"; tail -20 "$logs/box-build.log"; exit 1; }
box_s=$(($(now) - t0))

work=$(mktemp -d "${TMPDIR:-/tmp}/netlab-vagrant.XXXXXX")
case "$(realpath "$work")" in
  /etc/*|/var/*|/run/*) echo "test-local: the run's folder $work is under /etc, /var or /run, which the sandbox overlays: set TMPDIR elsewhere" >&2; rm -rf "$work"; exit 3 ;;
esac
# shellcheck disable=SC2317 # a trap
cleanup() {
  rm -rf "$repo/overlaynet"
  if [ "$keep" = 1 ]; then say "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
say "sandbox in $work"
t0=$(now)
status=0
# --kill-child: if this script is killed, the sandbox's PID 1 gets SIGTERM and cleans up.
# No --mount-proc: the sandbox mounts its own /proc once it has kept the machine's.
unshare --net --mount --pid --fork --kill-child=SIGTERM -- "$self" __sandbox "$work" "$demos" || status=$?
sandbox_s=$(($(now) - t0))

echo
echo "===== vagrant/test-local.sh: $([ "$status" = 0 ] && echo PASS || echo FAIL) ====="
echo "package build: ${deb_s:-skipped} s; box build: $box_s s ($(du -h "$box_file" | cut -f1))"
[ -f "$work/summary" ] && cat "$work/summary"
echo "sandbox (libvirtd, box add, the demos, destroy): $sandbox_s s; total: $(($(now) - start)) s"
echo "peak memory of the sandbox's processes: $(($(cat "$work/peak-kb" 2>/dev/null || echo 0) / 1024)) MB"
echo "logs: $logs"
exit "$status"

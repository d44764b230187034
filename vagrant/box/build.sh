#!/usr/bin/env bash
# vagrant/box/build.sh [--force]
#
# Builds a Debian 12 (bookworm) Vagrant box for the libvirt provider, locally, with no
# download but Debian's packages: target/vagrant-box/netlab-bookworm.box (a plain tar of
# box.img, metadata.json, Vagrantfile, vmlinuz, initrd.img). vagrant/test-local.sh adds
# it as `netlab/bookworm-local`; by hand:
#   vagrant box add --name netlab/bookworm-local target/vagrant-box/netlab-bookworm.box
#
# What is in it:
#   - mmdebstrap bookworm (minbase, the host's /etc/apt/sources.list.d/debian.sources as
#     the mirror list) with systemd, udev, dbus, openssh-server, sudo, iproute2,
#     iputils-ping, nftables, etcd-server (stopped and disabled: provision.sh starts it
#     on host1 for the etcd demo), kmod, procps: everything vagrant/provision.sh would
#     apt-get install, so the demos run with no network beyond the VMs' own.
#   - user `vagrant` with Vagrant's well-known insecure public key (read from the
#     installed vagrant's keys/vagrant.pub; Vagrant swaps it for a fresh key on the first
#     `vagrant up`) and passwordless sudo.
#   - systemd-networkd: DHCP on eth0, the management card (`net.ifnames=0` on the kernel
#     command line keeps the eth names); Vagrant configures eth1 itself (its Debian guest
#     plugin writes a networkd file when networkd is active). /etc/machine-id is empty, so
#     every VM makes its own on first boot (and its own DHCP client id).
#   - no kernel package, no boot loader: the box boots the host's kernel directly
#     (libvirt kernel/initrd/cmdline in the box's Vagrantfile, vagrant/box/Vagrantfile):
#     /boot/vmlinuz-VERSION and /boot/initrd.img-VERSION of the newest kernel that has
#     /lib/modules/VERSION (or NETLAB_BOX_KERNEL=VERSION), the initrd being Debian's
#     initramfs-tools one, which mounts the virtio-blk ext4 root (/dev/vda). The kernel's
#     modules are copied into the image without the hardware drivers no VM uses (sound,
#     gpu, media, usb, wireless, ethernet...): virtio, 9p, nfs, vxlan, veth, bridge,
#     nf_tables and the rest of fs/ and net/ stay.
#   - the root file system: `mkfs.ext4 -d` of that tree into a sparse raw image
#     (NETLAB_BOX_SIZE GiB, default 8), `qemu-img convert` to qcow2 (box.img);
#     metadata.json: provider libvirt, format qcow2, virtual_size.
#
# Needs (as root): mmdebstrap, qemu-utils, e2fsprogs, vagrant (for the key), the host
# kernel and its initrd in /boot. `apt-get install --no-install-recommends mmdebstrap
# qemu-utils` adds what a Debian 12 machine lacks.
# Cache: target/vagrant-box/ (the box, and a stamp of the inputs: this script, the box
# Vagrantfile and the kernel version); the box is rebuilt only when one changed or with
# --force. Measured on a 2-core machine: ~1 min (mmdebstrap ~35 s of it), ~450 MB box.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${NETLAB_BOX_DIR:-$repo/target/vagrant-box}
box=$out/netlab-bookworm.box
force=0
case "${1:-}" in
  --force) force=1 ;;
  "") ;;
  *) echo "usage: vagrant/box/build.sh [--force]" >&2; exit 2 ;;
esac
[ "$(id -u)" = 0 ] || { echo "vagrant/box/build.sh: run as root (mmdebstrap --mode=root, chroot)" >&2; exit 3; }
for tool in mmdebstrap qemu-img mkfs.ext4 depmod; do
  command -v "$tool" >/dev/null || { echo "vagrant/box/build.sh: $tool is missing: apt-get install --no-install-recommends mmdebstrap qemu-utils e2fsprogs kmod" >&2; exit 3; }
done

# The kernel: the newest in /boot that has its modules (or NETLAB_BOX_KERNEL).
kernel=${NETLAB_BOX_KERNEL:-}
if [ -z "$kernel" ]; then
  while read -r image; do
    version=${image#/boot/vmlinuz-}
    if [ -d "/lib/modules/$version" ] && [ -f "/boot/initrd.img-$version" ]; then kernel=$version; fi
  done < <(printf '%s\n' /boot/vmlinuz-* | sort -V)
fi
if [ -z "$kernel" ] || [ ! -f "/boot/vmlinuz-$kernel" ] || [ ! -f "/boot/initrd.img-$kernel" ] || [ ! -d "/lib/modules/$kernel" ]; then
  echo "vagrant/box/build.sh: no kernel in /boot with its initrd and /lib/modules: apt-get install linux-image-amd64 (initramfs-tools makes the initrd)" >&2
  exit 3
fi
key=""
for candidate in /usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant.pub /opt/vagrant/embedded/gems/gems/vagrant-*/keys/vagrant.pub; do
  if [ -f "$candidate" ]; then key=$candidate; fi
done
[ -n "$key" ] || { echo "vagrant/box/build.sh: Vagrant's insecure public key (keys/vagrant.pub) not found: install vagrant" >&2; exit 3; }
sources=${NETLAB_BOX_SOURCES:-/etc/apt/sources.list.d/debian.sources}
[ -f "$sources" ] || sources=http://deb.debian.org/debian

stamp=$( (cat "$here/build.sh" "$here/Vagrantfile"; echo "$kernel ${NETLAB_BOX_SIZE:-8}") | sha256sum | cut -c1-16)
if [ "$force" = 0 ] && [ -f "$box" ] && [ "$(cat "$out/stamp" 2>/dev/null)" = "$stamp" ]; then
  echo "box: $box is up to date (kernel $kernel)"
  exit 0
fi

mkdir -p "$out"
work=$(mktemp -d "$out/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
start=$(date +%s)

echo "box: mmdebstrap bookworm into $root"
mmdebstrap --mode=root --variant=minbase --format=directory \
  --include=systemd,systemd-sysv,udev,dbus,openssh-server,sudo,iproute2,iputils-ping,nftables,etcd-server,kmod,procps,netbase,ca-certificates,less \
  --aptopt='Acquire::Languages "none"' --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --quiet bookworm "$root" "$sources"
echo "box: mmdebstrap took $(($(date +%s) - start)) s"

# The vagrant user: the insecure key, passwordless sudo.
chroot "$root" useradd --create-home --shell /bin/bash --user-group vagrant
install -d -m 0700 -o 1000 -g 1000 "$root/home/vagrant/.ssh"
install -m 0600 -o 1000 -g 1000 "$key" "$root/home/vagrant/.ssh/authorized_keys"
[ "$(chroot "$root" id -u vagrant)" = 1000 ] || { echo "box: vagrant is not uid 1000" >&2; exit 1; }
echo 'vagrant ALL=(ALL) NOPASSWD:ALL' >"$root/etc/sudoers.d/vagrant"
chmod 0440 "$root/etc/sudoers.d/vagrant"
echo 'vagrant:vagrant' | chroot "$root" chpasswd

# Networking: DHCP on the management card, networkd (Vagrant adds eth1's file).
cat >"$root/etc/systemd/network/10-eth0.network" <<'NETWORK'
[Match]
Name=eth0

[Network]
DHCP=ipv4

[DHCPv4]
ClientIdentifier=mac
NETWORK
systemctl --root="$root" enable systemd-networkd.service >/dev/null 2>&1
systemctl --root="$root" disable etcd.service >/dev/null 2>&1 || true
systemctl --root="$root" mask systemd-networkd-wait-online.service >/dev/null 2>&1
echo "nameserver 127.0.0.1" >"$root/etc/resolv.conf"
echo netlab-box >"$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tnetlab-box\n' >"$root/etc/hosts"
printf '/dev/vda\t/\text4\tdefaults,errors=remount-ro\t0\t1\n' >"$root/etc/fstab"
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
# sshd: no DNS look-ups of the client (no resolver in the VMs).
echo 'UseDNS no' >"$root/etc/ssh/sshd_config.d/vagrant.conf"
# A serial console for `virsh console` and the console log.
systemctl --root="$root" enable serial-getty@ttyS0.service >/dev/null 2>&1 || true

# The kernel's modules, without hardware no VM has.
echo "box: modules of $kernel"
mkdir -p "$root/usr/lib/modules"
tar -C /lib/modules -cf - \
  --exclude="$kernel/kernel/sound" --exclude="$kernel/kernel/drivers/gpu" \
  --exclude="$kernel/kernel/drivers/media" --exclude="$kernel/kernel/drivers/infiniband" \
  --exclude="$kernel/kernel/drivers/net/wireless" --exclude="$kernel/kernel/drivers/net/ethernet" \
  --exclude="$kernel/kernel/drivers/usb" --exclude="$kernel/kernel/drivers/iio" \
  --exclude="$kernel/kernel/drivers/staging" --exclude="$kernel/kernel/drivers/bluetooth" \
  --exclude="$kernel/kernel/drivers/hwmon" --exclude="$kernel/kernel/drivers/isdn" \
  --exclude="$kernel/kernel/drivers/net/can" --exclude="$kernel/kernel/drivers/hid" \
  --exclude="$kernel/kernel/drivers/input" --exclude="$kernel/kernel/net/wireless" \
  --exclude="$kernel/kernel/net/mac80211" --exclude="$kernel/kernel/net/bluetooth" \
  "$kernel" | tar -C "$root/usr/lib/modules" -xf -
depmod -b "$root" "$kernel"

# Leave no caches, logs or keys that belong to the build.
rm -rf "$root"/var/cache/apt/*.bin "$root"/var/lib/apt/lists/* "$root"/var/log/*.log "$root"/tmp/*

# The disk: ext4 filled from the tree, then qcow2.
size_gib=${NETLAB_BOX_SIZE:-8}
truncate -s "${size_gib}G" "$work/root.raw"
mkfs.ext4 -q -F -L root -d "$root" "$work/root.raw"
qemu-img convert -O qcow2 "$work/root.raw" "$work/box.img"
rm -f "$work/root.raw"
cat >"$work/metadata.json" <<JSON
{"provider": "libvirt", "format": "qcow2", "virtual_size": $size_gib}
JSON
cp "$here/Vagrantfile" "$work/Vagrantfile"
cp "/boot/vmlinuz-$kernel" "$work/vmlinuz"
cp "/boot/initrd.img-$kernel" "$work/initrd.img"
tar -C "$work" -cf "$work/box.tar" metadata.json Vagrantfile box.img vmlinuz initrd.img
mv "$work/box.tar" "$box"
echo "$stamp" >"$out/stamp"
echo "box: $box ($(du -h "$box" | cut -f1), kernel $kernel) in $(($(date +%s) - start)) s"

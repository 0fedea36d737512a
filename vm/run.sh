#!/usr/bin/env bash
# Runs one shell command as root in a guest booted from Debian's stock kernel
# (linux-image-6.1.0-*-amd64 of bookworm, or with BN_VM_KERNEL=6.12 the newest
# linux-image-6.12.*+deb12-amd64 of bookworm-backports; fetched with apt and cached, unpacked, not installed)
# under qemu TCG. The host's root filesystem is the guest's, read-only over 9p;
# the checkout is at the same path; /tmp and /run are fresh tmpfs; the command's
# output and exit code pass through.
#   usage: vm/run.sh '<shell command>'     (npm run vm -- '<shell command>')
#   env:   BN_VM_KERNEL=6.1 (default) | 6.12 | a full version (6.1.0-NN-amd64, 6.12.NN+deb12-amd64)  BN_VM_CACHE=DIR  BN_VM_MEM=2048  BN_VM_TIMEOUT=1800
#          BN_VM_PRELOAD='bridge br_netfilter veth' (modules loaded at boot)
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 '<shell command>'" >&2; exit 2; }
COMMAND=$1
CACHE=${BN_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bpftrace-net/vm}
MEM=${BN_VM_MEM:-2048}
TIMEOUT=${BN_VM_TIMEOUT:-1800}
for tool in qemu-system-x86_64 busybox apt-get dpkg-deb depmod modprobe cpio xz; do
  command -v "$tool" >/dev/null || { echo "vm: $tool is missing (apt-get install qemu-system-x86 busybox-static kmod cpio xz-utils)" >&2; exit 2; }
done

# ---- the kernel: the newest of a series Debian offers, or BN_VM_KERNEL exactly.
# bookworm-backports is read through a private apt list under the cache: the
# machine's own apt sources stay as they are.
APT=()
backports() {
  local mirror lists=$CACHE/apt/lists
  mirror=$(sed -n 's/^URIs: *\([^ ]*debian\)$/\1/p; s/^deb  *\([^ ]*debian\)  *bookworm .*/\1/p' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | head -1 || true)
  mkdir -p "$lists/partial"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${mirror:-http://deb.debian.org/debian} bookworm-backports main" > "$CACHE/apt/sources.list"
  APT=(-o "Dir::Etc::SourceList=$CACHE/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null -o "Dir::State::Lists=$lists")
  apt-get "${APT[@]}" update -qq >/dev/null 2>&1 || { echo "vm: apt-get update of bookworm-backports failed" >&2; exit 2; }
}
newest() { apt-cache "${APT[@]}" search --names-only "$1" | awk '{print $1}' | sed 's/^linux-image-//' | sort -V | tail -1; }
case "${BN_VM_KERNEL:-6.1}" in
  6.1) VERSION=$(newest '^linux-image-6\.1\.0-[0-9]+-amd64$') ;;
  6.12) backports; VERSION=$(newest '^linux-image-6\.12\.[0-9]+\+deb12-amd64$') ;;
  *+deb12-amd64) backports; VERSION=$BN_VM_KERNEL ;;
  *) VERSION=$BN_VM_KERNEL ;;
esac
[ -n "$VERSION" ] || { echo "vm: no linux-image for BN_VM_KERNEL=${BN_VM_KERNEL:-6.1} in apt's lists (run apt-get update)" >&2; exit 2; }
KDIR=$CACHE/$VERSION
if [ ! -f "$KDIR/ready" ]; then
  mkdir -p "$KDIR" && rm -rf "$KDIR"/*
  [ -n "${APT[*]}" ] || case "$VERSION" in *+deb12-amd64) backports ;; esac
  (cd "$KDIR" && apt-get "${APT[@]}" download -q "linux-image-$VERSION" >/dev/null 2>&1) || { echo "vm: apt-get download linux-image-$VERSION failed" >&2; exit 2; }
  dpkg-deb -x "$KDIR"/linux-image-*.deb "$KDIR/root"
  rm -f "$KDIR"/linux-image-*.deb
  # Newer kernels ship xz-compressed modules; the initramfs' busybox insmod and the
  # kernel's autoload (busybox modprobe) take plain ELF only.
  find "$KDIR/root/lib/modules" -name '*.ko.xz' -exec xz -d {} +
  depmod -b "$KDIR/root" "$VERSION"
  touch "$KDIR/ready"
fi
MODROOT=$KDIR/root/lib/modules/$VERSION

# ---- the initramfs: busybox and the modules that reach the 9p shares
INITRD=$KDIR/initrd.cpio.gz
if [ ! -f "$INITRD" ]; then
  stage=$(mktemp -d)
  mkdir -p "$stage"/{bin,proc,sys,dev,host,scratch,mods}
  cp "$(command -v busybox)" "$stage/bin/busybox"
  : > "$stage/mods/order"
  for mod in virtio_pci 9pnet_virtio 9p; do
    modprobe -d "$KDIR/root" -S "$VERSION" --show-depends "$mod" | awk '$1 == "insmod" {print $2}' | while read -r ko; do
      name=$(basename "$ko")
      grep -qx "$name" "$stage/mods/order" || { cp "$ko" "$stage/mods/$name"; echo "$name" >> "$stage/mods/order"; }
    done
  done
  cat > "$stage/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in $(cat /mods/order); do insmod /mods/$m; done
opts=trans=virtio,version=9p2000.L,msize=262144
mount -t 9p -o $opts,ro,cache=loose hostroot /host
mount -t 9p -o $opts scratch /scratch
. /scratch/env
mount -t proc proc /host/proc
mount -t sysfs sys /host/sys
mount -o bind /dev /host/dev
mount -t devpts devpts /host/dev/pts 2>/dev/null
# Fresh tmpfs for /tmp, /run, /var/tmp; the checkout stays visible even if it lives under one.
mkdir -p /checkout && mount -o bind "/host$BN_VM_CWD" /checkout
for d in /host/tmp /host/run /host/var/tmp; do mount -t tmpfs tmpfs $d; done
[ -d "/host$BN_VM_CWD" ] || { mkdir -p "/host$BN_VM_CWD" && mount -o bind /checkout "/host$BN_VM_CWD"; }
mount -t bpf bpf /host/sys/fs/bpf
mount -t tracefs tracefs /host/sys/kernel/tracing 2>/dev/null
mount -t debugfs debugfs /host/sys/kernel/debug 2>/dev/null
mount -t cgroup2 cgroup2 /host/sys/fs/cgroup 2>/dev/null
# The guest's modules, for the kernel's autoload (it runs this initramfs' modprobe)
# and for the command's own modprobe (an overlay adds lib/modules to the host's /usr/lib).
mkdir -p /lib/modules /sbin /ovl && ln -s /host$BN_VM_MODROOT /lib/modules/$BN_VM_VERSION && ln -sf /bin/modprobe /sbin/modprobe
echo /sbin/modprobe > /proc/sys/kernel/modprobe
mount -t tmpfs tmpfs /ovl && mkdir -p /ovl/upper/modules /ovl/work
mount -t overlay overlay -o lowerdir=/host/usr/lib,upperdir=/ovl/upper,workdir=/ovl/work /host/usr/lib
mkdir -p /host/usr/lib/modules/$BN_VM_VERSION && mount -o bind /host$BN_VM_MODROOT /host/usr/lib/modules/$BN_VM_VERSION
for m in $BN_VM_PRELOAD; do modprobe $m; done
mkdir -p /host/tmp/vm-scratch /host/tmp/home
mount -o bind /scratch /host/tmp/vm-scratch
chroot /host /bin/sh -c 'cd "$BN_VM_CWD" && export HOME=/tmp/home PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin && sh /tmp/vm-scratch/command.sh'
echo $? > /scratch/exit-code
sync
poweroff -f
INIT
  chmod +x "$stage/init"
  (cd "$stage" && find . | cpio -o -H newc --quiet | gzip -1) > "$INITRD.tmp" && mv "$INITRD.tmp" "$INITRD"
  rm -rf "$stage"
fi

# ---- run
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT
printf '%s\n' "$COMMAND" > "$SCRATCH/command.sh"
{
  printf 'export BN_VM_VERSION=%q BN_VM_MODROOT=%q BN_VM_CWD=%q BN_VM=1 BN_VM_PRELOAD=%q\n' "$VERSION" "$MODROOT" "$PWD" "${BN_VM_PRELOAD:-bridge br_netfilter veth}"
  [ -n "${CI:-}" ] && printf 'export CI=%q\n' "$CI"
} > "$SCRATCH/env"

timeout --foreground "$TIMEOUT" qemu-system-x86_64 \
  -accel tcg,thread=multi -cpu max -smp 2 -m "$MEM" \
  -kernel "$KDIR/root/boot/vmlinuz-$VERSION" -initrd "$INITRD" \
  -append "console=ttyS0 rdinit=/init panic=-1 loglevel=1 quiet" \
  -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
  -virtfs "local,path=$SCRATCH,mount_tag=scratch,security_model=none,multidevs=remap" \
  -nographic -no-reboot -nodefaults -serial stdio -monitor none </dev/null \
  || { rc=$?; [ -f "$SCRATCH/exit-code" ] || { echo "vm: qemu ended ($rc) before the command finished" >&2; exit 3; }; }

[ -f "$SCRATCH/exit-code" ] || { echo "vm: the guest gave no exit code" >&2; exit 3; }
exit "$(cat "$SCRATCH/exit-code")"

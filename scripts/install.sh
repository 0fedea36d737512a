#!/usr/bin/env bash
# Installs what bpftrace-net needs on Debian 12 (as root) and builds it.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  clang llvm libbpf-dev libelf-dev zlib1g-dev libpcap0.8-dev libnftables-dev libnftnl-dev libmnl-dev bpftool pkg-config cmake make g++ \
  iproute2 iptables ebtables nftables iputils-ping util-linux ca-certificates python3 \
  qemu-system-x86 busybox-static kmod cpio xz-utils docker.io netsniff-ng tshark tcpdump chromium >/dev/null
if ! command -v node >/dev/null; then
  apt-get install -y -qq nodejs npm >/dev/null
fi
if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'; then
  echo "bpftrace-net needs Node.js 20 or later; this machine has $(node --version)" >&2
  exit 1
fi

npm ci --no-audit --no-fund
npm run build

// tcpdump / pcap-filter expressions, compiled by libpcap into classic BPF for
// the kernel-side interpreter (bpf/filter.bpf.h).
#pragma once

#include <linux/filter.h>

#include <string>
#include <vector>

constexpr size_t kMaxFilterInsns = 512;  // FILTER_MAX_INSNS in bpf/filter.bpf.h

// Compiles expr for Ethernet frames; on failure returns false with libpcap's message.
bool CompilePacketFilter(const std::string& expr, std::vector<sock_filter>* out, std::string* error);

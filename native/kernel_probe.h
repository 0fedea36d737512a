// Facts about the running kernel, learned by really loading and attaching
// minimal programs. The native side reports; TypeScript decides.
#pragma once

#include <string>
#include <vector>

struct ProbeResult {
  std::string name;    // stable id: "btf", "fentry", "kprobe", "tp_btf", "netfilter_link", "tc", "ringbuf"
  bool ok = false;
  std::string detail;  // what failed and how, or what worked
};

std::vector<ProbeResult> ProbeKernel();

// enum skb_drop_reason of the running kernel, by value ("" where unnamed).
std::vector<std::string> KernelDropReasons();

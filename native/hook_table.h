// The netfilter hook table of a network namespace, read from the kernel's own
// structures (bpf/hook_table.bpf.c) by a thread inside that netns: what runs
// at each hook, in order, by priority, with the nftables chain, x_tables
// table, NAT chain or BPF link behind each entry.
#pragma once

#include <string>
#include <vector>

extern "C" {
#include "hook_entries.h"
}

struct HookTableEntry {
  bn_hook_entry raw;
  std::string function;  // the hook function's symbol, "" when kallsyms has none
};

struct HookTable {
  std::vector<HookTableEntry> entries;
  bool truncated = false;  // more entries than BN_HOOK_ENTRIES_MAX
};

// error: one line saying why the table could not be read.
bool ReadHookTable(const std::string& netns_path, HookTable* table, std::string* error);

#include "hook_table.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cstring>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "errors.h"
#include "hook_table.skel.h"
#include "kallsyms.h"
#include "libbpf_log.h"
#include "netns_links.h"

namespace {

// Which hook functions' priv the reader may look into, and as what. A name this
// kernel lacks (a module not loaded, a function folded into another) is skipped.
struct OwnerFunction {
  const char* name;
  bn_hook_owner owner;
};

const OwnerFunction kOwnerFunctions[] = {
    {"nft_do_chain_ipv4", BN_OWNER_NFT_CHAIN},      {"nft_do_chain_ipv6", BN_OWNER_NFT_CHAIN},
    {"nft_do_chain_inet", BN_OWNER_NFT_CHAIN},      {"nft_do_chain_bridge", BN_OWNER_NFT_CHAIN},
    {"nft_do_chain_arp", BN_OWNER_NFT_CHAIN},       {"nft_do_chain_netdev", BN_OWNER_NFT_CHAIN},
    {"nft_do_chain_inet_ingress", BN_OWNER_NFT_CHAIN}, {"nft_nat_do_chain", BN_OWNER_NFT_CHAIN},
    {"nf_route_table_hook4", BN_OWNER_NFT_CHAIN},   {"nf_route_table_hook6", BN_OWNER_NFT_CHAIN},
    {"nf_route_table_inet", BN_OWNER_NFT_CHAIN},    {"ipt_do_table", BN_OWNER_XT_TABLE},
    {"ip6t_do_table", BN_OWNER_XT_TABLE},           {"arpt_do_table", BN_OWNER_XT_TABLE},
    {"iptable_mangle_hook", BN_OWNER_XT_TABLE},     {"ip6table_mangle_hook", BN_OWNER_XT_TABLE},
    {"iptable_nat_do_chain", BN_OWNER_XT_TABLE},    {"ip6table_nat_do_chain", BN_OWNER_XT_TABLE},
    {"arptable_filter_hook", BN_OWNER_XT_TABLE},    {"ebt_do_table", BN_OWNER_EBT_TABLE},
    {"ebt_filter_hook", BN_OWNER_EBT_TABLE},        {"ebt_nat_hook", BN_OWNER_EBT_TABLE},
    {"nf_nat_ipv4_pre_routing", BN_OWNER_NAT_CORE}, {"nf_nat_ipv4_out", BN_OWNER_NAT_CORE},
    {"nf_nat_ipv4_local_fn", BN_OWNER_NAT_CORE},    {"nf_nat_ipv4_local_in", BN_OWNER_NAT_CORE},
    {"nf_nat_ipv4_fn", BN_OWNER_NAT_CORE},          {"nf_nat_ipv6_in", BN_OWNER_NAT_CORE},
    {"nf_nat_ipv6_out", BN_OWNER_NAT_CORE},         {"nf_nat_ipv6_local_fn", BN_OWNER_NAT_CORE},
    {"nf_nat_ipv6_fn", BN_OWNER_NAT_CORE},          {"nf_hook_run_bpf", BN_OWNER_BPF_LINK},
};

struct SkeletonCloser {
  void operator()(hook_table_bpf* s) const { hook_table_bpf__destroy(s); }
};

// The loaded reader and the symbols its owner map was filled from, kept between reads: the
// ruleset is read again every 2 s and on every nftables notification, and loading the
// program (verifier) and /proc/kallsyms each time cost the event loop ~100 ms. A hook
// function the symbols do not name (a module loaded since) makes one fresh load.
struct LoadedReader {
  KernelSymbols symbols;
  std::unique_ptr<hook_table_bpf, SkeletonCloser> skel;
};

bool LoadReader(LoadedReader* reader, std::string* error) {
  InstallLibbpfLog();
  reader->skel.reset();
  if (!reader->symbols.Load() || !reader->symbols.HasAddresses()) {
    *error = "/proc/kallsyms lists no addresses (kptr_restrict?): hook functions cannot be named";
    return false;
  }
  std::vector<std::string> owners;
  for (const OwnerFunction& f : kOwnerFunctions) owners.emplace_back(f.name);
  const std::unordered_map<std::string, uint64_t> by_name = reader->symbols.AddressesOf(owners);

  std::unique_ptr<hook_table_bpf, SkeletonCloser> skel(hook_table_bpf__open_and_load());
  if (!skel) {
    *error = "the kernel refused the hook-table reader: " + ErrnoText(-errno);
    return false;
  }
  for (const OwnerFunction& f : kOwnerFunctions) {
    auto it = by_name.find(f.name);
    if (it == by_name.end()) continue;
    uint8_t owner = f.owner;
    if (bpf_map__update_elem(skel->maps.hook_owners, &it->second, sizeof(it->second), &owner, sizeof(owner), BPF_ANY)) {
      *error = "cannot fill the hook-table reader's map: " + ErrnoText(-errno);
      return false;
    }
  }
  reader->skel = std::move(skel);
  return true;
}

bool RunReader(const LoadedReader& reader, const std::string& netns_path, HookTable* table, bool* all_named,
               std::string* error) {
  hook_table_bpf* skel = reader.skel.get();
  int prog_fd = bpf_program__fd(skel->progs.read_hook_table);
  bool ran = InNetns(
      netns_path,
      [&](std::string* err) {
        LIBBPF_OPTS(bpf_test_run_opts, opts);
        int rc = bpf_prog_test_run_opts(prog_fd, &opts);
        if (rc || opts.retval != 0) {
          *err = "reading the hook table failed: " + (rc ? ErrnoText(-errno) : std::string("no network namespace"));
          return false;
        }
        return true;
      },
      error);
  if (!ran) return false;
  uint32_t n = skel->bss->n_entries < BN_HOOK_ENTRIES_MAX ? skel->bss->n_entries : BN_HOOK_ENTRIES_MAX;
  table->truncated = skel->bss->truncated != 0;
  table->entries.clear();
  *all_named = true;
  for (uint32_t i = 0; i < n; i++) {
    HookTableEntry e;
    e.raw = skel->bss->entries[i];
    if (const std::string_view* name = reader.symbols.NameAt(e.raw.fn)) e.function = std::string(*name);
    else *all_named = false;
    table->entries.push_back(std::move(e));
  }
  return true;
}

}  // namespace

bool ReadHookTable(const std::string& netns_path, HookTable* table, std::string* error) {
  static std::mutex mutex;
  static LoadedReader reader;
  std::lock_guard<std::mutex> lock(mutex);
  bool fresh = false;
  if (!reader.skel) {
    if (!LoadReader(&reader, error)) return false;
    fresh = true;
  }
  bool all_named = true;
  if (!RunReader(reader, netns_path, table, &all_named, error)) return false;
  if (all_named || fresh) return true;
  if (!LoadReader(&reader, error)) return false;
  return RunReader(reader, netns_path, table, &all_named, error);
}

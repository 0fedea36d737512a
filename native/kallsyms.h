// /proc/kallsyms's text symbols (t, T: kernel and modules), read in one pass: the file
// (~10 MB, 120k lines) is parsed in place, with no stream and no string per line, since it is
// read on the start-up path (the hook table's owners, the kprobe backend's functions).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

class KernelSymbols {
 public:
  // False when the file cannot be read.
  bool Load();
  // False when it hides every address (kptr_restrict): names only.
  bool HasAddresses() const;
  // The name of the text symbol at exactly addr, or null.
  const std::string_view* NameAt(uint64_t addr) const;
  // The addresses of those of `names` that are text symbols (the first of each name).
  std::unordered_map<std::string, uint64_t> AddressesOf(const std::vector<std::string>& names) const;
  std::unordered_set<std::string> Names() const;

 private:
  std::string text_;
  std::vector<std::pair<uint64_t, std::string_view>> by_address_;  // sorted
};

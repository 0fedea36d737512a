#include "kallsyms.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

bool KernelSymbols::Load() {
  text_.clear();
  by_address_.clear();
  int fd = open("/proc/kallsyms", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char chunk[1 << 16];
  ssize_t n;
  while ((n = read(fd, chunk, sizeof(chunk))) > 0) text_.append(chunk, static_cast<size_t>(n));
  close(fd);
  // "ffffffff81234560 T name\t[module]\n"
  const char* p = text_.data();
  const char* end = p + text_.size();
  while (p < end) {
    const char* eol = static_cast<const char*>(memchr(p, '\n', static_cast<size_t>(end - p)));
    if (!eol) eol = end;
    const char* sp = static_cast<const char*>(memchr(p, ' ', static_cast<size_t>(eol - p)));
    if (sp && eol - sp > 3 && (sp[1] == 't' || sp[1] == 'T') && sp[2] == ' ') {
      uint64_t addr = 0;
      bool hex = sp > p;
      for (const char* c = p; c < sp && hex; c++) {
        int v = *c >= '0' && *c <= '9' ? *c - '0' : *c >= 'a' && *c <= 'f' ? *c - 'a' + 10 : -1;
        if (v < 0) hex = false;
        addr = addr << 4 | static_cast<uint64_t>(v);
      }
      const char* name = sp + 3;
      const char* name_end = name;
      while (name_end < eol && *name_end != '\t' && *name_end != ' ') name_end++;
      if (hex && name_end > name)
        by_address_.emplace_back(addr, std::string_view(name, static_cast<size_t>(name_end - name)));
    }
    p = eol + 1;
  }
  std::stable_sort(by_address_.begin(), by_address_.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  return !by_address_.empty();
}

bool KernelSymbols::HasAddresses() const { return !by_address_.empty() && by_address_.back().first != 0; }

const std::string_view* KernelSymbols::NameAt(uint64_t addr) const {
  auto it = std::lower_bound(by_address_.begin(), by_address_.end(), addr,
                             [](const auto& entry, uint64_t a) { return entry.first < a; });
  return addr && it != by_address_.end() && it->first == addr ? &it->second : nullptr;
}

std::unordered_map<std::string, uint64_t> KernelSymbols::AddressesOf(const std::vector<std::string>& names) const {
  std::unordered_map<std::string, uint64_t> out;
  std::unordered_set<std::string_view> wanted(names.begin(), names.end());
  for (const auto& [addr, name] : by_address_)
    if (addr && wanted.count(name)) out.emplace(std::string(name), addr);
  return out;
}

std::unordered_set<std::string> KernelSymbols::Names() const {
  std::unordered_set<std::string> out;
  out.reserve(by_address_.size());
  for (const auto& entry : by_address_) out.emplace(entry.second);
  return out;
}

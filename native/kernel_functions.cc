#include "kernel_functions.h"

#include <bpf/btf.h>
#include <dirent.h>

#include "kallsyms.h"

std::unordered_set<std::string> BtfFunctions() {
  std::unordered_set<std::string> names;
  btf* vmlinux = btf__load_vmlinux_btf();
  if (!vmlinux) return names;
  auto collect = [&names](const btf* b, int first) {
    int n = static_cast<int>(btf__type_cnt(b));
    for (int id = first; id < n; id++) {
      const btf_type* t = btf__type_by_id(b, id);
      if (btf_is_func(t)) names.insert(btf__name_by_offset(b, t->name_off));
    }
  };
  collect(vmlinux, 1);
  int vmlinux_types = static_cast<int>(btf__type_cnt(vmlinux));
  if (DIR* dir = opendir("/sys/kernel/btf")) {
    while (dirent* entry = readdir(dir)) {
      std::string module = entry->d_name;
      if (module == "." || module == ".." || module == "vmlinux") continue;
      btf* mod = btf__load_module_btf(module.c_str(), vmlinux);
      if (!mod) continue;
      collect(mod, vmlinux_types);  // split BTF: its own types follow vmlinux's
      btf__free(mod);
    }
    closedir(dir);
  }
  btf__free(vmlinux);
  return names;
}

std::unordered_set<std::string> KallsymsFunctions() {
  KernelSymbols symbols;
  if (!symbols.Load()) return {};
  return symbols.Names();
}


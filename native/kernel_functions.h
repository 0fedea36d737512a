// Which kernel functions can be traced here: a function may be inlined,
// renamed, or live in a module that is not loaded.
#pragma once

#include <string>
#include <unordered_set>

// fentry/fexit need the function in vmlinux or loaded module BTF.
std::unordered_set<std::string> BtfFunctions();
// kprobes need the function in /proc/kallsyms.
std::unordered_set<std::string> KallsymsFunctions();

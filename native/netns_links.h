// Netlink questions about other network namespaces, asked from a short-lived
// thread that entered the namespace (setns affects only the calling thread),
// so the process itself never moves and no helper process is spawned.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

struct NamedLink {
  uint32_t ifindex;
  std::string name;
};

// Runs fn on a thread that entered the netns at `path` ("" = stay) and waits
// for it; fn's false (and *error) is returned.
bool InNetns(const std::string& path, const std::function<bool(std::string*)>& fn, std::string* error);

// The nsid the netns at `from_path` ("" = the caller's) gives to each netns
// file in `targets`; -1 where it assigned none or the file cannot be opened.
bool NetnsIds(const std::string& from_path, const std::vector<std::string>& targets, std::vector<int32_t>* ids,
              std::string* error);

// Every link of the netns at `path`.
bool LinksIn(const std::string& path, std::vector<NamedLink>* links, std::string* error);

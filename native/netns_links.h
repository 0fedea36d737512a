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
  std::string kind;          // IFLA_INFO_KIND: bridge, veth, ... ("" for a physical device)
  uint32_t master = 0;       // IFLA_MASTER: the bridge (or bond) it is enslaved to
  std::string mac;           // IFLA_ADDRESS, as aa:bb:..
  int64_t link = -1;         // IFLA_LINK: a veth's peer ifindex
  int64_t link_netnsid = -1; // IFLA_LINK_NETNSID: the peer's netns, as this netns numbers it
};

// One route of the main table (RTM_GETROUTE).
struct MainRoute {
  int family;                // AF_INET, AF_INET6
  std::vector<uint8_t> dst;  // empty: default
  uint8_t dst_len;
  uint32_t oif;
  std::vector<uint8_t> gateway;
};

// A bridge port's settings (IFLA_INFO_SLAVE_DATA) and its VLANs (AF_BRIDGE's IFLA_AF_SPEC).
struct BridgePortInfo {
  uint32_t ifindex;
  uint8_t operstate = 0;     // IF_OPER_*
  uint8_t stp_state = 0;     // BR_STATE_*
  bool hairpin = false, learning = true, flood = true;
  struct Vlan {
    uint16_t vid;
    uint16_t flags;          // BRIDGE_VLAN_INFO_*
  };
  std::vector<Vlan> vlans;
};

// One forwarding-database entry (RTM_GETNEIGH, AF_BRIDGE).
struct FdbEntry {
  uint32_t ifindex;
  std::string mac;
  int32_t vlan = -1;         // NDA_VLAN, -1 when absent
  uint8_t flags;             // NTF_*
  uint16_t state;            // NUD_*
  uint32_t master = 0;       // NDA_MASTER
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

// The main routing table of the netns at `path`, IPv4 and IPv6 (what `ip route show` lists).
bool RoutesIn(const std::string& path, std::vector<MainRoute>* routes, std::string* error);

// The ports of every bridge of the netns at `path` and its forwarding database
// (what `ip -d link`, `bridge vlan` and `bridge fdb` list).
bool BridgePortsIn(const std::string& path, std::vector<BridgePortInfo>* ports, std::vector<FdbEntry>* fdb,
                   std::string* error);

// A file read from inside the netns at `path` (/proc/sys/net/... is per netns).
bool ReadFileIn(const std::string& path, const std::string& file, std::string* contents, std::string* error);

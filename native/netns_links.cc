#include "netns_links.h"

#include <fcntl.h>
#include <linux/if_bridge.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/net_namespace.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <functional>
#include <thread>

namespace {

std::string Errno(const std::string& what) { return what + ": " + strerror(errno); }

}  // namespace

bool InNetns(const std::string& path, const std::function<bool(std::string*)>& fn, std::string* error) {
  bool ok = false;
  std::thread worker([&]() {
    if (!path.empty()) {
      int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        *error = Errno("cannot open " + path);
        return;
      }
      int rc = setns(fd, CLONE_NEWNET);
      int err = errno;
      close(fd);
      if (rc) {
        errno = err;
        *error = Errno("cannot enter " + path);
        return;
      }
    }
    ok = fn(error);
  });
  worker.join();
  return ok;
}

namespace {

class RouteSocket {
 public:
  RouteSocket() : fd_(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE)) {}
  ~RouteSocket() {
    if (fd_ >= 0) close(fd_);
  }
  int fd() const { return fd_; }

 private:
  int fd_;
};

// fn on a thread inside the netns at `path`, with a route netlink socket opened there.
bool NetlinkIn(const std::string& path, const std::function<bool(int sock, std::string*)>& fn, std::string* error) {
  return InNetns(
      path,
      [&](std::string* err) {
        RouteSocket sock;
        if (sock.fd() < 0) {
          *err = Errno("cannot open a netlink socket");
          return false;
        }
        return fn(sock.fd(), err);
      },
      error);
}

struct Request {
  nlmsghdr header;
  rtgenmsg gen;
  char attrs[64];
};

void AddU32Attr(Request* r, uint16_t type, uint32_t value) {
  rtattr* a = reinterpret_cast<rtattr*>(reinterpret_cast<char*>(r) + NLMSG_ALIGN(r->header.nlmsg_len));
  a->rta_type = type;
  a->rta_len = RTA_LENGTH(sizeof(value));
  memcpy(RTA_DATA(a), &value, sizeof(value));
  r->header.nlmsg_len = NLMSG_ALIGN(r->header.nlmsg_len) + RTA_ALIGN(a->rta_len);
}

int32_t AskNsid(int sock, int target_fd, uint32_t seq) {
  Request req = {};
  req.header.nlmsg_len = NLMSG_LENGTH(sizeof(rtgenmsg));
  req.header.nlmsg_type = RTM_GETNSID;
  req.header.nlmsg_flags = NLM_F_REQUEST;
  req.header.nlmsg_seq = seq;
  req.gen.rtgen_family = AF_UNSPEC;
  AddU32Attr(&req, NETNSA_FD, static_cast<uint32_t>(target_fd));
  if (send(sock, &req, req.header.nlmsg_len, 0) < 0) return -1;
  char buf[4096];
  ssize_t n = recv(sock, buf, sizeof(buf), 0);
  if (n <= 0) return -1;
  for (nlmsghdr* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, static_cast<uint32_t>(n)); h = NLMSG_NEXT(h, n)) {
    if (h->nlmsg_type != RTM_NEWNSID) continue;
    int len = static_cast<int>(h->nlmsg_len - NLMSG_LENGTH(sizeof(rtgenmsg)));
    for (rtattr* a = reinterpret_cast<rtattr*>(reinterpret_cast<char*>(NLMSG_DATA(h)) + NLMSG_ALIGN(sizeof(rtgenmsg)));
         RTA_OK(a, len); a = RTA_NEXT(a, len)) {
      if (a->rta_type == NETNSA_NSID) {
        int32_t id;
        memcpy(&id, RTA_DATA(a), sizeof(id));
        return id;
      }
    }
  }
  return -1;
}

}  // namespace

bool NetnsIds(const std::string& from_path, const std::vector<std::string>& targets, std::vector<int32_t>* ids,
              std::string* error) {
  ids->assign(targets.size(), -1);
  return NetlinkIn(
      from_path,
      [&](int sock, std::string* err) {
        for (size_t i = 0; i < targets.size(); i++) {
          int fd = open(targets[i].c_str(), O_RDONLY | O_CLOEXEC);
          if (fd < 0) continue;
          (*ids)[i] = AskNsid(sock, fd, static_cast<uint32_t>(i + 1));
          close(fd);
        }
        return true;
      },
      error);
}

namespace {

// A dump request (links, routes, neighbours) and every answer, message by message,
// until NLMSG_DONE. ext_mask: IFLA_EXT_MASK for link dumps (0: none).
bool Dump(int fd, uint16_t type, uint8_t family, size_t header_size, const std::function<void(nlmsghdr*)>& each,
          std::string* err, uint32_t ext_mask = 0) {
  struct {
    nlmsghdr header;
    char body[64];
  } req = {};
  req.header.nlmsg_len = NLMSG_LENGTH(header_size);
  if (ext_mask) {
    rtattr* a = reinterpret_cast<rtattr*>(reinterpret_cast<char*>(&req) + NLMSG_ALIGN(req.header.nlmsg_len));
    a->rta_type = IFLA_EXT_MASK;
    a->rta_len = RTA_LENGTH(sizeof(ext_mask));
    memcpy(RTA_DATA(a), &ext_mask, sizeof(ext_mask));
    req.header.nlmsg_len = NLMSG_ALIGN(req.header.nlmsg_len) + RTA_ALIGN(a->rta_len);
  }
  req.header.nlmsg_type = type;
  req.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.header.nlmsg_seq = 1;
  // ifinfomsg and rtmsg both start with their family byte.
  req.body[0] = static_cast<char>(family);
  if (send(fd, &req, req.header.nlmsg_len, 0) < 0) {
    *err = Errno("cannot ask netlink for a dump");
    return false;
  }
  std::vector<char> buf(1 << 16);
  for (;;) {
    ssize_t n = recv(fd, buf.data(), buf.size(), 0);
    if (n <= 0) {
      *err = Errno("cannot read a netlink dump");
      return false;
    }
    for (nlmsghdr* h = reinterpret_cast<nlmsghdr*>(buf.data()); NLMSG_OK(h, static_cast<uint32_t>(n)); h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_type == NLMSG_DONE) return true;
      if (h->nlmsg_type == NLMSG_ERROR) {
        *err = "netlink refused the dump";
        return false;
      }
      each(h);
    }
  }
}

std::string MacText(const uint8_t* b, size_t n) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; i++) {
    if (i) out += ':';
    out += hex[b[i] >> 4];
    out += hex[b[i] & 15];
  }
  return out;
}

}  // namespace

bool LinksIn(const std::string& path, std::vector<NamedLink>* links, std::string* error) {
  return NetlinkIn(
      path,
      [&](int sock, std::string* err) {
        return Dump(sock, RTM_GETLINK, AF_UNSPEC, sizeof(ifinfomsg), [&](nlmsghdr* h) {
          if (h->nlmsg_type != RTM_NEWLINK) return;
          ifinfomsg* info = static_cast<ifinfomsg*>(NLMSG_DATA(h));
          NamedLink link;
          link.ifindex = static_cast<uint32_t>(info->ifi_index);
          int len = static_cast<int>(h->nlmsg_len - NLMSG_LENGTH(sizeof(ifinfomsg)));
          for (rtattr* a = IFLA_RTA(info); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
            switch (a->rta_type) {
              case IFLA_IFNAME: link.name = static_cast<const char*>(RTA_DATA(a)); break;
              case IFLA_MASTER: memcpy(&link.master, RTA_DATA(a), sizeof(uint32_t)); break;
              case IFLA_ADDRESS: link.mac = MacText(static_cast<const uint8_t*>(RTA_DATA(a)), RTA_PAYLOAD(a)); break;
              case IFLA_LINK: {
                uint32_t v;
                memcpy(&v, RTA_DATA(a), sizeof(v));
                link.link = v;
                break;
              }
              case IFLA_LINK_NETNSID: {
                int32_t v;
                memcpy(&v, RTA_DATA(a), sizeof(v));
                link.link_netnsid = v;
                break;
              }
              case IFLA_LINKINFO: {
                int inner = static_cast<int>(RTA_PAYLOAD(a));
                for (rtattr* i = static_cast<rtattr*>(RTA_DATA(a)); RTA_OK(i, inner); i = RTA_NEXT(i, inner))
                  if (i->rta_type == IFLA_INFO_KIND) link.kind = static_cast<const char*>(RTA_DATA(i));
                break;
              }
              default: break;
            }
          }
          links->push_back(std::move(link));
        }, err);
      },
      error);
}

bool RoutesIn(const std::string& path, std::vector<MainRoute>* routes, std::string* error) {
  return NetlinkIn(
      path,
      [&](int sock, std::string* err) {
        for (int family : {AF_INET, AF_INET6}) {
          bool ok = Dump(sock, RTM_GETROUTE, static_cast<uint8_t>(family), sizeof(rtmsg), [&](nlmsghdr* h) {
            if (h->nlmsg_type != RTM_NEWROUTE) return;
            rtmsg* rt = static_cast<rtmsg*>(NLMSG_DATA(h));
            if (rt->rtm_flags & RTM_F_CLONED) return;
            uint32_t table = rt->rtm_table;
            MainRoute r{family, {}, rt->rtm_dst_len, 0, {}};
            int len = static_cast<int>(h->nlmsg_len - NLMSG_LENGTH(sizeof(rtmsg)));
            for (rtattr* a = RTM_RTA(rt); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
              const uint8_t* d = static_cast<const uint8_t*>(RTA_DATA(a));
              switch (a->rta_type) {
                case RTA_DST: r.dst.assign(d, d + RTA_PAYLOAD(a)); break;
                case RTA_GATEWAY: r.gateway.assign(d, d + RTA_PAYLOAD(a)); break;
                case RTA_OIF: memcpy(&r.oif, d, sizeof(uint32_t)); break;
                case RTA_TABLE: memcpy(&table, d, sizeof(uint32_t)); break;
                default: break;
              }
            }
            // What `ip route show` lists: the main table's unicast-like routes.
            if (table != RT_TABLE_MAIN || rt->rtm_type == RTN_LOCAL || rt->rtm_type == RTN_BROADCAST || rt->rtm_type == RTN_MULTICAST) return;
            routes->push_back(std::move(r));
          }, err);
          if (!ok) return false;
        }
        return true;
      },
      error);
}

namespace {

uint8_t U8(const rtattr* a) { return *static_cast<const uint8_t*>(RTA_DATA(a)); }

// IFLA_LINKINFO's IFLA_INFO_SLAVE_DATA of a bridge port.
void ReadPortSettings(rtattr* linkinfo, BridgePortInfo* port, bool* is_port) {
  int len = static_cast<int>(RTA_PAYLOAD(linkinfo));
  rtattr* data = nullptr;
  for (rtattr* i = static_cast<rtattr*>(RTA_DATA(linkinfo)); RTA_OK(i, len); i = RTA_NEXT(i, len)) {
    if (i->rta_type == IFLA_INFO_SLAVE_KIND) *is_port = strcmp(static_cast<const char*>(RTA_DATA(i)), "bridge") == 0;
    if (i->rta_type == IFLA_INFO_SLAVE_DATA) data = i;
  }
  if (!*is_port || !data) return;
  int inner = static_cast<int>(RTA_PAYLOAD(data));
  for (rtattr* a = static_cast<rtattr*>(RTA_DATA(data)); RTA_OK(a, inner); a = RTA_NEXT(a, inner)) {
    switch (a->rta_type) {
      case IFLA_BRPORT_STATE: port->stp_state = U8(a); break;
      case IFLA_BRPORT_MODE: port->hairpin = U8(a) != 0; break;
      case IFLA_BRPORT_LEARNING: port->learning = U8(a) != 0; break;
      case IFLA_BRPORT_UNICAST_FLOOD: port->flood = U8(a) != 0; break;
      default: break;
    }
  }
}

}  // namespace

bool BridgePortsIn(const std::string& path, std::vector<BridgePortInfo>* ports, std::vector<FdbEntry>* fdb,
                   std::string* error) {
  return NetlinkIn(
      path,
      [&](int sock, std::string* err) {
        bool ok = Dump(sock, RTM_GETLINK, AF_UNSPEC, sizeof(ifinfomsg), [&](nlmsghdr* h) {
          if (h->nlmsg_type != RTM_NEWLINK) return;
          ifinfomsg* info = static_cast<ifinfomsg*>(NLMSG_DATA(h));
          BridgePortInfo port;
          port.ifindex = static_cast<uint32_t>(info->ifi_index);
          bool is_port = false;
          int len = static_cast<int>(h->nlmsg_len - NLMSG_LENGTH(sizeof(ifinfomsg)));
          for (rtattr* a = IFLA_RTA(info); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
            if (a->rta_type == IFLA_OPERSTATE) port.operstate = U8(a);
            if (a->rta_type == IFLA_LINKINFO) ReadPortSettings(a, &port, &is_port);
          }
          if (is_port) ports->push_back(std::move(port));
        }, err);
        // The ports' VLANs: the bridge family's link dump, one entry per VLAN.
        ok = ok && Dump(sock, RTM_GETLINK, AF_BRIDGE, sizeof(ifinfomsg), [&](nlmsghdr* h) {
          if (h->nlmsg_type != RTM_NEWLINK) return;
          ifinfomsg* info = static_cast<ifinfomsg*>(NLMSG_DATA(h));
          auto port = std::find_if(ports->begin(), ports->end(),
                                   [&](const BridgePortInfo& p) { return p.ifindex == static_cast<uint32_t>(info->ifi_index); });
          if (port == ports->end()) return;
          int len = static_cast<int>(h->nlmsg_len - NLMSG_LENGTH(sizeof(ifinfomsg)));
          for (rtattr* a = IFLA_RTA(info); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
            if (a->rta_type != IFLA_AF_SPEC) continue;
            int inner = static_cast<int>(RTA_PAYLOAD(a));
            for (rtattr* v = static_cast<rtattr*>(RTA_DATA(a)); RTA_OK(v, inner); v = RTA_NEXT(v, inner)) {
              if (v->rta_type != IFLA_BRIDGE_VLAN_INFO || RTA_PAYLOAD(v) < sizeof(bridge_vlan_info)) continue;
              bridge_vlan_info vi;
              memcpy(&vi, RTA_DATA(v), sizeof(vi));
              port->vlans.push_back({vi.vid, vi.flags});
            }
          }
        }, err, RTEXT_FILTER_BRVLAN);
        ok = ok && Dump(sock, RTM_GETNEIGH, AF_BRIDGE, sizeof(ndmsg), [&](nlmsghdr* h) {
          if (h->nlmsg_type != RTM_NEWNEIGH) return;
          ndmsg* nd = static_cast<ndmsg*>(NLMSG_DATA(h));
          FdbEntry e{static_cast<uint32_t>(nd->ndm_ifindex), "", -1, nd->ndm_flags, nd->ndm_state, 0};
          int len = static_cast<int>(h->nlmsg_len - NLMSG_LENGTH(sizeof(ndmsg)));
          for (rtattr* a = reinterpret_cast<rtattr*>(reinterpret_cast<char*>(nd) + NLMSG_ALIGN(sizeof(ndmsg))); RTA_OK(a, len);
               a = RTA_NEXT(a, len)) {
            switch (a->rta_type) {
              case NDA_LLADDR: e.mac = MacText(static_cast<const uint8_t*>(RTA_DATA(a)), RTA_PAYLOAD(a)); break;
              case NDA_VLAN: {
                uint16_t v;
                memcpy(&v, RTA_DATA(a), sizeof(v));
                e.vlan = v;
                break;
              }
              case NDA_MASTER: memcpy(&e.master, RTA_DATA(a), sizeof(uint32_t)); break;
              default: break;
            }
          }
          fdb->push_back(std::move(e));
        }, err);
        return ok;
      },
      error);
}

bool ReadFileIn(const std::string& path, const std::string& file, std::string* contents, std::string* error) {
  return InNetns(
      path,
      [&](std::string* err) {
        int fd = open(file.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
          *err = Errno("cannot open " + file);
          return false;
        }
        char buf[4096];
        ssize_t n;
        while ((n = read(fd, buf, sizeof(buf))) > 0) contents->append(buf, static_cast<size_t>(n));
        close(fd);
        return n == 0;
      },
      error);
}

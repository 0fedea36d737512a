#include "netns_links.h"

#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/net_namespace.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
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
  return InNetns(
      from_path,
      [&](std::string* err) {
        RouteSocket sock;
        if (sock.fd() < 0) {
          *err = Errno("cannot open a netlink socket");
          return false;
        }
        for (size_t i = 0; i < targets.size(); i++) {
          int fd = open(targets[i].c_str(), O_RDONLY | O_CLOEXEC);
          if (fd < 0) continue;
          (*ids)[i] = AskNsid(sock.fd(), fd, static_cast<uint32_t>(i + 1));
          close(fd);
        }
        return true;
      },
      error);
}

bool LinksIn(const std::string& path, std::vector<NamedLink>* links, std::string* error) {
  return InNetns(
      path,
      [&](std::string* err) {
        RouteSocket sock;
        if (sock.fd() < 0) {
          *err = Errno("cannot open a netlink socket");
          return false;
        }
        struct {
          nlmsghdr header;
          ifinfomsg info;
        } req = {};
        req.header.nlmsg_len = NLMSG_LENGTH(sizeof(ifinfomsg));
        req.header.nlmsg_type = RTM_GETLINK;
        req.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
        req.header.nlmsg_seq = 1;
        req.info.ifi_family = AF_UNSPEC;
        if (send(sock.fd(), &req, req.header.nlmsg_len, 0) < 0) {
          *err = Errno("cannot ask for links");
          return false;
        }
        std::vector<char> buf(1 << 16);
        for (;;) {
          ssize_t n = recv(sock.fd(), buf.data(), buf.size(), 0);
          if (n <= 0) {
            *err = Errno("cannot read links");
            return false;
          }
          for (nlmsghdr* h = reinterpret_cast<nlmsghdr*>(buf.data()); NLMSG_OK(h, static_cast<uint32_t>(n));
               h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_type == NLMSG_DONE) return true;
            if (h->nlmsg_type == NLMSG_ERROR) {
              *err = "netlink refused the link dump";
              return false;
            }
            if (h->nlmsg_type != RTM_NEWLINK) continue;
            ifinfomsg* info = static_cast<ifinfomsg*>(NLMSG_DATA(h));
            int len = static_cast<int>(h->nlmsg_len - NLMSG_LENGTH(sizeof(ifinfomsg)));
            for (rtattr* a = IFLA_RTA(info); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
              if (a->rta_type == IFLA_IFNAME)
                links->push_back({static_cast<uint32_t>(info->ifi_index), static_cast<const char*>(RTA_DATA(a))});
            }
          }
        }
      },
      error);
}

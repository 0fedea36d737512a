#include "link_monitor.h"

#include <fcntl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include "js_errors.h"

namespace {

constexpr int kPollMs = 200;

}  // namespace

Napi::Function LinkMonitor::Define(Napi::Env env) {
  return DefineClass(env, "LinkMonitor", {InstanceMethod<&LinkMonitor::Stop>("stop")});
}

LinkMonitor::LinkMonitor(const Napi::CallbackInfo& info) : Napi::ObjectWrap<LinkMonitor>(info) {
  Napi::Env env = info.Env();
  const char* usage = "new LinkMonitor(netnsPath: string, onChange: () => void, topic?: 'links' | 'nftables')";
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsFunction() || (info.Length() > 2 && !info[2].IsString()))
    throw CodedError(env, "INVALID_ARGUMENT", usage);
  std::string topic = info.Length() > 2 ? info[2].As<Napi::String>().Utf8Value() : "links";
  Topic t;
  if (topic == "links") t = {NETLINK_ROUTE, RTNLGRP_LINK};
  else if (topic == "nftables") t = {NETLINK_NETFILTER, NFNLGRP_NFTABLES};
  else throw CodedError(env, "INVALID_ARGUMENT", usage);
  tsfn_ = Napi::ThreadSafeFunction::New(env, info[1].As<Napi::Function>(), "bpftrace-net netlink", 1, 1);
  // Notifications never keep the process alive by themselves.
  tsfn_.Unref(env);
  thread_ = std::thread(&LinkMonitor::Run, this, info[0].As<Napi::String>().Utf8Value(), t);
}

LinkMonitor::~LinkMonitor() { Join(); }

void LinkMonitor::Join() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
}

Napi::Value LinkMonitor::Stop(const Napi::CallbackInfo& info) {
  Join();
  return info.Env().Undefined();
}

void LinkMonitor::Run(std::string netns_path, Topic topic) {
  if (!netns_path.empty()) {
    int ns = open(netns_path.c_str(), O_RDONLY | O_CLOEXEC);
    int rc = ns < 0 ? -1 : setns(ns, CLONE_NEWNET);
    if (ns >= 0) close(ns);
    if (rc) {
      tsfn_.Release();
      return;
    }
  }
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, topic.protocol);
  sockaddr_nl addr = {};
  addr.nl_family = AF_NETLINK;
  int group = static_cast<int>(topic.group);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) ||
      setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof(group))) {
    if (fd >= 0) close(fd);
    tsfn_.Release();
    return;
  }
  char buf[8192];
  while (!stopping_) {
    pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, kPollMs) <= 0) continue;
    bool any = false;
    while (recv(fd, buf, sizeof(buf), 0) > 0) any = true;
    // One call in flight at a time: JS rescans everything anyway.
    if (any && !pending_.exchange(true)) {
      tsfn_.NonBlockingCall([this](Napi::Env env, Napi::Function on_change) {
        pending_ = false;
        if (env != nullptr) on_change.Call({});
      });
    }
  }
  close(fd);
  tsfn_.Release();
}

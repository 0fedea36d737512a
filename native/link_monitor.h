// Netlink notifications of one network namespace (links, or nftables' ruleset
// changes), read on
// a thread that entered it, handed to JS as "something changed" through one
// thread-safe function. Lives and dies with the process: no helper process.
#pragma once

#include <napi.h>

#include <atomic>
#include <string>
#include <thread>

class LinkMonitor : public Napi::ObjectWrap<LinkMonitor> {
 public:
  static Napi::Function Define(Napi::Env env);
  // new LinkMonitor(netnsPath, onChange)
  explicit LinkMonitor(const Napi::CallbackInfo& info);
  ~LinkMonitor() override;

 private:
  Napi::Value Stop(const Napi::CallbackInfo& info);
  struct Topic {
    int protocol;
    unsigned group;
  };
  void Run(std::string netns_path, Topic topic);
  void Join();

  Napi::ThreadSafeFunction tsfn_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> pending_{false};
};

// `--rules`: nf_tables' own rule tracer. A thread inside the traced netns runs
// the script JS gives it through libnftables (a table with the owner flag whose
// chains set `meta nftrace set 1`: the kernel deletes it when this process's
// socket closes, SIGKILL included), reads NFT_MSG_TRACE messages from
// NFNLGRP_NFTRACE, and hands them to JS as RuleBatch protobufs through one
// thread-safe function. Every nft command runs on that thread (interface
// names resolve in the traced netns).
#pragma once

#include <napi.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

class RuleTracer : public Napi::ObjectWrap<RuleTracer> {
 public:
  static Napi::Function Define(Napi::Env env);
  // new RuleTracer(netnsPath, onBatch(buffer))
  explicit RuleTracer(const Napi::CallbackInfo& info);
  ~RuleTracer() override;

 private:
  struct Command {
    std::string text;
    bool done = false;
    int rc = 0;
    std::string output, error;
  };

  Napi::Value Start(const Napi::CallbackInfo& info);
  Napi::Value Run(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value Stop(const Napi::CallbackInfo& info);
  void Loop(std::string netns_path, std::string script);
  void Join();
  bool Execute(Command* c);

  Napi::ThreadSafeFunction tsfn_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> lost_{0}, events_{0};
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Command*> commands_;
  // Start: the script's result, reported once.
  bool started_ = false, start_ok_ = false;
  std::string start_error_;
  std::string netns_path_;
  void* nft_ = nullptr;  // struct nft_ctx*, owned by the thread
  int wake_fd_ = -1;
};

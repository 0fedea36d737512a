#include "rule_tracer.h"

#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <libnftnl/trace.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <nftables/libnftables.h>
#include <poll.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <ctime>
#include <memory>

#include "js_errors.h"
#include "protobuf_wire.h"

namespace {

constexpr int kPollMs = 50;
constexpr size_t kMaxEventsPerBatch = 4096;
constexpr int kReceiveBuffer = 8 << 20;
// Never blocks on JS (which may itself be waiting in run()): a batch JS has no room for is counted lost.
constexpr size_t kQueuedBatches = 16;

enum RuleEventField {
  kTs = 1, kId, kFamily, kTable, kChain, kHandle, kType, kVerdict, kJumpTarget, kIif, kOif, kNfproto, kMark,
  kNetworkHeader, kTransportHeader, kPolicy
};

uint64_t MonotonicNs() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<uint64_t>(t.tv_sec) * 1000000000ull + static_cast<uint64_t>(t.tv_nsec);
}

void PutString(std::vector<uint8_t>& out, int field, const char* s) {
  if (s && *s) wire::PutBytes(out, field, reinterpret_cast<const uint8_t*>(s), strlen(s));
}

// sint32 (zigzag): verdicts are negative for NFT_CONTINUE, NFT_JUMP ...
void PutSint(std::vector<uint8_t>& out, int field, int32_t v) {
  wire::PutUint(out, field, (static_cast<uint32_t>(v) << 1) ^ static_cast<uint32_t>(v >> 31));
}

void PutData(std::vector<uint8_t>& out, int field, nftnl_trace* t, uint16_t attr) {
  if (!nftnl_trace_is_set(t, attr)) return;
  uint32_t len = 0;
  const void* data = nftnl_trace_get_data(t, attr, &len);
  if (data && len) wire::PutBytes(out, field, static_cast<const uint8_t*>(data), len);
}

// One NFT_MSG_TRACE as a RuleEvent, appended to the batch body (field 1).
void EncodeTrace(std::vector<uint8_t>& batch, nftnl_trace* t, uint64_t ts) {
  std::vector<uint8_t> e;
  auto u32 = [&](uint16_t attr) { return nftnl_trace_is_set(t, attr) ? nftnl_trace_get_u32(t, attr) : 0u; };
  wire::PutUint(e, kTs, ts);
  wire::PutUint(e, kId, u32(NFTNL_TRACE_ID));
  wire::PutUint(e, kFamily, u32(NFTNL_TRACE_FAMILY));
  if (nftnl_trace_is_set(t, NFTNL_TRACE_TABLE)) PutString(e, kTable, nftnl_trace_get_str(t, NFTNL_TRACE_TABLE));
  if (nftnl_trace_is_set(t, NFTNL_TRACE_CHAIN)) PutString(e, kChain, nftnl_trace_get_str(t, NFTNL_TRACE_CHAIN));
  if (nftnl_trace_is_set(t, NFTNL_TRACE_RULE_HANDLE)) wire::PutUint(e, kHandle, nftnl_trace_get_u64(t, NFTNL_TRACE_RULE_HANDLE));
  wire::PutUint(e, kType, u32(NFTNL_TRACE_TYPE));
  if (nftnl_trace_is_set(t, NFTNL_TRACE_VERDICT)) PutSint(e, kVerdict, static_cast<int32_t>(nftnl_trace_get_u32(t, NFTNL_TRACE_VERDICT)));
  if (nftnl_trace_is_set(t, NFTNL_TRACE_JUMP_TARGET)) PutString(e, kJumpTarget, nftnl_trace_get_str(t, NFTNL_TRACE_JUMP_TARGET));
  wire::PutUint(e, kIif, u32(NFTNL_TRACE_IIF));
  wire::PutUint(e, kOif, u32(NFTNL_TRACE_OIF));
  wire::PutUint(e, kNfproto, u32(NFTNL_TRACE_NFPROTO));
  wire::PutUint(e, kMark, u32(NFTNL_TRACE_MARK));
  PutData(e, kNetworkHeader, t, NFTNL_TRACE_NETWORK_HEADER);
  PutData(e, kTransportHeader, t, NFTNL_TRACE_TRANSPORT_HEADER);
  wire::PutUint(e, kPolicy, u32(NFTNL_TRACE_POLICY));
  wire::PutBytes(batch, 1, e.data(), e.size());
}

}  // namespace

Napi::Function RuleTracer::Define(Napi::Env env) {
  return DefineClass(env, "RuleTracer",
                     {InstanceMethod<&RuleTracer::Start>("start"), InstanceMethod<&RuleTracer::Run>("run"),
                      InstanceMethod<&RuleTracer::Stats>("stats"), InstanceMethod<&RuleTracer::Stop>("stop")});
}

RuleTracer::RuleTracer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<RuleTracer>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsFunction())
    throw CodedError(env, "INVALID_ARGUMENT", "new RuleTracer(netnsPath: string, onBatch: (batch: Buffer) => void)");
  tsfn_ = Napi::ThreadSafeFunction::New(env, info[1].As<Napi::Function>(), "bpftrace-net rules", kQueuedBatches, 1);
  tsfn_.Unref(env);
  netns_path_ = info[0].As<Napi::String>().Utf8Value();
}

RuleTracer::~RuleTracer() { Join(); }

// start(script): resolves once the script ran inside the netns and tracing is on;
// rejects with code RULES and nft's own message otherwise. Runs its thread until stop().
Napi::Value RuleTracer::Start(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw CodedError(env, "INVALID_ARGUMENT", "start(script: string)");
  if (thread_.joinable()) throw CodedError(env, "ALREADY_STARTED", "this rule tracer was already started");
  thread_ = std::thread(&RuleTracer::Loop, this, netns_path_, info[0].As<Napi::String>().Utf8Value());
  // The script runs before the thread listens: a short wait, on purpose synchronous
  // so that nothing is traced before the rules are in place.
  std::unique_lock<std::mutex> lock(mutex_);
  cv_.wait(lock, [this] { return started_; });
  if (!start_ok_) {
    lock.unlock();
    Join();
    throw CodedError(env, "RULES", start_error_);
  }
  return env.Undefined();
}

bool RuleTracer::Execute(Command* c) {
  nft_ctx* ctx = static_cast<nft_ctx*>(nft_);
  c->rc = nft_run_cmd_from_buffer(ctx, c->text.c_str());
  const char* out = nft_ctx_get_output_buffer(ctx);
  const char* err = nft_ctx_get_error_buffer(ctx);
  c->output = out ? out : "";
  c->error = err ? err : "";
  return c->rc == 0;
}

// run(command): nft's output, on the tracer's thread (inside the netns). Throws RULES.
Napi::Value RuleTracer::Run(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw CodedError(env, "INVALID_ARGUMENT", "run(command: string)");
  Command c;
  c.text = info[0].As<Napi::String>().Utf8Value();
  {
    std::unique_lock<std::mutex> lock(mutex_);
    if (!start_ok_ || stopping_) throw CodedError(env, "NOT_RUNNING", "run: the rule tracer is not running");
    commands_.push_back(&c);
    uint64_t one = 1;
    if (write(wake_fd_, &one, sizeof(one)) < 0) {
      // the thread polls anyway
    }
    cv_.wait(lock, [&] { return c.done; });
  }
  if (c.rc != 0) throw CodedError(env, "RULES", c.error.empty() ? "nft refused: " + c.text : c.error);
  return Napi::String::New(env, c.output);
}

Napi::Value RuleTracer::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("lost", Napi::Number::New(env, static_cast<double>(lost_.load())));
  o.Set("events", Napi::Number::New(env, static_cast<double>(events_.load())));
  return o;
}

Napi::Value RuleTracer::Stop(const Napi::CallbackInfo& info) {
  Join();
  return info.Env().Undefined();
}

void RuleTracer::Join() {
  stopping_ = true;
  if (wake_fd_ >= 0) {
    uint64_t one = 1;
    if (write(wake_fd_, &one, sizeof(one)) < 0) {
      // the thread polls anyway
    }
  }
  if (thread_.joinable()) thread_.join();
}

void RuleTracer::Loop(std::string netns_path, std::string script) {
  auto report = [this](bool ok, const std::string& why) {
    std::lock_guard<std::mutex> lock(mutex_);
    started_ = true;
    start_ok_ = ok;
    start_error_ = why;
    cv_.notify_all();
  };
  if (!netns_path.empty()) {
    int ns = open(netns_path.c_str(), O_RDONLY | O_CLOEXEC);
    int rc = ns < 0 ? -1 : setns(ns, CLONE_NEWNET);
    if (ns >= 0) close(ns);
    if (rc) {
      report(false, "cannot enter netns " + netns_path + ": " + strerror(errno));
      tsfn_.Release();
      return;
    }
  }
  // The trace socket first: no message of the packets the script starts marking is missed.
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_NETFILTER);
  sockaddr_nl addr = {};
  addr.nl_family = AF_NETLINK;
  int group = NFNLGRP_NFTRACE, size = kReceiveBuffer;
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) ||
      setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof(group))) {
    report(false, std::string("cannot listen to nf_tables' rule tracer (NFNLGRP_NFTRACE): ") + strerror(errno));
    if (fd >= 0) close(fd);
    tsfn_.Release();
    return;
  }
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size))) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
  nft_ctx* ctx = nft_ctx_new(NFT_CTX_DEFAULT);
  if (!ctx) {
    report(false, "libnftables cannot start");
    close(fd);
    tsfn_.Release();
    return;
  }
  nft_ = ctx;
  nft_ctx_buffer_output(ctx);
  nft_ctx_buffer_error(ctx);
  // Listings name every rule by its handle, as `nft -a list ruleset` does.
  nft_ctx_output_set_flags(ctx, NFT_CTX_OUTPUT_HANDLE);
  Command first;
  first.text = script;
  if (!Execute(&first)) {
    report(false, "nft refused the rule tracer's table: " + first.error);
    nft_ctx_free(ctx);
    nft_ = nullptr;
    close(fd);
    tsfn_.Release();
    return;
  }
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  report(true, "");

  std::vector<uint8_t> batch;
  size_t in_batch = 0;
  auto last_flush = std::chrono::steady_clock::now();
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE * 4);
  uint64_t lost_sent = 0;
  // When the socket was last read empty: JS releases a packet waiting for its rule messages
  // once this passes the packet's last hop (all were queued before that hop), not after a
  // fixed wait. Sent every kPollMs even with no message, so quiet rules hold nothing back.
  uint64_t drained_to = 0, drained_sent = 0;
  auto flush = [&](bool force) {
    uint64_t lost = lost_.load();
    if (!in_batch && lost == lost_sent && drained_to == drained_sent && !force) return;
    size_t events = in_batch;
    std::vector<uint8_t>* out = new std::vector<uint8_t>(std::move(batch));
    wire::PutUint(*out, 2, lost);
    wire::PutUint(*out, 3, drained_to);
    lost_sent = lost;
    drained_sent = drained_to;
    batch.clear();
    in_batch = 0;
    last_flush = std::chrono::steady_clock::now();
    if (tsfn_.NonBlockingCall(out, [](Napi::Env env, Napi::Function fn, std::vector<uint8_t>* b) {
          std::unique_ptr<std::vector<uint8_t>> owned(b);
          if (env != nullptr) fn.Call({Napi::Buffer<uint8_t>::Copy(env, b->data(), b->size())});
        }) != napi_ok) {
      delete out;
      lost_ += events;
    }
  };
  while (!stopping_) {
    pollfd p[2] = {{fd, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    poll(p, 2, kPollMs);
    if (p[1].revents) {
      uint64_t n;
      if (read(wake_fd_, &n, sizeof(n)) < 0) {
        // drained
      }
    }
    for (;;) {
      uint64_t before_read = MonotonicNs();
      ssize_t n = recv(fd, buf.data(), buf.size(), 0);
      if (n < 0) {
        // The kernel had more trace messages than the socket could hold: counted, never silent.
        if (errno == ENOBUFS) {
          lost_++;
          continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) drained_to = before_read;
        break;
      }
      if (n == 0) break;
      uint64_t ts = MonotonicNs();
      for (nlmsghdr* h = reinterpret_cast<nlmsghdr*>(buf.data()); NLMSG_OK(h, static_cast<uint32_t>(n)); h = NLMSG_NEXT(h, n)) {
        if (h->nlmsg_type != ((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_TRACE)) continue;
        nftnl_trace* t = nftnl_trace_alloc();
        if (t && nftnl_trace_nlmsg_parse(h, t) == 0) {
          EncodeTrace(batch, t, ts);
          in_batch++;
          events_++;
        }
        if (t) nftnl_trace_free(t);
      }
      if (in_batch >= kMaxEventsPerBatch) flush(false);
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      while (!commands_.empty()) {
        Command* c = commands_.front();
        commands_.pop_front();
        Execute(c);
        c->done = true;
      }
      cv_.notify_all();
    }
    if (std::chrono::steady_clock::now() - last_flush >= std::chrono::milliseconds(kPollMs)) flush(false);
  }
  flush(false);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    start_ok_ = false;
    for (Command* c : commands_) {
      c->rc = -1;
      c->error = "the rule tracer stopped";
      c->done = true;
    }
    commands_.clear();
    cv_.notify_all();
  }
  // Closing the socket that made the table deletes it (the owner flag).
  nft_ctx_free(ctx);
  nft_ = nullptr;
  close(fd);
  close(wake_fd_);
  wake_fd_ = -1;
  tsfn_.Release();
}

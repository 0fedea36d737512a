// The JS-facing tracer: a background thread runs the Tracer lifecycle and
// delivers one protobuf Batch per ring-buffer wakeup through one
// thread-safe function. Start errors on that thread reject start()'s Promise.
#pragma once

#include <napi.h>

#include <atomic>
#include <string>
#include <mutex>
#include <cstdint>
#include <thread>
#include <unordered_set>
#include <vector>

#include "errors.h"
#include "trace_file.h"
#include "tracer.h"

class TraceSession : public Napi::ObjectWrap<TraceSession> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit TraceSession(const Napi::CallbackInfo& info);

 private:
  struct Message {
    enum Kind { kStarted, kBatch, kError, kNetfilterMoved } kind;
    std::vector<uint8_t> bytes;
    TraceError error;
    std::vector<std::string> notices;
  };

  Napi::Value Start(const Napi::CallbackInfo& info);
  Napi::Value Stop(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value ReadPaths(const Napi::CallbackInfo& info);
  Napi::Value WriteFrame(const Napi::CallbackInfo& info);
  Napi::Value RotateTrace(const Napi::CallbackInfo& info);
  Napi::Value TakeAddresses(const Napi::CallbackInfo& info);
  Napi::Value SetWatched(const Napi::CallbackInfo& info);
  Napi::Value SetPaused(const Napi::CallbackInfo& info);
  Napi::Value SetNetfilter(const Napi::CallbackInfo& info);

  void Run(TracerConfig config);
  void Send(Message* message);
  void Deliver(Napi::Env env, Napi::Function on_batch, Message* message);
  void Finished(Napi::Env env);
  Napi::Object StatsObject(Napi::Env env) const;
  uint64_t RecordLost(std::vector<uint64_t> per_cpu);
  std::vector<uint64_t> LostPerCpu() const;
  void WriteToFile(TraceFileWriter& file, TraceFrameField kind, const std::vector<uint8_t>& batch, uint64_t lost, bool* failed);

  Napi::FunctionReference on_error_;
  Napi::ThreadSafeFunction tsfn_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> paused_{false};
  std::atomic<uint64_t> lost_{0}, batches_{0}, events_{0}, packets_{0}, bytes_written_{0}, shed_{0};
  // The running tracer, for readPaths() from the JS thread.
  std::mutex tracer_mutex_;
  Tracer* tracer_ = nullptr;
  // Trace-file frames from JS and addresses for it to name, both guarded.
  std::mutex frames_mutex_;
  // Frames JS queued for the trace file, in order; next_fd >= 0: go on in that file from here.
  struct PendingFrame {
    std::vector<uint8_t> bytes;
    int next_fd;
    bool prefixed;  // bytes are whole frames, length prefixes included
  };
  std::vector<PendingFrame> pending_frames_;
  std::vector<uint64_t> new_addresses_;
  std::vector<std::vector<NetfilterAttachment>> pending_netfilter_;
  mutable std::mutex lost_mutex_;
  std::vector<uint64_t> lost_per_cpu_;
  enum class State { kIdle, kStarting, kRunning, kFinished } state_ = State::kIdle;
  std::unique_ptr<Napi::Promise::Deferred> start_deferred_;
  std::vector<Napi::Promise::Deferred> stop_deferreds_;
  std::vector<Napi::Promise::Deferred> netfilter_deferreds_;
};

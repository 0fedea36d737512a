#include "trace_session.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>

#include "encoder.h"
#include "js_errors.h"
#include "records.h"
#include "session_config.h"
#include "session_limits.h"

using namespace session_limits;


Napi::Function TraceSession::Define(Napi::Env env) {
  return DefineClass(env, "TraceSession",
                     {InstanceMethod<&TraceSession::Start>("start"), InstanceMethod<&TraceSession::Stop>("stop"),
                      InstanceMethod<&TraceSession::Stats>("stats"),
                      InstanceMethod<&TraceSession::ReadPaths>("readPaths"),
                      InstanceMethod<&TraceSession::WriteFrame>("writeFrame"),
                      InstanceMethod<&TraceSession::RotateTrace>("rotateTrace"),
                      InstanceMethod<&TraceSession::TakeAddresses>("takeAddresses"),
                      InstanceMethod<&TraceSession::SetWatched>("setWatched"),
                      InstanceMethod<&TraceSession::SetNetfilter>("setNetfilter"),
                      InstanceMethod<&TraceSession::SetPaused>("setPaused")});
}

// new TraceSession(onBatch(buffer), onError(error))
TraceSession::TraceSession(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TraceSession>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsFunction() || !info[1].IsFunction())
    throw CodedError(env, "INVALID_ARGUMENT", "new TraceSession(onBatch, onError) needs two functions");
  on_error_ = Napi::Persistent(info[1].As<Napi::Function>());
  tsfn_ = Napi::ThreadSafeFunction::New(env, info[0].As<Napi::Function>(), "bpftrace-net reader", kQueuedBatches, 1,
                                        this, [](Napi::Env env, TraceSession* self) { self->Finished(env); });
  // Until started, the thread-safe function must not keep the event loop alive.
  tsfn_.Unref(env);
}

Napi::Value TraceSession::Start(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (state_ != State::kIdle) throw CodedError(env, "ALREADY_STARTED", "this session was already started");
  TracerConfig config = ParseConfig(env, info[0]);
  start_deferred_ = std::make_unique<Napi::Promise::Deferred>(env);
  state_ = State::kStarting;
  Ref();
  tsfn_.Ref(env);
  thread_ = std::thread(&TraceSession::Run, this, std::move(config));
  return start_deferred_->Promise();
}

Napi::Value TraceSession::Stop(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Promise::Deferred deferred(env);
  if (state_ == State::kIdle || state_ == State::kFinished) {
    if (state_ == State::kIdle) {
      state_ = State::kFinished;
      tsfn_.Release();
    }
    deferred.Resolve(StatsObject(env));
  } else {
    stopping_ = true;
    stop_deferreds_.push_back(deferred);
  }
  return deferred.Promise();
}

Napi::Value TraceSession::Stats(const Napi::CallbackInfo& info) { return StatsObject(info.Env()); }

// readPaths(): top mode's counters, [{signature: hex string, packets, bytes}].
Napi::Value TraceSession::ReadPaths(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<PathCount> paths;
  {
    std::lock_guard<std::mutex> lock(tracer_mutex_);
    if (tracer_) paths = tracer_->ReadPaths();
  }
  Napi::Array out = Napi::Array::New(env, paths.size());
  char hex[17];
  for (uint32_t i = 0; i < paths.size(); i++) {
    Napi::Object p = Napi::Object::New(env);
    snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(paths[i].signature));
    p.Set("signature", hex);
    p.Set("packets", Napi::Number::New(env, static_cast<double>(paths[i].packets)));
    p.Set("bytes", Napi::Number::New(env, static_cast<double>(paths[i].bytes)));
    out.Set(i, p);
  }
  return out;
}


// setWatched(add, remove): devices whose packets start a traversal, changed
// while tracing (ports added or removed). false when not running.
Napi::Value TraceSession::SetWatched(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2) throw CodedError(env, "INVALID_ARGUMENT", "setWatched(add: number[], remove: number[])");
  std::vector<uint32_t> add = IfindexList(env, info[0], "add"), remove = IfindexList(env, info[1], "remove");
  std::lock_guard<std::mutex> lock(tracer_mutex_);
  return Napi::Boolean::New(env, tracer_ != nullptr && tracer_->SetWatched(add, remove));
}

// setNetfilter(attachments): the ruleset changed, the probes move. Applied by
// the reader thread (inside the traced netns) after the frames queued before
// this call are written; resolves with {error} ('' when every probe attached).
Napi::Value TraceSession::SetNetfilter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1) throw CodedError(env, "INVALID_ARGUMENT", "setNetfilter(attachments: object[])");
  std::vector<NetfilterAttachment> wanted = NetfilterList(env, info[0], "attachments");
  Napi::Promise::Deferred deferred(env);
  if (state_ != State::kRunning) {
    deferred.Reject(CodedError(env, "NOT_RUNNING", "setNetfilter: the session is not running").Value());
    return deferred.Promise();
  }
  netfilter_deferreds_.push_back(deferred);
  std::lock_guard<std::mutex> lock(frames_mutex_);
  pending_netfilter_.push_back(std::move(wanted));
  return deferred.Promise();
}

// setPaused(paused): while JS cannot keep up with its own output, the reader
// stops taking from the ring; the kernel then counts what it cannot queue.
Napi::Value TraceSession::SetPaused(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsBoolean()) throw CodedError(env, "INVALID_ARGUMENT", "setPaused(paused: boolean)");
  paused_ = info[0].As<Napi::Boolean>().Value();
  return env.Undefined();
}

// writeFrame(frame): an encoded TraceFrame for the trace file, written by the
// reader thread between batches so frames never interleave.
Napi::Value TraceSession::WriteFrame(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsBuffer())
    throw CodedError(env, "INVALID_ARGUMENT", "writeFrame(frame: Buffer)");
  Napi::Buffer<uint8_t> frame = info[0].As<Napi::Buffer<uint8_t>>();
  std::lock_guard<std::mutex> lock(frames_mutex_);
  pending_frames_.push_back({std::vector<uint8_t>(frame.Data(), frame.Data() + frame.Length()), -1, false});
  return env.Undefined();
}

// rotateTrace(fd, lastFrames): the old file's last frames (symbols, trailer: encoded
// TraceFrames, each length-prefixed) and the switch to fd (a new file, its header written)
// are queued together, so no batch can fall between a trailer and the switch.
Napi::Value TraceSession::RotateTrace(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || info[0].As<Napi::Number>().Int32Value() < 0 || !info[1].IsBuffer())
    throw CodedError(env, "INVALID_ARGUMENT", "rotateTrace(fd: number, lastFrames: Buffer)");
  Napi::Buffer<uint8_t> last = info[1].As<Napi::Buffer<uint8_t>>();
  int fd = fcntl(info[0].As<Napi::Number>().Int32Value(), F_DUPFD_CLOEXEC, 0);
  if (fd < 0) throw CodedError(env, "TRACE_FILE", "rotateTrace: " + ErrnoText(-errno));
  std::lock_guard<std::mutex> lock(frames_mutex_);
  pending_frames_.push_back({std::vector<uint8_t>(last.Data(), last.Data() + last.Length()), -1, true});
  pending_frames_.push_back({{}, fd, false});
  return env.Undefined();
}

// takeAddresses(): kernel addresses (rx_handlers, drop locations) recorded
// since the last call, as hex strings, so JS can name them in the trace file.
Napi::Value TraceSession::TakeAddresses(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<uint64_t> fresh;
  {
    std::lock_guard<std::mutex> lock(frames_mutex_);
    fresh.swap(new_addresses_);
  }
  Napi::Array out = Napi::Array::New(env, fresh.size());
  char hex[19];
  for (uint32_t i = 0; i < fresh.size(); i++) {
    snprintf(hex, sizeof(hex), "%llx", static_cast<unsigned long long>(fresh[i]));
    out.Set(i, hex);
  }
  return out;
}

Napi::Object TraceSession::StatsObject(Napi::Env env) const {
  Napi::Object stats = Napi::Object::New(env);
  stats.Set("lost", Napi::Number::New(env, static_cast<double>(lost_.load())));
  stats.Set("batches", Napi::Number::New(env, static_cast<double>(batches_.load())));
  stats.Set("events", Napi::Number::New(env, static_cast<double>(events_.load())));
  stats.Set("packets", Napi::Number::New(env, static_cast<double>(packets_.load())));
  stats.Set("bytesWritten", Napi::Number::New(env, static_cast<double>(bytes_written_.load())));
  stats.Set("shed", Napi::Number::New(env, static_cast<double>(shed_.load())));
  std::lock_guard<std::mutex> lock(lost_mutex_);
  Napi::Array per_cpu = Napi::Array::New(env, lost_per_cpu_.size());
  for (uint32_t i = 0; i < lost_per_cpu_.size(); i++)
    per_cpu.Set(i, Napi::Number::New(env, static_cast<double>(lost_per_cpu_[i])));
  stats.Set("lostPerCpu", per_cpu);
  return stats;
}

void TraceSession::Send(Message* message) {
  if (tsfn_.BlockingCall(message, [this](Napi::Env env, Napi::Function on_batch, Message* m) {
        Deliver(env, on_batch, m);
      }) != napi_ok)
    delete message;
}

// JS thread.
void TraceSession::Deliver(Napi::Env env, Napi::Function on_batch, Message* message) {
  std::unique_ptr<Message> owned(message);
  if (env == nullptr) return;
  switch (message->kind) {
    case Message::kStarted:
      state_ = State::kRunning;
      {
        Napi::Array notices = Napi::Array::New(env, message->notices.size());
        for (uint32_t i = 0; i < message->notices.size(); i++) notices.Set(i, message->notices[i]);
        Napi::Object result = Napi::Object::New(env);
        result.Set("notices", notices);
        start_deferred_->Resolve(result);
      }
      break;
    case Message::kError: {
      Napi::Error error = CodedError(env, message->error.code, message->error.message);
      if (state_ == State::kStarting) {
        start_deferred_->Reject(error.Value());
      } else {
        on_error_.Call({error.Value()});
      }
      break;
    }
    case Message::kNetfilterMoved: {
      if (netfilter_deferreds_.empty()) break;
      Napi::Object result = Napi::Object::New(env);
      result.Set("error", message->error.message);
      netfilter_deferreds_.front().Resolve(result);
      netfilter_deferreds_.erase(netfilter_deferreds_.begin());
      break;
    }
    case Message::kBatch: {
      // A copy V8 accounts for: external buffers freed by finalizers let garbage
      // pile up unseen at high rates (RSS grew past a gigabyte).
      on_batch.Call({Napi::Buffer<uint8_t>::Copy(env, message->bytes.data(), message->bytes.size())});
      break;
    }
  }
}

// JS thread, once the reader thread released the thread-safe function.
void TraceSession::Finished(Napi::Env env) {
  if (thread_.joinable()) thread_.join();
  bool was_started = state_ != State::kIdle && state_ != State::kFinished;
  state_ = State::kFinished;
  for (Napi::Promise::Deferred& deferred : netfilter_deferreds_)
    deferred.Reject(CodedError(env, "NOT_RUNNING", "setNetfilter: the session stopped first").Value());
  netfilter_deferreds_.clear();
  for (Napi::Promise::Deferred& deferred : stop_deferreds_) deferred.Resolve(StatsObject(env));
  stop_deferreds_.clear();
  if (was_started) Unref();
}

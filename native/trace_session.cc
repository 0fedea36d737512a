#include "trace_session.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>

#include "encoder.h"
#include "js_errors.h"
#include "records.h"

namespace {

// The kernel batches wakeups; this is the longest a lone packet waits.
constexpr int kPollTimeoutMs = 50;
constexpr size_t kMaxEventsPerBatch = 4096;
constexpr int kBatchFull = -1000;  // returned by the ring callback to end a wakeup early
constexpr size_t kQueuedBatches = 16;
// filter_insns' size (bpf/filter.bpf.h).
constexpr uint32_t kMaxFilterInsns = 512;
constexpr auto kLostReadInterval = std::chrono::milliseconds(100);

uint32_t RequireUint(Napi::Env env, const Napi::Object& obj, const char* key, bool required = true,
                     uint32_t fallback = 0) {
  Napi::Value v = obj.Get(key);
  if (v.IsUndefined() && !required) return fallback;
  if (!v.IsNumber() || v.As<Napi::Number>().DoubleValue() < 0 ||
      v.As<Napi::Number>().DoubleValue() > 4294967295.0)
    throw CodedError(env, "INVALID_ARGUMENT", std::string("config.") + key + " must be an unsigned 32-bit number");
  return v.As<Napi::Number>().Uint32Value();
}

// [{family, hook, slot, priority, lastPriority?}]: where the hooks backend's probes go.
std::vector<NetfilterAttachment> NetfilterList(Napi::Env env, const Napi::Value& value, const std::string& what) {
  if (!value.IsArray()) throw CodedError(env, "INVALID_ARGUMENT", what + " must be an array");
  Napi::Array list = value.As<Napi::Array>();
  std::vector<NetfilterAttachment> out;
  for (uint32_t i = 0; i < list.Length(); i++) {
    Napi::Value v = list.Get(i);
    if (!v.IsObject()) throw CodedError(env, "INVALID_ARGUMENT", what + " must hold objects");
    Napi::Object a = v.As<Napi::Object>();
    Napi::Value priority = a.Get("priority"), last = a.Get("lastPriority");
    if (!priority.IsNumber()) throw CodedError(env, "INVALID_ARGUMENT", what + "[].priority must be a number");
    if (!last.IsUndefined() && !last.IsNumber())
      throw CodedError(env, "INVALID_ARGUMENT", what + "[].lastPriority must be a number");
    uint32_t slot = RequireUint(env, a, "slot");
    if (slot >= BN_PROBE_POOL)
      throw CodedError(env, "INVALID_ARGUMENT", what + "[].slot must be below " + std::to_string(BN_PROBE_POOL));
    int32_t p = priority.As<Napi::Number>().Int32Value();
    out.push_back({RequireUint(env, a, "family"), RequireUint(env, a, "hook"), slot, p,
                   last.IsNumber() ? last.As<Napi::Number>().Int32Value() : p});
  }
  return out;
}

TracerConfig ParseConfig(Napi::Env env, const Napi::Value& value) {
  if (!value.IsObject()) throw CodedError(env, "INVALID_ARGUMENT", "start(config) needs a config object");
  Napi::Object obj = value.As<Napi::Object>();
  TracerConfig config;
  Napi::Value backend = obj.Get("backend");
  std::string backend_name = backend.IsString() ? backend.As<Napi::String>().Utf8Value() : "";
  if (backend_name == "hooks") config.backend = Backend::kHooks;
  else if (backend_name == "fentry") config.backend = Backend::kFentry;
  else if (backend_name == "kprobe") config.backend = Backend::kKprobe;
  else throw CodedError(env, "INVALID_ARGUMENT", "config.backend must be 'hooks', 'fentry' or 'kprobe'");
  Napi::Value path = obj.Get("netnsPath");
  if (!path.IsUndefined() && !path.IsString())
    throw CodedError(env, "INVALID_ARGUMENT", "config.netnsPath must be a string");
  if (path.IsString()) config.netns_path = path.As<Napi::String>().Utf8Value();
  config.netns_inode = RequireUint(env, obj, "netnsInode");
  config.bridge_ifindex = RequireUint(env, obj, "bridgeIfindex");
  config.ring_bytes = RequireUint(env, obj, "ringBytes", false, config.ring_bytes);
  if (config.ring_bytes < 4096 || (config.ring_bytes & (config.ring_bytes - 1)))
    throw CodedError(env, "INVALID_ARGUMENT", "config.ringBytes must be a power of two of at least 4096");

  // The program compileFilter() made: [code, jt, jf, k] rows (empty: every packet).
  Napi::Value filter = obj.Get("filterProgram");
  if (!filter.IsUndefined()) {
    if (!filter.IsArray()) throw CodedError(env, "INVALID_ARGUMENT", "config.filterProgram must be an array of [code, jt, jf, k]");
    Napi::Array rows = filter.As<Napi::Array>();
    if (rows.Length() > kMaxFilterInsns)
      throw CodedError(env, "BAD_FILTER", "the filter compiles to " + std::to_string(rows.Length()) + " instructions; at most " +
                                              std::to_string(kMaxFilterInsns) + " fit");
    for (uint32_t i = 0; i < rows.Length(); i++) {
      Napi::Value row = rows.Get(i);
      if (!row.IsArray() || row.As<Napi::Array>().Length() != 4)
        throw CodedError(env, "INVALID_ARGUMENT", "config.filterProgram rows must be [code, jt, jf, k]");
      Napi::Array r = row.As<Napi::Array>();
      sock_filter insn;
      insn.code = static_cast<uint16_t>(r.Get(0u).As<Napi::Number>().Uint32Value());
      insn.jt = static_cast<uint8_t>(r.Get(1u).As<Napi::Number>().Uint32Value());
      insn.jf = static_cast<uint8_t>(r.Get(2u).As<Napi::Number>().Uint32Value());
      insn.k = r.Get(3u).As<Napi::Number>().Uint32Value();
      config.filter.push_back(insn);
    }
  }
  Napi::Value mode = obj.Get("mode");
  std::string mode_name = mode.IsString() ? mode.As<Napi::String>().Utf8Value() : "events";
  if (mode_name == "events") config.mode = BN_MODE_EVENTS;
  else if (mode_name == "packets") config.mode = BN_MODE_PACKETS;
  else if (mode_name == "top") config.mode = BN_MODE_TOP;
  else throw CodedError(env, "INVALID_ARGUMENT", "config.mode must be 'events', 'packets' or 'top'");
  config.sample_every = RequireUint(env, obj, "sampleEvery", false, 1);
  if (config.sample_every == 0) throw CodedError(env, "INVALID_ARGUMENT", "config.sampleEvery must be at least 1");
  config.snaplen = RequireUint(env, obj, "snaplen", false, 0);
  if (config.snaplen > BN_SNAP_MAX)
    throw CodedError(env, "INVALID_ARGUMENT", "config.snaplen must be at most " + std::to_string(BN_SNAP_MAX));
  Napi::Value trace_fd = obj.Get("traceFd");
  if (!trace_fd.IsUndefined() && (!trace_fd.IsNumber() || trace_fd.As<Napi::Number>().Int32Value() < 0))
    throw CodedError(env, "INVALID_ARGUMENT", "config.traceFd must be an open file descriptor");
  if (trace_fd.IsNumber()) config.trace_fd = trace_fd.As<Napi::Number>().Int32Value();
  config.max_packets = RequireUint(env, obj, "maxPackets", false, 0);
  Napi::Value deliver = obj.Get("deliverBatches");
  if (!deliver.IsUndefined() && !deliver.IsBoolean())
    throw CodedError(env, "INVALID_ARGUMENT", "config.deliverBatches must be a boolean");
  if (deliver.IsBoolean()) config.deliver_batches = deliver.As<Napi::Boolean>().Value();
  Napi::Value floor = obj.Get("floor");
  if (!floor.IsUndefined() && !floor.IsBoolean()) throw CodedError(env, "INVALID_ARGUMENT", "config.floor must be a boolean");
  config.floor = floor.IsBoolean() && floor.As<Napi::Boolean>().Value();
  config.mark_value = RequireUint(env, obj, "markValue", false, 0);
  config.mark_mask = RequireUint(env, obj, "markMask", false, 0);

  Napi::Value watched = obj.Get("watchedIfindexes");
  if (!watched.IsArray()) throw CodedError(env, "INVALID_ARGUMENT", "config.watchedIfindexes must be an array");
  Napi::Array watched_list = watched.As<Napi::Array>();
  for (uint32_t i = 0; i < watched_list.Length(); i++) {
    Napi::Value v = watched_list.Get(i);
    if (!v.IsNumber()) throw CodedError(env, "INVALID_ARGUMENT", "config.watchedIfindexes must hold numbers");
    config.watched_ifindexes.push_back(v.As<Napi::Number>().Uint32Value());
  }

  config.netfilter = NetfilterList(env, obj.Get("netfilter"), "config.netfilter");
  return config;
}

}  // namespace

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

static std::vector<uint32_t> IfindexList(Napi::Env env, const Napi::Value& v, const char* what) {
  if (!v.IsArray()) throw CodedError(env, "INVALID_ARGUMENT", std::string(what) + " must be an array of ifindexes");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<uint32_t> out;
  for (uint32_t i = 0; i < a.Length(); i++) {
    if (!a.Get(i).IsNumber()) throw CodedError(env, "INVALID_ARGUMENT", std::string(what) + " must hold numbers");
    out.push_back(a.Get(i).As<Napi::Number>().Uint32Value());
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

// Reader thread.
void TraceSession::Run(TracerConfig config) {
  TraceFileWriter file;
  if (config.trace_fd >= 0) {
    std::string why = file.Adopt(config.trace_fd);
    if (!why.empty()) {
      Send(new Message{Message::kError, {}, {"TRACE_FILE", why}});
      tsfn_.Release();
      return;
    }
  }
  uint32_t mode = config.mode;
  bool deliver = config.deliver_batches;
  uint64_t config_max_packets = config.max_packets;
  Tracer tracer(std::move(config));
  TraceError error;
  if (!tracer.Start(&error)) {
    Send(new Message{Message::kError, {}, error});
    tsfn_.Release();
    return;
  }
  {
    std::lock_guard<std::mutex> lock(tracer_mutex_);
    tracer_ = &tracer;
  }
  Message* started = new Message{Message::kStarted, {}, {}};
  started->notices = tracer.notices;
  Send(started);

  BatchEncoder encoder;
  bool recording = file.is_open();
  std::unordered_set<uint64_t> addresses;
  // --count N: exactly the first N packets whose first hop was seen, every hop of them.
  uint64_t max_packets = config_max_packets;
  std::unordered_set<uint64_t> admitted;
  auto append = [&](const bn_event& e, const bn_snap* snap, uint64_t signature) {
    if (max_packets) {
      if (e.seq == 0 && admitted.size() < max_packets) admitted.insert(e.packet_id);
      if (!admitted.count(e.packet_id)) return;
    }
    encoder.Append(e, snap, signature);
    if (e.seq == 0) packets_++;
    if (recording && e.aux && e.kind != BN_EV_NF_TABLE && e.kind != BN_EV_NF_HOOK_ENTER &&
        addresses.insert(e.aux).second) {
      std::lock_guard<std::mutex> lock(frames_mutex_);
      new_addresses_.push_back(e.aux);
    }
  };
  // Records arrive when packets end, so a flood's copies come before the packet
  // they were copied from: unfolded hops are put back in time order per batch,
  // as events mode delivers them.
  struct UnfoldedHop {
    bn_event event;
    int snap;  // index into snaps, or -1
    uint64_t signature;
  };
  std::vector<UnfoldedHop> unfolded;
  std::vector<bn_snap> snaps;
  auto keep_hop = [&](const bn_event& e, const bn_snap* snap, uint64_t signature) {
    int index = -1;
    if (snap) {
      index = static_cast<int>(snaps.size());
      snaps.push_back(*snap);
    }
    unfolded.push_back({e, index, signature});
  };
  auto encode_unfolded = [&]() {
    std::stable_sort(unfolded.begin(), unfolded.end(),
                     [](const UnfoldedHop& a, const UnfoldedHop& b) { return a.event.ts < b.event.ts; });
    for (const UnfoldedHop& h : unfolded) append(h.event, h.snap >= 0 ? &snaps[h.snap] : nullptr, h.signature);
    unfolded.clear();
    snaps.clear();
  };
  tracer.on_event = [&](const void* data, size_t size) {
    if (mode == BN_MODE_EVENTS) {
      if (size < sizeof(bn_event)) return 0;
      const bn_event* e = static_cast<const bn_event*>(data);
      const bn_snap* snap = e->has_snap && size >= sizeof(bn_event) + sizeof(bn_snap)
                                ? reinterpret_cast<const bn_snap*>(e + 1)
                                : nullptr;
      append(*e, snap, 0);
      return encoder.event_count() >= kMaxEventsPerBatch ? kBatchFull : 0;
    }
    UnfoldRecord(data, size, keep_hop);
    return unfolded.size() >= kMaxEventsPerBatch ? kBatchFull : 0;
  };

  // Each packet that lost events says how many, as an event of its own (BN_EV_LOST); not
  // counted as events (the kernel's).
  size_t loss_reports = 0;
  auto append_packet_losses = [&]() {
    if (mode != BN_MODE_EVENTS) return;
    timespec now_ts;
    clock_gettime(CLOCK_MONOTONIC, &now_ts);
    for (const auto& [packet_id, count] : tracer.TakePacketLosses()) {
      bn_event e = {};
      e.kind = BN_EV_LOST;
      e.packet_id = packet_id;
      e.seq = UINT16_MAX;
      e.aux = count;
      e.ts = static_cast<uint64_t>(now_ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(now_ts.tv_nsec);
      size_t before = encoder.event_count();
      append(e, nullptr, 0);
      loss_reports += encoder.event_count() - before;
    }
  };
  uint64_t sequence = 0, lost = 0;
  bool write_failed = false;
  // One batch: to the trace file when recording, else to JS.
  auto flush = [&](bool lost_changed) {
    encode_unfolded();
    if (encoder.event_count() == 0 && !lost_changed) return;
    events_ += encoder.event_count() - loss_reports;
    loss_reports = 0;
    batches_++;
    std::vector<uint8_t> batch = encoder.Finish(lost, sequence++);
    if (recording && !write_failed) WriteToFile(file, batch, lost_changed ? lost : UINT64_MAX, &write_failed);
    if (deliver) Send(new Message{Message::kBatch, std::move(batch), {}});
  };

  auto lost_read_at = std::chrono::steady_clock::now();
  while (!stopping_ && !write_failed) {
    int rc = 0;
    if (paused_) std::this_thread::sleep_for(std::chrono::milliseconds(kPollTimeoutMs));
    else rc = tracer.Poll(kPollTimeoutMs);
    if (rc < 0 && rc != -EINTR && rc != kBatchFull) {
      Send(new Message{Message::kError, {}, {"RINGBUF_POLL", "reading the ring buffer failed: " + ErrnoText(rc)}});
      break;
    }
    auto now = std::chrono::steady_clock::now();
    bool lost_changed = false;
    if (rc == 0 || now - lost_read_at >= kLostReadInterval) {
      uint64_t total = RecordLost(tracer.LostEventsPerCpu());
      lost_changed = total != lost;
      lost = total;
      lost_read_at = now;
      if (lost_changed) append_packet_losses();
    }
    bool frames_waiting;
    {
      std::lock_guard<std::mutex> lock(frames_mutex_);
      frames_waiting = !pending_frames_.empty();
    }
    if (recording && frames_waiting && encoder.event_count() == 0 && unfolded.empty()) {
      flush(true);  // an empty batch carries the frames out
    } else {
      flush(lost_changed);
    }
    // After the frames (a trace file names the new probes before their first event).
    std::vector<std::vector<NetfilterAttachment>> moves;
    {
      std::lock_guard<std::mutex> lock(frames_mutex_);
      if (!recording || pending_frames_.empty()) moves.swap(pending_netfilter_);
    }
    for (const auto& wanted : moves) {
      TraceError why;
      tracer.SetNetfilter(wanted, &why);
      Send(new Message{Message::kNetfilterMoved, {}, why});
    }
  }
  // Detach, then drain what the kernel already handed over and the packets
  // still being assembled, so nothing traced is lost.
  tracer.Detach();
  while (tracer.Poll(0) == kBatchFull) flush(false);
  tracer.DrainAssembling();
  lost = RecordLost(tracer.LostEventsPerCpu());
  append_packet_losses();
  flush(true);
  {
    std::lock_guard<std::mutex> lock(tracer_mutex_);
    tracer_ = nullptr;
  }
  tracer.Destroy();
  file.Close();
  {
    // Files queued for a rotation that never came (a write failed): ours to close.
    std::lock_guard<std::mutex> lock(frames_mutex_);
    for (const PendingFrame& f : pending_frames_)
      if (f.next_fd >= 0) close(f.next_fd);
    pending_frames_.clear();
  }
  tsfn_.Release();
}

// Reader thread: a batch, then the loss counters when they changed (lost !=
// UINT64_MAX), then the frames JS queued (symbol tables).
void TraceSession::WriteToFile(TraceFileWriter& file, const std::vector<uint8_t>& batch, uint64_t lost, bool* failed) {
  bool ok = file.WriteFrame(kFrameBatch, batch);
  if (ok && lost != UINT64_MAX) {
    auto now = std::chrono::system_clock::now().time_since_epoch();
    uint64_t now_ns = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(now).count());
    ok = file.WriteFrame(kFrameLoss, TraceFileWriter::LossCounters(lost, LostPerCpu(), now_ns));
  }
  std::vector<PendingFrame> frames;
  {
    std::lock_guard<std::mutex> lock(frames_mutex_);
    frames.swap(pending_frames_);
  }
  for (auto& f : frames) {
    if (f.next_fd >= 0) {
      // A failed write still moves on: the new file's fd is ours to close either way.
      file.Switch(f.next_fd);
      f.next_fd = -1;
    } else if (f.prefixed) {
      ok = ok && file.WriteRaw(f.bytes);
    } else {
      ok = ok && file.WriteEncodedFrame(f.bytes);
    }
  }
  bytes_written_ = file.bytes_written();
  if (!ok) {
    *failed = true;
    Send(new Message{Message::kError, {}, {"TRACE_FILE", "writing the trace file failed: " + ErrnoText(-file.last_errno())}});
  }
}

std::vector<uint64_t> TraceSession::LostPerCpu() const {
  std::lock_guard<std::mutex> lock(lost_mutex_);
  return lost_per_cpu_;
}

// Reader thread: keeps the per-CPU counts for stats(), returns their sum.
uint64_t TraceSession::RecordLost(std::vector<uint64_t> per_cpu) {
  uint64_t total = 0;
  for (uint64_t n : per_cpu) total += n;
  std::lock_guard<std::mutex> lock(lost_mutex_);
  lost_per_cpu_ = std::move(per_cpu);
  lost_ = total;
  return total;
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

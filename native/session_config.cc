#include "session_config.h"

#include "js_errors.h"
#include "packet_filter.h"

static uint32_t RequireUint(Napi::Env env, const Napi::Object& obj, const char* key, bool required = true,
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

std::vector<uint32_t> IfindexList(Napi::Env env, const Napi::Value& v, const char* what) {
  if (!v.IsArray()) throw CodedError(env, "INVALID_ARGUMENT", std::string(what) + " must be an array of ifindexes");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<uint32_t> out;
  for (uint32_t i = 0; i < a.Length(); i++) {
    if (!a.Get(i).IsNumber()) throw CodedError(env, "INVALID_ARGUMENT", std::string(what) + " must hold numbers");
    out.push_back(a.Get(i).As<Napi::Number>().Uint32Value());
  }
  return out;
}

// The Node-API surface only: argument checks and conversions. The work lives in
// trace_session (live tracing) and kernel_probe (facts for doctor).
#include <napi.h>
#include <linux/if_bridge.h>
#include <linux/neighbour.h>
#include <malloc.h>
#include <sys/socket.h>

#include <cstring>

#include "encoder.h"
#include "event_layout.h"
#include "hook_table.h"
#include "js_errors.h"

#include "kernel_probe.h"
#include "link_monitor.h"
#include "netns_links.h"
#include "packet_filter.h"
#include "rule_tracer.h"
#include "trace_session.h"

namespace {

Napi::Value ProbeKernelJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array out = Napi::Array::New(env);
  uint32_t i = 0;
  for (const ProbeResult& r : ProbeKernel()) {
    Napi::Object item = Napi::Object::New(env);
    item.Set("name", r.name);
    item.Set("ok", r.ok);
    item.Set("detail", r.detail);
    out.Set(i++, item);
  }
  return out;
}

Napi::Value DropReasonsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<std::string> names = KernelDropReasons();
  Napi::Array out = Napi::Array::New(env, names.size());
  for (uint32_t i = 0; i < names.size(); i++) out.Set(i, names[i]);
  return out;
}

// encodeBatch(rawEvents, lost, sequence): the reader thread's encoder applied
// to raw kernel event structs; for the round-trip tests and the benchmark.
Napi::Value EncodeBatchJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsBuffer() || !info[1].IsNumber() || !info[2].IsNumber())
    throw Napi::TypeError::New(env, "encodeBatch(rawEvents: Buffer, lost: number, sequence: number)");
  Napi::Buffer<uint8_t> raw = info[0].As<Napi::Buffer<uint8_t>>();
  if (raw.Length() % sizeof(bn_event) != 0)
    throw Napi::RangeError::New(env, "rawEvents length is not a multiple of " + std::to_string(sizeof(bn_event)));
  BatchEncoder encoder;
  for (size_t off = 0; off < raw.Length(); off += sizeof(bn_event)) {
    bn_event event;
    memcpy(&event, raw.Data() + off, sizeof(event));
    encoder.Append(event);
  }
  std::vector<uint8_t> bytes = encoder.Finish(static_cast<uint64_t>(info[1].As<Napi::Number>().Int64Value()),
                                              static_cast<uint64_t>(info[2].As<Napi::Number>().Int64Value()));
  return Napi::Buffer<uint8_t>::Copy(env, bytes.data(), bytes.size());
}

// compileFilter(expr): the classic BPF program libpcap makes of it, as [code, jt, jf, k]
// rows, or a BAD_FILTER error with libpcap's message. Compiled once: the CLI checks it with
// this before loading anything, the session loads these rows, replay runs them in JS.
Napi::Value CompileFilterJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "compileFilter(expression: string)");
  std::vector<sock_filter> insns;
  std::string message;
  if (!CompilePacketFilter(info[0].As<Napi::String>().Utf8Value(), &insns, &message))
    throw CodedError(env, "BAD_FILTER", message);
  Napi::Array out = Napi::Array::New(env, insns.size());
  for (uint32_t i = 0; i < insns.size(); i++) {
    Napi::Array row = Napi::Array::New(env, 4);
    row.Set(0u, Napi::Number::New(env, insns[i].code));
    row.Set(1u, Napi::Number::New(env, insns[i].jt));
    row.Set(2u, Napi::Number::New(env, insns[i].jf));
    row.Set(3u, Napi::Number::New(env, insns[i].k));
    out.Set(i, row);
  }
  return out;
}

// netnsIds(fromPath, targets): the nsid the netns at fromPath ("" = ours)
// gives each netns file in targets, -1 where none.
Napi::Value NetnsIdsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsArray())
    throw Napi::TypeError::New(env, "netnsIds(fromPath: string, targets: string[])");
  Napi::Array list = info[1].As<Napi::Array>();
  std::vector<std::string> targets;
  for (uint32_t i = 0; i < list.Length(); i++) {
    if (!list.Get(i).IsString()) throw Napi::TypeError::New(env, "netnsIds: targets must be strings");
    targets.push_back(list.Get(i).As<Napi::String>().Utf8Value());
  }
  std::vector<int32_t> ids;
  std::string error;
  if (!NetnsIds(info[0].As<Napi::String>().Utf8Value(), targets, &ids, &error)) throw CodedError(env, "NETNS", error);
  Napi::Array out = Napi::Array::New(env, ids.size());
  for (uint32_t i = 0; i < ids.size(); i++) out.Set(i, ids[i]);
  return out;
}

// linksIn(path): [{ifindex, name}] of the netns at path.
Napi::Value LinksInJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "linksIn(path: string)");
  std::vector<NamedLink> links;
  std::string error;
  if (!LinksIn(info[0].As<Napi::String>().Utf8Value(), &links, &error)) throw CodedError(env, "NETNS", error);
  Napi::Array out = Napi::Array::New(env, links.size());
  for (uint32_t i = 0; i < links.size(); i++) {
    Napi::Object l = Napi::Object::New(env);
    l.Set("ifindex", links[i].ifindex);
    l.Set("name", links[i].name);
    l.Set("kind", links[i].kind);
    if (links[i].master) l.Set("master", links[i].master);
    if (!links[i].mac.empty()) l.Set("mac", links[i].mac);
    if (links[i].link >= 0) l.Set("link", static_cast<double>(links[i].link));
    if (links[i].link_netnsid >= 0) l.Set("linkNetnsid", static_cast<double>(links[i].link_netnsid));
    out.Set(i, l);
  }
  return out;
}

// routesIn(path): the main table, as [{family: 4|6, dst: Buffer|null, dstLen, oif, gateway: Buffer|null}].
Napi::Value RoutesInJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "routesIn(path: string)");
  std::vector<MainRoute> routes;
  std::string error;
  if (!RoutesIn(info[0].As<Napi::String>().Utf8Value(), &routes, &error)) throw CodedError(env, "NETNS", error);
  Napi::Array out = Napi::Array::New(env, routes.size());
  for (uint32_t i = 0; i < routes.size(); i++) {
    const MainRoute& r = routes[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("family", r.family == AF_INET ? 4 : 6);
    o.Set("dst", r.dst.empty() ? env.Null() : Napi::Buffer<uint8_t>::Copy(env, r.dst.data(), r.dst.size()).As<Napi::Value>());
    o.Set("dstLen", r.dst_len);
    o.Set("oif", r.oif);
    o.Set("gateway", r.gateway.empty() ? env.Null() : Napi::Buffer<uint8_t>::Copy(env, r.gateway.data(), r.gateway.size()).As<Napi::Value>());
    out.Set(i, o);
  }
  return out;
}

namespace {

const char* OperstateName(uint8_t s) {
  static const char* const kNames[] = {"unknown", "notpresent", "down", "lowerlayerdown", "testing", "dormant", "up"};
  return s < sizeof(kNames) / sizeof(kNames[0]) ? kNames[s] : "unknown";
}

const char* StpStateName(uint8_t s) {
  static const char* const kNames[] = {"disabled", "listening", "learning", "forwarding", "blocking"};
  return s < sizeof(kNames) / sizeof(kNames[0]) ? kNames[s] : "unknown";
}

// The words `bridge -j fdb show` uses.
Napi::Array FdbFlags(Napi::Env env, uint8_t flags) {
  static const std::pair<uint8_t, const char*> kFlags[] = {
      {NTF_SELF, "self"},          {NTF_ROUTER, "router"}, {NTF_EXT_LEARNED, "extern_learn"},
      {NTF_OFFLOADED, "offload"},  {NTF_MASTER, "master"}, {NTF_STICKY, "sticky"}};
  Napi::Array out = Napi::Array::New(env);
  for (const auto& [bit, name] : kFlags)
    if (flags & bit) out.Set(out.Length(), name);
  return out;
}

const char* FdbState(uint16_t state) {
  if (state & NUD_PERMANENT) return "permanent";
  if (state & NUD_NOARP) return "static";
  if (state & NUD_STALE) return "stale";
  return nullptr;  // learned and reachable: iproute2 prints no state
}

}  // namespace

// bridgePortsIn(path): {ports: [{ifindex, operstate, state, hairpin, learning, flood,
// vlans: [{vlan, flags}]}], fdb: [{ifindex, mac, vlan?, flags, state?, master?}]}.
Napi::Value BridgePortsInJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "bridgePortsIn(path: string)");
  std::vector<BridgePortInfo> ports;
  std::vector<FdbEntry> fdb;
  std::string error;
  if (!BridgePortsIn(info[0].As<Napi::String>().Utf8Value(), &ports, &fdb, &error)) throw CodedError(env, "NETNS", error);
  Napi::Array jsPorts = Napi::Array::New(env, ports.size());
  for (uint32_t i = 0; i < ports.size(); i++) {
    const BridgePortInfo& p = ports[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("ifindex", p.ifindex);
    o.Set("operstate", OperstateName(p.operstate));
    o.Set("state", StpStateName(p.stp_state));
    o.Set("hairpin", p.hairpin);
    o.Set("learning", p.learning);
    o.Set("flood", p.flood);
    Napi::Array vlans = Napi::Array::New(env, p.vlans.size());
    for (uint32_t k = 0; k < p.vlans.size(); k++) {
      Napi::Object v = Napi::Object::New(env);
      v.Set("vlan", p.vlans[k].vid);
      Napi::Array flags = Napi::Array::New(env);
      if (p.vlans[k].flags & BRIDGE_VLAN_INFO_PVID) flags.Set(flags.Length(), "PVID");
      if (p.vlans[k].flags & BRIDGE_VLAN_INFO_UNTAGGED) flags.Set(flags.Length(), "Egress Untagged");
      v.Set("flags", flags);
      vlans.Set(k, v);
    }
    o.Set("vlans", vlans);
    jsPorts.Set(i, o);
  }
  Napi::Array jsFdb = Napi::Array::New(env, fdb.size());
  for (uint32_t i = 0; i < fdb.size(); i++) {
    const FdbEntry& e = fdb[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("ifindex", e.ifindex);
    o.Set("mac", e.mac);
    if (e.vlan >= 0) o.Set("vlan", e.vlan);
    o.Set("flags", FdbFlags(env, e.flags));
    if (const char* state = FdbState(e.state)) o.Set("state", state);
    if (e.master) o.Set("master", e.master);
    jsFdb.Set(i, o);
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("ports", jsPorts);
  out.Set("fdb", jsFdb);
  return out;
}

// readFileIn(path, file): a file read from inside the netns (a sysctl); throws NETNS when it cannot.
Napi::Value ReadFileInJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsString())
    throw Napi::TypeError::New(env, "readFileIn(path: string, file: string)");
  std::string contents, error;
  if (!ReadFileIn(info[0].As<Napi::String>().Utf8Value(), info[1].As<Napi::String>().Utf8Value(), &contents, &error))
    throw CodedError(env, "NETNS", error);
  return Napi::String::New(env, contents);
}

const char* OwnerName(uint8_t owner) {
  switch (owner) {
    case BN_OWNER_NFT_CHAIN: return "nft";
    case BN_OWNER_XT_TABLE: return "xt";
    case BN_OWNER_EBT_TABLE: return "ebt";
    case BN_OWNER_NAT_CORE: return "nat";
    case BN_OWNER_BPF_LINK: return "bpf";
    default: return "other";
  }
}

// hookTable(netnsPath): {entries: [{family, hook, index, priority, function, owner,
// natIndex, table, chain, type, tableFamily, policy, handle, chainPriority}], truncated}.
Napi::Value HookTableJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "hookTable(netnsPath: string)");
  HookTable table;
  std::string error;
  if (!ReadHookTable(info[0].As<Napi::String>().Utf8Value(), &table, &error)) throw CodedError(env, "HOOK_TABLE", error);
  Napi::Array entries = Napi::Array::New(env, table.entries.size());
  for (uint32_t i = 0; i < table.entries.size(); i++) {
    const bn_hook_entry& r = table.entries[i].raw;
    Napi::Object e = Napi::Object::New(env);
    e.Set("family", r.pf);
    e.Set("hook", r.hook);
    e.Set("index", r.index);
    e.Set("priority", r.priority);
    e.Set("function", table.entries[i].function);
    e.Set("owner", OwnerName(r.owner));
    e.Set("natIndex", r.nat_index);
    e.Set("table", std::string(r.table, strnlen(r.table, sizeof(r.table))));
    e.Set("chain", std::string(r.chain, strnlen(r.chain, sizeof(r.chain))));
    e.Set("type", std::string(r.type, strnlen(r.type, sizeof(r.type))));
    e.Set("tableFamily", r.table_family);
    e.Set("policy", r.policy);
    e.Set("handle", Napi::Number::New(env, static_cast<double>(r.handle)));
    e.Set("chainPriority", r.chain_priority);
    entries.Set(i, e);
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("entries", entries);
  out.Set("truncated", table.truncated);
  return out;
}

// Batches (the reader's, the rule tracer's, their copies into JS Buffers) are hundreds of KB,
// made and freed many times a second. glibc raises its mmap threshold past the first one freed,
// and from then on serves them from arenas that keep the freed memory: tens of MB of RSS in a
// flood. A fixed threshold (which also fixes the trim threshold) maps each and gives it back.
constexpr int kMmapThreshold = 128 << 10;

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  mallopt(M_MMAP_THRESHOLD, kMmapThreshold);
  exports.Set("hookTable", Napi::Function::New(env, HookTableJs));
  exports.Set("RuleTracer", RuleTracer::Define(env));
  exports.Set("LinkMonitor", LinkMonitor::Define(env));
  exports.Set("netnsIds", Napi::Function::New(env, NetnsIdsJs));
  exports.Set("linksIn", Napi::Function::New(env, LinksInJs));
  exports.Set("routesIn", Napi::Function::New(env, RoutesInJs));
  exports.Set("bridgePortsIn", Napi::Function::New(env, BridgePortsInJs));
  exports.Set("readFileIn", Napi::Function::New(env, ReadFileInJs));
  exports.Set("compileFilter", Napi::Function::New(env, CompileFilterJs));
  exports.Set("TraceSession", TraceSession::Define(env));
  exports.Set("probeKernel", Napi::Function::New(env, ProbeKernelJs));
  exports.Set("dropReasons", Napi::Function::New(env, DropReasonsJs));
  exports.Set("encodeBatch", Napi::Function::New(env, EncodeBatchJs));
  exports.Set("eventSize", Napi::Number::New(env, sizeof(bn_event)));
  exports.Set("eventLayout", EventLayout(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(bpftrace_net, Init)

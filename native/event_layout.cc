#include "event_layout.h"

#include <cstddef>

#include "events.h"

namespace {

void Field(Napi::Env env, Napi::Object fields, const char* name, size_t offset, size_t size) {
  Napi::Object f = Napi::Object::New(env);
  f.Set("offset", Napi::Number::New(env, static_cast<double>(offset)));
  f.Set("size", Napi::Number::New(env, static_cast<double>(size)));
  fields.Set(name, f);
}

#define EVENT_FIELD(js, member) Field(env, fields, js, offsetof(bn_event, member), sizeof(bn_event::member))
#define PACKET_FIELD(js, member) \
  Field(env, fields, js, offsetof(bn_event, pkt) + offsetof(bn_packet, member), sizeof(bn_packet::member))

}  // namespace

Napi::Object EventLayout(Napi::Env env) {
  Napi::Object layout = Napi::Object::New(env);
  layout.Set("size", Napi::Number::New(env, sizeof(bn_event)));
  Napi::Object fields = Napi::Object::New(env);
  EVENT_FIELD("ts", ts);
  EVENT_FIELD("packetId", packet_id);
  EVENT_FIELD("skb", skb);
  EVENT_FIELD("aux", aux);
  EVENT_FIELD("netns", netns);
  EVENT_FIELD("ifindex", ifindex);
  EVENT_FIELD("inIfindex", in_ifindex);
  EVENT_FIELD("outIfindex", out_ifindex);
  EVENT_FIELD("physinIfindex", physin_ifindex);
  EVENT_FIELD("physoutIfindex", physout_ifindex);
  EVENT_FIELD("reason", reason);
  EVENT_FIELD("mark", mark);
  EVENT_FIELD("verdict", verdict);
  EVENT_FIELD("seq", seq);
  EVENT_FIELD("cpu", cpu);
  EVENT_FIELD("kind", kind);
  EVENT_FIELD("nfFamily", nf_family);
  EVENT_FIELD("nfHook", nf_hook);
  EVENT_FIELD("nfSlot", nf_slot);
  EVENT_FIELD("detail", detail);
  EVENT_FIELD("table", table);
  EVENT_FIELD("chain", chain);
  EVENT_FIELD("priorities", priorities);
  PACKET_FIELD("saddr", saddr);
  PACKET_FIELD("daddr", daddr);
  PACKET_FIELD("smac", smac);
  PACKET_FIELD("dmac", dmac);
  PACKET_FIELD("ethertype", ethertype);
  PACKET_FIELD("ipLen", ip_len);
  PACKET_FIELD("sport", sport);
  PACKET_FIELD("dport", dport);
  PACKET_FIELD("ipVersion", ip_version);
  PACKET_FIELD("l4proto", l4proto);
  PACKET_FIELD("ttl", ttl);
  PACKET_FIELD("icmpType", icmp_type);
  PACKET_FIELD("icmpCode", icmp_code);
  PACKET_FIELD("hasMac", has_mac);
  PACKET_FIELD("ctState", ct_state);
  PACKET_FIELD("tcpFlags", tcp_flags);
  PACKET_FIELD("vlanProto", vlan_proto);
  PACKET_FIELD("vlanTci", vlan_tci);
  layout.Set("fields", fields);

  Napi::Object bridge = Napi::Object::New(env);
  bridge.Set("forward", Napi::Number::New(env, BN_BR_FORWARD));
  bridge.Set("flood", Napi::Number::New(env, BN_BR_FLOOD));
  bridge.Set("local", Napi::Number::New(env, BN_BR_LOCAL));
  layout.Set("bridgeDecision", bridge);
  Napi::Object route = Napi::Object::New(env);
  route.Set("forward", Napi::Number::New(env, BN_ROUTE_FORWARD));
  route.Set("local", Napi::Number::New(env, BN_ROUTE_LOCAL));
  layout.Set("routeDecision", route);
  return layout;
}

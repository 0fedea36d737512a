#include "records.h"

#include <cstring>

bool RecordComplete(const void* data, size_t size) {
  constexpr size_t kFixed = offsetof(bn_record, hops);
  if (size < kFixed) return false;
  const bn_record* r = static_cast<const bn_record*>(data);
  return r->n_hops <= BN_MAX_HOPS && kFixed + r->n_hops * sizeof(bn_hop) <= size && r->n_headers <= BN_MAX_HEADERS;
}

bool UnfoldRecord(const void* data, size_t size, const HopSink& sink) {
  if (!RecordComplete(data, size)) return false;
  // The kernel sends only the hops in use; copy into a whole record first.
  bn_record r;
  memcpy(&r, data, size < sizeof(r) ? size : sizeof(r));
  uint64_t signature = (r.flags & BN_REC_EXEMPLAR) ? r.signature : 0;
  for (uint32_t i = 0; i < r.n_hops; i++) {
    const bn_hop& hop = r.hops[i];
    bn_event e;
    memset(&e, 0, sizeof(e));
    e.ts = r.start_ts + hop.ts_delta;
    e.packet_id = r.packet_id;
    e.skb = r.skb;
    e.netns = r.netns;
    e.seq = static_cast<uint16_t>(r.first_seq + i);
    e.kind = hop.kind;
    e.cpu = hop.cpu;
    e.ifindex = hop.ifindex;
    e.in_ifindex = hop.in_ifindex;
    e.out_ifindex = hop.out_ifindex;
    e.physin_ifindex = hop.physin_ifindex;
    e.physout_ifindex = hop.physout_ifindex;
    e.verdict = hop.verdict;
    e.reason = hop.reason;
    e.nf_family = hop.nf_family;
    e.nf_hook = hop.nf_hook;
    e.nf_slot = hop.nf_slot;
    e.detail = hop.detail;
    const bn_snap* snap = nullptr;
    if (r.n_headers) {
      const bn_header& h = r.headers[hop.header < r.n_headers ? hop.header : r.n_headers - 1];
      e.pkt = h.pkt;
      e.mark = h.mark;
      if (h.snap.wire_len) snap = &h.snap;
    }
    e.pkt.ct_state = hop.ct_state;
    if (hop.kind == BN_EV_NF_TABLE || hop.kind == BN_EV_NF_HOOK_ENTER) {
      if (hop.aux < BN_MAX_NAMES) memcpy(e.table, r.names[hop.aux], BN_NAME_SIZE);
    } else {
      e.aux = hop.aux;
    }
    sink(e, snap, signature);
  }
  return true;
}
static_assert(offsetof(bn_event, chain) == offsetof(bn_event, table) + 16, "names span table and chain");

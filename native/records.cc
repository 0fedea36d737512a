#include "records.h"

#include <cstring>

namespace {

// Reads `n` bytes at `*off` of the wire record, if there are that many.
bool Take(const uint8_t* data, size_t size, size_t* off, void* to, size_t n) {
  if (n > size - *off) return false;
  memcpy(to, data + *off, n);
  *off += n;
  return true;
}

}  // namespace

bool ExpandRecord(const void* data, size_t size, bn_record* r) {
  const uint8_t* bytes = static_cast<const uint8_t*>(data);
  size_t off = 0;
  if (!Take(bytes, size, &off, r, BN_WIRE_RECORD)) return false;
  if (r->n_hops > BN_MAX_HOPS || r->n_headers > BN_MAX_HEADERS || r->n_names > BN_MAX_NAMES) return false;
  for (uint32_t i = 0; i < r->n_headers; i++) {
    bn_header& h = r->headers[i];
    if (!Take(bytes, size, &off, &h, BN_WIRE_HEADER) || h.snap.len > BN_SNAP_MAX) return false;
    if (!Take(bytes, size, &off, h.snap.bytes, h.snap.len)) return false;
    size_t pad = BN_WIRE_PAD8(h.snap.len) - h.snap.len;
    if (pad > size - off) return false;
    off += pad;
  }
  return Take(bytes, size, &off, r->names, size_t{r->n_names} * BN_NAME_SIZE) &&
         Take(bytes, size, &off, r->hops, size_t{r->n_hops} * sizeof(bn_hop));
}

void CompactRecord(const bn_record& r, std::vector<uint8_t>* out) {
  auto put = [out](const void* from, size_t n) {
    const uint8_t* p = static_cast<const uint8_t*>(from);
    out->insert(out->end(), p, p + n);
  };
  uint32_t headers = r.n_headers < BN_MAX_HEADERS ? r.n_headers : BN_MAX_HEADERS;
  uint32_t names = r.n_names < BN_MAX_NAMES ? r.n_names : BN_MAX_NAMES;
  uint32_t hops = r.n_hops < BN_MAX_HOPS ? r.n_hops : BN_MAX_HOPS;
  out->clear();
  put(&r, BN_WIRE_RECORD);
  for (uint32_t i = 0; i < headers; i++) {
    uint32_t len = r.headers[i].snap.len < BN_SNAP_MAX ? r.headers[i].snap.len : BN_SNAP_MAX;
    put(&r.headers[i], BN_WIRE_HEADER + len);
    out->resize(out->size() + BN_WIRE_PAD8(len) - len);
  }
  put(r.names, size_t{names} * BN_NAME_SIZE);
  put(r.hops, size_t{hops} * sizeof(bn_hop));
  // The counts as sent, should the slot have held more than fits.
  bn_record* head = reinterpret_cast<bn_record*>(out->data());
  head->n_headers = static_cast<uint8_t>(headers);
  head->n_names = static_cast<uint8_t>(names);
  head->n_hops = static_cast<uint8_t>(hops);
}

void UnfoldRecord(const bn_record& r, const HopSink& sink) {
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
}
static_assert(offsetof(bn_event, chain) == offsetof(bn_event, table) + 16, "names span table and chain");

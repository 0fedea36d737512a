#include "packet_filter.h"

#include <pcap/pcap.h>

bool CompilePacketFilter(const std::string& expr, std::vector<sock_filter>* out, std::string* error) {
  pcap_t* dead = pcap_open_dead(DLT_EN10MB, 262144);
  if (!dead) {
    *error = "libpcap could not open a compiler handle";
    return false;
  }
  // Zeroed: on a syntax error pcap_compile leaves it untouched, and freeing what the
  // stack happened to hold crashed.
  bpf_program prog = {};
  bool ok = pcap_compile(dead, &prog, expr.c_str(), 1, PCAP_NETMASK_UNKNOWN) == 0;
  if (!ok) {
    *error = pcap_geterr(dead);
  } else if (prog.bf_len > kMaxFilterInsns) {
    *error = "the filter compiles to " + std::to_string(prog.bf_len) + " instructions; at most " +
             std::to_string(kMaxFilterInsns) + " run in the kernel";
    ok = false;
  } else {
    out->clear();
    for (u_int i = 0; i < prog.bf_len; i++) {
      const bpf_insn& in = prog.bf_insns[i];
      out->push_back(sock_filter{in.code, in.jt, in.jf, in.k});
    }
  }
  if (prog.bf_insns) pcap_freecode(&prog);
  pcap_close(dead);
  return ok;
}

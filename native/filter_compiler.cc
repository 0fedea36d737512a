#include "filter_compiler.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <memory>

extern "C" {
#include "events.h"
}

namespace {

// ---- reading the layout from BTF --------------------------------------------

// The byte offset of `name` in struct type `id`, looking into anonymous members; its type in *type.
bool MemberOffset(const btf* b, uint32_t id, const char* name, uint32_t* offset, uint32_t* type) {
  const btf_type* t = btf__type_by_id(b, id);
  if (!t || (!btf_is_struct(t) && !btf_is_union(t))) return false;
  const btf_member* m = btf_members(t);
  for (uint16_t i = 0; i < btf_vlen(t); i++, m++) {
    uint32_t bits = btf_member_bit_offset(t, i);
    if (bits % 8) continue;
    const char* member = btf__name_by_offset(b, m->name_off);
    if (member && *member) {
      if (strcmp(member, name) == 0) {
        *offset = bits / 8;
        *type = m->type;
        return true;
      }
      continue;
    }
    uint32_t inner = 0;
    int resolved = btf__resolve_type(b, m->type);
    if (resolved > 0 && MemberOffset(b, static_cast<uint32_t>(resolved), name, &inner, type)) {
      *offset = bits / 8 + inner;
      return true;
    }
  }
  return false;
}

// A path of members ("nd_net", "net") from struct `outer`.
bool PathOffset(const btf* b, const char* outer, std::initializer_list<const char*> path, uint32_t* offset,
                std::string* error) {
  int id = btf__find_by_name_kind(b, outer, BTF_KIND_STRUCT);
  if (id <= 0) {
    *error = std::string("no struct ") + outer + " in the kernel's BTF";
    return false;
  }
  uint32_t at = 0, type = static_cast<uint32_t>(id);
  for (const char* name : path) {
    uint32_t off = 0, member_type = 0;
    int resolved = btf__resolve_type(b, type);
    if (resolved <= 0 || !MemberOffset(b, static_cast<uint32_t>(resolved), name, &off, &member_type)) {
      *error = std::string("no ") + name + " in struct " + outer + " of the kernel's BTF";
      return false;
    }
    at += off;
    type = member_type;
  }
  *offset = at;
  return true;
}

// ---- instructions ------------------------------------------------------------

bpf_insn Insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  bpf_insn i = {};
  i.code = code;
  i.dst_reg = dst;
  i.src_reg = src;
  i.off = off;
  i.imm = imm;
  return i;
}

bpf_insn Mov64Reg(uint8_t dst, uint8_t src) { return Insn(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0); }
bpf_insn Mov64Imm(uint8_t dst, int32_t imm) { return Insn(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm); }
bpf_insn Mov32Imm(uint8_t dst, int32_t imm) { return Insn(BPF_ALU | BPF_MOV | BPF_K, dst, 0, 0, imm); }
bpf_insn Mov32Reg(uint8_t dst, uint8_t src) { return Insn(BPF_ALU | BPF_MOV | BPF_X, dst, src, 0, 0); }
bpf_insn Add64Imm(uint8_t dst, int32_t imm) { return Insn(BPF_ALU64 | BPF_ADD | BPF_K, dst, 0, 0, imm); }
bpf_insn Add64Reg(uint8_t dst, uint8_t src) { return Insn(BPF_ALU64 | BPF_ADD | BPF_X, dst, src, 0, 0); }
bpf_insn Alu32Imm(uint8_t op, uint8_t dst, int32_t imm) { return Insn(BPF_ALU | op | BPF_K, dst, 0, 0, imm); }
bpf_insn Alu32Reg(uint8_t op, uint8_t dst, uint8_t src) { return Insn(BPF_ALU | op | BPF_X, dst, src, 0, 0); }
bpf_insn Load(uint8_t size, uint8_t dst, uint8_t src, int16_t off) { return Insn(BPF_LDX | size | BPF_MEM, dst, src, off, 0); }
bpf_insn Store(uint8_t size, uint8_t dst, int16_t off, uint8_t src) { return Insn(BPF_STX | size | BPF_MEM, dst, src, off, 0); }
bpf_insn StoreImm(uint8_t size, uint8_t dst, int16_t off, int32_t imm) { return Insn(BPF_ST | size | BPF_MEM, dst, 0, off, imm); }
bpf_insn Call(int32_t helper) { return Insn(BPF_JMP | BPF_CALL, 0, 0, 0, helper); }
bpf_insn Exit() { return Insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0); }

// Registers: r6 the skb, then the frame's length; r7 A; r8 X; r9 the verdict map value.
constexpr uint8_t kSkb = BPF_REG_6, kLen = BPF_REG_6, kA = BPF_REG_7, kX = BPF_REG_8, kV = BPF_REG_9;
constexpr int16_t kSkbAt = offsetof(bn_filter_verdict, skb);
constexpr int16_t kMatchedAt = offsetof(bn_filter_verdict, matched);
constexpr int16_t kPendingAt = offsetof(bn_filter_verdict, pending);
constexpr int16_t kMemAt = offsetof(bn_filter_verdict, mem);
constexpr int16_t kFrameAt = offsetof(bn_filter_verdict, frame);
constexpr uint32_t kEth = 14;
constexpr uint32_t kCopied = BN_FILTER_FRAME - kEth;  // bytes after the Ethernet header
static_assert(kFrameAt % 8 == 0, "the frame is zeroed a word at a time");

// The program under construction: jumps to labels resolved when it is done.
class Emitter {
 public:
  using Label = int;
  Label NewLabel() {
    labels_.push_back(-1);
    return static_cast<Label>(labels_.size() - 1);
  }
  void Bind(Label l) { labels_[l] = static_cast<int>(insns_.size()); }
  void Emit(const bpf_insn& i) { insns_.push_back(i); }
  // if (dst op imm) goto l; op a BPF_J* code, jmp32 for 32-bit compares.
  void JumpImm(uint8_t op, uint8_t dst, int32_t imm, Label l, bool jmp32 = false) {
    fixups_.push_back({insns_.size(), l});
    Emit(Insn((jmp32 ? BPF_JMP32 : BPF_JMP) | op | BPF_K, dst, 0, 0, imm));
  }
  void JumpReg(uint8_t op, uint8_t dst, uint8_t src, Label l, bool jmp32 = false) {
    fixups_.push_back({insns_.size(), l});
    Emit(Insn((jmp32 ? BPF_JMP32 : BPF_JMP) | op | BPF_X, dst, src, 0, 0));
  }
  void Goto(Label l) {
    fixups_.push_back({insns_.size(), l});
    Emit(Insn(BPF_JMP | BPF_JA, 0, 0, 0, 0));
  }
  void LoadMapFd(uint8_t dst, int fd) {
    Emit(Insn(BPF_LD | BPF_DW | BPF_IMM, dst, BPF_PSEUDO_MAP_FD, 0, fd));
    Emit(Insn(0, 0, 0, 0, 0));
  }
  bool Referenced(Label l) const {
    for (const Fixup& f : fixups_)
      if (f.label == l) return true;
    return false;
  }
  // Empty if a label was never bound or a jump does not fit.
  std::vector<bpf_insn> Finish() {
    for (const Fixup& f : fixups_) {
      int to = labels_[f.label];
      long off = static_cast<long>(to) - static_cast<long>(f.at) - 1;
      if (to < 0 || off < INT16_MIN || off > INT16_MAX) return {};
      insns_[f.at].off = static_cast<int16_t>(off);
    }
    return insns_;
  }

 private:
  struct Fixup {
    size_t at;
    Label label;
  };
  std::vector<bpf_insn> insns_;
  std::vector<int> labels_;
  std::vector<Fixup> fixups_;
};

// classic BPF (linux/filter.h)
uint16_t Class(uint16_t c) { return c & 0x07; }
uint16_t Size(uint16_t c) { return c & 0x18; }
uint16_t Mode(uint16_t c) { return c & 0xe0; }
uint16_t Op(uint16_t c) { return c & 0xf0; }
bool SrcX(uint16_t c) { return (c & 0x08) != 0; }

// The classic instructions control can reach as compiled: the verifier refuses code
// nothing reaches, and a load past the bytes copied (or past 64 KiB), a division by a
// constant 0 and a return each end the flow here. Classic jumps only go forward.
std::vector<bool> Reachable(const std::vector<sock_filter>& filter) {
  std::vector<bool> reach(filter.size() + 1, false);
  if (!filter.empty()) reach[0] = true;
  for (size_t pc = 0; pc < filter.size(); pc++) {
    if (!reach[pc]) continue;
    const sock_filter& f = filter[pc];
    uint16_t code = f.code;
    auto to = [&](size_t next) {
      if (next <= filter.size()) reach[next] = true;
    };
    switch (Class(code)) {
      case BPF_LD:
      case BPF_LDX: {
        uint32_t size = Mode(code) == BPF_MSH ? 1 : Size(code) == BPF_W ? 4 : Size(code) == BPF_H ? 2 : 1;
        bool fixed = Mode(code) == BPF_ABS || Mode(code) == BPF_MSH;
        if (!fixed || (f.k <= 0xffff && f.k + size <= BN_FILTER_FRAME)) to(pc + 1);
        break;
      }
      case BPF_ALU:
        if (SrcX(code) || (Op(code) != BPF_DIV && Op(code) != BPF_MOD) || f.k != 0) to(pc + 1);
        break;
      case BPF_JMP:
        if (Op(code) == BPF_JA) {
          to(pc + 1 + f.k);
        } else {
          to(pc + 1 + f.jt);
          to(pc + 1 + f.jf);
        }
        break;
      case BPF_RET:
        break;
      default:
        to(pc + 1);
    }
  }
  return reach;
}

}  // namespace

bool ReadSkbLayout(const btf* b, SkbLayout* l, std::string* error) {
  return PathOffset(b, "sk_buff", {"dev"}, &l->skb_dev, error) && PathOffset(b, "sk_buff", {"head"}, &l->skb_head, error) &&
         PathOffset(b, "sk_buff", {"data"}, &l->skb_data, error) && PathOffset(b, "sk_buff", {"len"}, &l->skb_len, error) &&
         PathOffset(b, "sk_buff", {"mac_header"}, &l->skb_mac_header, error) &&
         PathOffset(b, "sk_buff", {"protocol"}, &l->skb_protocol, error) &&
         PathOffset(b, "net_device", {"nd_net", "net"}, &l->dev_nd_net, error) &&
         PathOffset(b, "net", {"ns", "inum"}, &l->net_ns_inum, error);
}

std::vector<bpf_insn> CompileFilter(const std::vector<sock_filter>& filter, const SkbLayout& l, int verdict_map_fd,
                                    int slot_map_fd, uint32_t target_netns) {
  Emitter e;
  auto exit_label = e.NewLabel();    // no verdict: the interpreter decides
  auto reject = e.NewLabel();        // the packet does not match
  auto done = e.NewLabel();          // verdict (0 or not) in r1
  auto no_eth = e.NewLabel();

  // ---- prologue: the skb, its netns, the verdict slot, the frame's bytes.
  e.Emit(Load(BPF_DW, kSkb, BPF_REG_1, 0));  // tp_btf netif_receive_skb: ctx[0] is the skb
  e.Emit(Load(BPF_DW, BPF_REG_2, kSkb, static_cast<int16_t>(l.skb_dev)));
  e.JumpImm(BPF_JEQ, BPF_REG_2, 0, exit_label);
  e.Emit(Load(BPF_DW, BPF_REG_2, BPF_REG_2, static_cast<int16_t>(l.dev_nd_net)));
  e.JumpImm(BPF_JEQ, BPF_REG_2, 0, exit_label);
  e.Emit(Load(BPF_W, BPF_REG_2, BPF_REG_2, static_cast<int16_t>(l.net_ns_inum)));
  e.JumpImm(BPF_JNE, BPF_REG_2, static_cast<int32_t>(target_netns), exit_label, true);
  e.Emit(StoreImm(BPF_W, BPF_REG_10, -4, 0));
  // A packet this CPU already follows or turned away (the bridge's RX of a frame from a port) is not judged again.
  auto not_in_slot = e.NewLabel();
  e.Emit(Mov64Reg(BPF_REG_2, BPF_REG_10));
  e.Emit(Add64Imm(BPF_REG_2, -4));
  e.LoadMapFd(BPF_REG_1, slot_map_fd);
  e.Emit(Call(BPF_FUNC_map_lookup_elem));
  e.JumpImm(BPF_JEQ, BPF_REG_0, 0, not_in_slot);
  e.Emit(Load(BPF_DW, BPF_REG_1, BPF_REG_0, 0));
  e.JumpReg(BPF_JEQ, BPF_REG_1, kSkb, exit_label);
  e.Bind(not_in_slot);
  e.Emit(Mov64Reg(BPF_REG_2, BPF_REG_10));
  e.Emit(Add64Imm(BPF_REG_2, -4));
  e.LoadMapFd(BPF_REG_1, verdict_map_fd);
  e.Emit(Call(BPF_FUNC_map_lookup_elem));
  e.JumpImm(BPF_JEQ, BPF_REG_0, 0, exit_label);
  e.Emit(Mov64Reg(kV, BPF_REG_0));
  e.Emit(StoreImm(BPF_DW, kV, kSkbAt, 0));  // a verdict left from before is no longer anyone's
  e.Emit(Store(BPF_DW, kV, kPendingAt, kSkb));
  // At RX the network header is skb->data; the MAC header sits right before it (one read
  // takes both), or there is none.
  auto copied = [&](int32_t extra) {  // r2 = min(skb->len, kCopied) + extra
    auto fits = e.NewLabel();
    e.Emit(Load(BPF_W, BPF_REG_2, kSkb, static_cast<int16_t>(l.skb_len)));
    e.JumpImm(BPF_JLE, BPF_REG_2, kCopied, fits);
    e.Emit(Mov64Imm(BPF_REG_2, kCopied));
    e.Bind(fits);
    if (extra) e.Emit(Add64Imm(BPF_REG_2, extra));
  };
  auto read_done = e.NewLabel();
  e.Emit(Load(BPF_DW, kA, kSkb, static_cast<int16_t>(l.skb_head)));
  e.Emit(Load(BPF_DW, kX, kSkb, static_cast<int16_t>(l.skb_data)));
  e.Emit(Load(BPF_H, BPF_REG_1, kSkb, static_cast<int16_t>(l.skb_mac_header)));
  e.JumpImm(BPF_JEQ, BPF_REG_1, 0xffff, no_eth);
  e.Emit(Mov64Reg(BPF_REG_3, kA));
  e.Emit(Add64Reg(BPF_REG_3, BPF_REG_1));
  e.Emit(Mov64Reg(BPF_REG_2, BPF_REG_3));
  e.Emit(Add64Imm(BPF_REG_2, kEth));
  e.JumpReg(BPF_JNE, BPF_REG_2, kX, no_eth);
  copied(kEth);
  e.Emit(Mov64Reg(BPF_REG_1, kV));
  e.Emit(Add64Imm(BPF_REG_1, kFrameAt));
  e.Emit(Call(BPF_FUNC_probe_read_kernel));
  e.JumpImm(BPF_JEQ, BPF_REG_0, 0, read_done);
  e.Bind(no_eth);
  // Locally made: zero MACs and the protocol, as the interpreter sees it.
  for (uint32_t i = 0; i < 16; i += 8) e.Emit(StoreImm(BPF_DW, kV, static_cast<int16_t>(kFrameAt + i), 0));
  e.Emit(Load(BPF_H, BPF_REG_1, kSkb, static_cast<int16_t>(l.skb_protocol)));
  e.Emit(Store(BPF_H, kV, static_cast<int16_t>(kFrameAt + 12), BPF_REG_1));
  copied(0);
  e.Emit(Mov64Reg(BPF_REG_1, kV));
  e.Emit(Add64Imm(BPF_REG_1, kFrameAt + kEth));
  e.Emit(Mov64Reg(BPF_REG_3, kX));
  e.Emit(Call(BPF_FUNC_probe_read_kernel));
  e.JumpImm(BPF_JNE, BPF_REG_0, 0, exit_label);
  e.Bind(read_done);
  e.Emit(Load(BPF_W, kLen, kSkb, static_cast<int16_t>(l.skb_len)));
  e.Emit(Add64Imm(kLen, kEth));
  e.Emit(Mov64Imm(kA, 0));
  e.Emit(Mov64Imm(kX, 0));

  // ---- the classic program, instruction by instruction.
  std::vector<Emitter::Label> at(filter.size() + 1);
  for (auto& label : at) label = e.NewLabel();
  // A load of `size` bytes at the frame offset in r1 (bounds known to the verifier) into r0, big-endian.
  auto load_bytes = [&](uint8_t base, int16_t off, uint32_t size) {
    e.Emit(Load(BPF_B, BPF_REG_0, base, off));
    for (uint32_t i = 1; i < size; i++) {
      e.Emit(Load(BPF_B, BPF_REG_2, base, static_cast<int16_t>(off + i)));
      e.Emit(Alu32Imm(BPF_LSH, BPF_REG_0, 8));
      e.Emit(Alu32Reg(BPF_OR, BPF_REG_0, BPF_REG_2));
    }
  };
  const std::vector<bool> reach = Reachable(filter);
  for (size_t pc = 0; pc < filter.size(); pc++) {
    if (!reach[pc]) continue;
    const sock_filter& f = filter[pc];
    uint16_t code = f.code;
    e.Bind(at[pc]);
    auto target = [&](size_t skip) { return pc + 1 + skip <= filter.size() ? at[pc + 1 + skip] : -1; };
    switch (Class(code)) {
      case BPF_LD:
      case BPF_LDX: {
        uint8_t dst = Class(code) == BPF_LD ? kA : kX;
        uint32_t size = Size(code) == BPF_W ? 4 : Size(code) == BPF_H ? 2 : 1;
        switch (Mode(code)) {
          case BPF_IMM:
            e.Emit(Mov32Imm(dst, static_cast<int32_t>(f.k)));
            break;
          case BPF_LEN:
            e.Emit(Mov32Reg(dst, kLen));
            break;
          case BPF_MEM:
            e.Emit(Load(BPF_W, dst, kV, static_cast<int16_t>(kMemAt + 4 * (f.k & 15))));
            break;
          case BPF_ABS:
          case BPF_MSH: {
            if (Mode(code) == BPF_MSH) size = 1;
            // Past the frame: no match, as the interpreter says. Past the bytes copied: its call.
            if (f.k > 0xffff) {
              e.Goto(reject);
              break;
            }
            e.JumpImm(BPF_JLT, kLen, static_cast<int32_t>(f.k + size), reject);
            if (f.k + size > BN_FILTER_FRAME) {
              e.Goto(exit_label);
              break;
            }
            load_bytes(kV, static_cast<int16_t>(kFrameAt + f.k), size);
            if (Mode(code) == BPF_MSH) {
              e.Emit(Alu32Imm(BPF_AND, BPF_REG_0, 0xf));
              e.Emit(Alu32Imm(BPF_LSH, BPF_REG_0, 2));
            }
            e.Emit(Mov32Reg(dst, BPF_REG_0));
            break;
          }
          case BPF_IND: {
            e.Emit(Mov32Reg(BPF_REG_1, kX));
            e.Emit(Alu32Imm(BPF_ADD, BPF_REG_1, static_cast<int32_t>(f.k)));
            e.JumpImm(BPF_JGT, BPF_REG_1, 0xffff, reject);
            e.Emit(Mov64Reg(BPF_REG_3, BPF_REG_1));
            e.Emit(Add64Imm(BPF_REG_3, static_cast<int32_t>(size)));
            e.JumpReg(BPF_JLT, kLen, BPF_REG_3, reject);
            e.JumpImm(BPF_JGT, BPF_REG_1, static_cast<int32_t>(BN_FILTER_FRAME - size), exit_label);
            e.Emit(Add64Reg(BPF_REG_1, kV));
            load_bytes(BPF_REG_1, kFrameAt, size);
            e.Emit(Mov32Reg(dst, BPF_REG_0));
            break;
          }
          default:
            return {};
        }
        break;
      }
      case BPF_ST:
      case BPF_STX:
        e.Emit(Store(BPF_W, kV, static_cast<int16_t>(kMemAt + 4 * (f.k & 15)), Class(code) == BPF_ST ? kA : kX));
        break;
      case BPF_ALU: {
        uint16_t op = Op(code);
        if (op == BPF_NEG) {
          e.Emit(Insn(BPF_ALU | BPF_NEG, kA, 0, 0, 0));
          break;
        }
        if (op != BPF_ADD && op != BPF_SUB && op != BPF_MUL && op != BPF_DIV && op != BPF_OR && op != BPF_AND &&
            op != BPF_LSH && op != BPF_RSH && op != BPF_MOD && op != BPF_XOR)
          return {};
        if (!SrcX(code)) {
          if ((op == BPF_DIV || op == BPF_MOD) && f.k == 0) {
            e.Goto(reject);
          } else if ((op == BPF_LSH || op == BPF_RSH) && f.k >= 32) {
            e.Emit(Mov32Imm(kA, 0));
          } else {
            e.Emit(Alu32Imm(static_cast<uint8_t>(op), kA, static_cast<int32_t>(f.k)));
          }
          break;
        }
        if (op == BPF_DIV || op == BPF_MOD) e.JumpImm(BPF_JEQ, kX, 0, reject, true);
        if (op == BPF_LSH || op == BPF_RSH) {
          auto in_range = e.NewLabel(), next = e.NewLabel();
          e.JumpImm(BPF_JLT, kX, 32, in_range, true);
          e.Emit(Mov32Imm(kA, 0));
          e.Goto(next);
          e.Bind(in_range);
          e.Emit(Alu32Reg(static_cast<uint8_t>(op), kA, kX));
          e.Bind(next);
          break;
        }
        e.Emit(Alu32Reg(static_cast<uint8_t>(op), kA, kX));
        break;
      }
      case BPF_JMP: {
        uint16_t op = Op(code);
        if (op == BPF_JA) {
          if (pc + 1 + f.k > filter.size()) return {};
          e.Goto(at[pc + 1 + f.k]);
          break;
        }
        if (op != BPF_JEQ && op != BPF_JGT && op != BPF_JGE && op != BPF_JSET) return {};
        int taken = target(f.jt), not_taken = target(f.jf);
        if (taken < 0 || not_taken < 0) return {};
        if (SrcX(code))
          e.JumpReg(static_cast<uint8_t>(op), kA, kX, taken, true);
        else
          e.JumpImm(static_cast<uint8_t>(op), kA, static_cast<int32_t>(f.k), taken, true);
        if (f.jf) e.Goto(not_taken);
        break;
      }
      case BPF_RET:
        if ((code & 0x18) == BPF_A)
          e.Emit(Mov32Reg(BPF_REG_1, kA));
        else
          e.Emit(Mov32Imm(BPF_REG_1, static_cast<int32_t>(f.k)));
        e.Goto(done);
        break;
      case BPF_MISC:
        if ((code & 0xf8) == BPF_TAX)
          e.Emit(Mov32Reg(kX, kA));
        else
          e.Emit(Mov32Reg(kA, kX));
        break;
      default:
        return {};
    }
  }
  // Falling off the end (classic BPF's validator forbids it): no verdict. The verifier
  // refuses code nothing reaches, so blocks nothing jumps to are left out.
  if (reach[filter.size()]) {
    e.Bind(at[filter.size()]);
    e.Goto(exit_label);
  }

  // ---- epilogue: the verdict, then the skb it is for (the reader checks the skb first).
  if (e.Referenced(reject)) {
    e.Bind(reject);
    e.Emit(Mov64Imm(BPF_REG_1, 0));
  }
  e.Bind(done);
  e.Emit(Store(BPF_W, kV, kMatchedAt, BPF_REG_1));
  e.Emit(Load(BPF_DW, BPF_REG_1, kV, kPendingAt));
  e.Emit(Store(BPF_DW, kV, kSkbAt, BPF_REG_1));
  e.Bind(exit_label);
  e.Emit(Mov64Imm(BPF_REG_0, 0));
  e.Emit(Exit());
  return e.Finish();
}

int AttachCompiledFilter(const std::vector<sock_filter>& filter, int verdict_map_fd, int slot_map_fd,
                         uint32_t target_netns, std::string* error) {
  // Read once (parsing the kernel's BTF is most of this function's time).
  std::unique_ptr<btf, void (*)(btf*)> b(btf__load_vmlinux_btf(), btf__free);
  SkbLayout layout;
  if (!b) {
    *error = "cannot read the kernel's BTF";
    return -1;
  }
  if (!ReadSkbLayout(b.get(), &layout, error)) return -1;
  std::vector<bpf_insn> insns = CompileFilter(filter, layout, verdict_map_fd, slot_map_fd, target_netns);
  if (insns.empty()) {
    *error = "the filter holds a classic BPF instruction the compiler does not know";
    return -1;
  }
  int tp = btf__find_by_name_kind(b.get(), "btf_trace_netif_receive_skb", BTF_KIND_TYPEDEF);
  if (tp <= 0) {
    *error = "no netif_receive_skb tracepoint in the kernel's BTF";
    return -1;
  }
  LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = BPF_TRACE_RAW_TP,
              .attach_btf_id = static_cast<uint32_t>(tp));
  int prog = bpf_prog_load(BPF_PROG_TYPE_TRACING, "bn_filter", "GPL", insns.data(), insns.size(), &opts);
  if (prog < 0) {
    // Again with the verifier's log, for its last word on why.
    std::vector<char> log(1 << 20);
    opts.log_buf = log.data();
    opts.log_size = static_cast<uint32_t>(log.size());
    opts.log_level = 1;
    int again = bpf_prog_load(BPF_PROG_TYPE_TRACING, "bn_filter", "GPL", insns.data(), insns.size(), &opts);
    if (again >= 0) close(again);
    std::string text(log.data());
    while (!text.empty() && text.back() == '\n') text.pop_back();
    size_t cut = text.rfind('\n', text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') - 1);
    *error = std::string("the kernel refused it: ") + strerror(-prog) +
             (text.empty() ? "" : " [" + (cut == std::string::npos ? text : text.substr(cut + 1)) + "]");
    return -1;
  }
  int link = bpf_raw_tracepoint_open(nullptr, prog);
  int err = errno;
  close(prog);  // the link holds it
  if (link < 0) {
    *error = std::string("cannot attach it: ") + strerror(err);
    return -1;
  }
  return link;
}

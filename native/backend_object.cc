#include "backend_object.h"

#include <bpf/libbpf.h>
#include <cerrno>

#include "fentry.skel.h"
#include "hooks.skel.h"
#include "kprobe.skel.h"

namespace {

// The parts every backend object has (bpf/*.bpf.h), whatever its skeleton's type.
template <class Skeleton>
void BindCommon(Skeleton* s, BackendObject* o) {
  o->obj = s->obj;
  o->config = const_cast<bn_config*>(&s->rodata->bn_config);
  o->events = s->maps.events;
  o->tracked = s->maps.tracked;
  o->tracked_here = s->maps.tracked_here;
  o->assembly = s->maps.assembly;
  o->record_here = s->maps.record_here;
  o->paths = s->maps.paths;
  o->lost_events = s->maps.lost_events;
  o->lost_by_packet = s->maps.lost_by_packet;
  o->filter_insns = s->maps.filter_insns;
  o->filter_verdicts = s->maps.filter_verdicts;
  o->watched_ifindex = s->maps.watched_ifindex;
}

void BindHooks(hooks_bpf* s, BackendObject* o) {
  BindCommon(s, o);
  o->nf_body_prog = s->maps.nf_body_prog;
  o->nf_body = s->progs.nf_body;
  static_assert(BN_PROBE_POOL == 16, "one skeleton program per pool slot");
  o->nf_probes = {s->progs.nf_probe_0,  s->progs.nf_probe_1,  s->progs.nf_probe_2,  s->progs.nf_probe_3,
                  s->progs.nf_probe_4,  s->progs.nf_probe_5,  s->progs.nf_probe_6,  s->progs.nf_probe_7,
                  s->progs.nf_probe_8,  s->progs.nf_probe_9,  s->progs.nf_probe_10, s->progs.nf_probe_11,
                  s->progs.nf_probe_12, s->progs.nf_probe_13, s->progs.nf_probe_14, s->progs.nf_probe_15};
}

template <class Skeleton, void (*Destroy)(Skeleton*)>
void DestroyAs(void* skeleton) {
  Destroy(static_cast<Skeleton*>(skeleton));
}

template <class Skeleton, Skeleton* (*OpenSkeleton)(), void (*Destroy)(Skeleton*), void (*Bind)(Skeleton*, BackendObject*)>
void* OpenAs(void (**destroy)(void*), BackendObject* o) {
  Skeleton* s = OpenSkeleton();
  if (s) {
    *destroy = DestroyAs<Skeleton, Destroy>;
    Bind(s, o);
  }
  return s;
}

}  // namespace

int BackendObject::Open(Backend backend) {
  Close();
  errno = 0;
  switch (backend) {
    case Backend::kHooks:
      skeleton_ = OpenAs<hooks_bpf, hooks_bpf__open, hooks_bpf__destroy, BindHooks>(&destroy_, this);
      break;
    case Backend::kFentry:
      skeleton_ = OpenAs<fentry_bpf, fentry_bpf__open, fentry_bpf__destroy, BindCommon<fentry_bpf>>(&destroy_, this);
      break;
    case Backend::kKprobe:
      skeleton_ = OpenAs<kprobe_bpf, kprobe_bpf__open, kprobe_bpf__destroy, BindCommon<kprobe_bpf>>(&destroy_, this);
      break;
  }
  return skeleton_ ? 0 : errno ? -errno : -ENOMEM;
}

void BackendObject::Close() {
  if (skeleton_) destroy_(skeleton_);
  skeleton_ = nullptr;
  destroy_ = nullptr;
  static_cast<BackendParts&>(*this) = BackendParts{};
}

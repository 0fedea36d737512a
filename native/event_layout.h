// The kernel -> native event layout (bpf/events.h) and its enums, as JS sees them:
// the one source of truth for the synthetic events of tests and benchmarks and for the
// decision codes the model reads.
#pragma once

#include <napi.h>

Napi::Object EventLayout(Napi::Env env);

// A TraceSession's configuration from JS (the object src/native.ts types as
// SessionConfig), checked field by field: a bad value is an INVALID_ARGUMENT
// error naming the field, before anything is loaded.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>
#include <vector>

#include "tracer.h"

TracerConfig ParseConfig(Napi::Env env, const Napi::Value& value);
std::vector<NetfilterAttachment> NetfilterList(Napi::Env env, const Napi::Value& value, const std::string& what);
std::vector<uint32_t> IfindexList(Napi::Env env, const Napi::Value& v, const char* what);

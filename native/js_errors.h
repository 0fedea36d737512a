// Errors thrown into JS: a message and the stable `code` src/errors.ts keeps.
#pragma once

#include <napi.h>

#include <string>

inline Napi::Error CodedError(Napi::Env env, const std::string& code, const std::string& message) {
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  return error;
}

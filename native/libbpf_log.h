// libbpf prints to stderr by default; the tracer keeps its messages instead so
// that a failure becomes one clear line with libbpf's reason in it.
#pragma once

#include <string>

void InstallLibbpfLog();
// The last warning libbpf printed on this thread, or "".
std::string LastLibbpfWarning();
void ClearLibbpfWarning();

#include "util/log.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace respawn {
namespace {
std::atomic<int> g_level{-1};

int LevelFromEnv() {
  const char* env = std::getenv("RESPAWN_LOG");
  if (env == nullptr) return static_cast<int>(LogLevel::kWarn);
  if (std::strcmp(env, "debug") == 0) return 0;
  if (std::strcmp(env, "info") == 0) return 1;
  if (std::strcmp(env, "error") == 0) return 3;
  return 2;
}
}  // namespace

LogLevel CurrentLogLevel() {
  int l = g_level.load(std::memory_order_relaxed);
  if (l < 0) {
    l = LevelFromEnv();
    g_level.store(l, std::memory_order_relaxed);
  }
  return static_cast<LogLevel>(l);
}

void SetLogLevel(LogLevel level) { g_level.store(static_cast<int>(level)); }

void LogLine(LogLevel level, const std::string& line) {
  static const char* kNames[] = {"debug", "info", "warn", "error"};
  std::fprintf(stderr, "respawn %s: %s\n", kNames[static_cast<int>(level)], line.c_str());
}

}  // namespace respawn

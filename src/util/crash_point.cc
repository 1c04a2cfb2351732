#include "util/crash_point.h"

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <set>

namespace respawn {
namespace {

enum class Action { kKill, kStop };

struct Armed {
  long nth = 1;  // fire on this hit (1-based)
  Action action = Action::kKill;
};

constexpr std::string_view kStopSuffix = ":stop";

struct Registry {
  std::mutex mu;
  bool env_loaded = false;                    // GUARDED_BY(mu)
  std::map<std::string, Armed> armed;         // name -> when and how; GUARDED_BY(mu)
  std::map<std::string, long> hits;           // GUARDED_BY(mu)
  std::set<std::string> reached;              // GUARDED_BY(mu)
  std::set<std::string> declared;             // GUARDED_BY(mu)
  CrashHandler handler = nullptr;             // GUARDED_BY(mu)
};

Registry& GetRegistry() {
  static Registry* r = new Registry();  // never destroyed: crash points may fire at exit
  return *r;
}

bool StripSuffix(std::string& s, std::string_view suffix) {
  if (s.size() < suffix.size() || s.compare(s.size() - suffix.size(), suffix.size(), suffix) != 0) {
    return false;
  }
  s.resize(s.size() - suffix.size());
  return true;
}

// "name", "name@N", "name:stop", "name@N:stop" (and "name:stop@N").
void ArmLocked(Registry& r, std::string_view spec) {
  std::string s(spec);
  Armed armed;
  if (StripSuffix(s, kStopSuffix)) armed.action = Action::kStop;
  if (auto at = s.rfind('@'); at != std::string::npos) {
    armed.nth = std::strtol(s.c_str() + at + 1, nullptr, 10);
    if (armed.nth < 1) armed.nth = 1;
    s.resize(at);
  }
  if (StripSuffix(s, kStopSuffix)) armed.action = Action::kStop;
  if (!s.empty()) r.armed[s] = armed;
}

void LoadEnvLocked(Registry& r) {
  if (r.env_loaded) return;
  r.env_loaded = true;
  const char* env = std::getenv("RESPAWN_CRASH_AT");
  if (env == nullptr) return;
  std::string_view v(env);
  while (!v.empty()) {
    size_t comma = v.find(',');
    ArmLocked(r, v.substr(0, comma));
    if (comma == std::string_view::npos) break;
    v.remove_prefix(comma + 1);
  }
}

}  // namespace

void CrashPoint(std::string_view name) {
  Registry& r = GetRegistry();
  CrashHandler handler = nullptr;
  Action action = Action::kKill;
  {
    std::lock_guard<std::mutex> lock(r.mu);
    LoadEnvLocked(r);
    std::string key(name);
    r.reached.insert(key);
    if (r.armed.empty()) return;
    auto it = r.armed.find(key);
    if (it == r.armed.end()) return;
    long hit = ++r.hits[key];
    if (hit != it->second.nth) return;
    handler = r.handler;
    action = it->second.action;
  }
  if (action == Action::kStop) {
    std::fprintf(stderr, "respawn: crash point %.*s reached; stopping (SIGSTOP) until SIGCONT\n",
                 static_cast<int>(name.size()), name.data());
    std::fflush(stderr);
    ::raise(SIGSTOP);
    return;
  }
  if (handler != nullptr) {
    handler(name);
    return;
  }
  std::fprintf(stderr, "respawn: crash point %.*s reached; exiting as if killed\n",
               static_cast<int>(name.size()), name.data());
  std::fflush(stderr);
  _exit(137);
}

bool DeclareCrashPoint(std::string_view name) {
  Registry& r = GetRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.declared.emplace(name);
  return true;
}

std::vector<std::string> DeclaredCrashPoints() {
  Registry& r = GetRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  return {r.declared.begin(), r.declared.end()};
}

void ArmCrashPoint(std::string_view spec) {
  Registry& r = GetRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  LoadEnvLocked(r);
  ArmLocked(r, spec);
}

void DisarmAllCrashPoints() {
  Registry& r = GetRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.env_loaded = true;
  r.armed.clear();
  r.hits.clear();
}

std::vector<std::string> ReachedCrashPoints() {
  Registry& r = GetRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  return {r.reached.begin(), r.reached.end()};
}

void SetCrashHandler(CrashHandler handler) {
  Registry& r = GetRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.handler = handler;
}

}  // namespace respawn

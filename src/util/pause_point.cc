#include "util/pause_point.h"

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <set>
#include <string>

namespace respawn {
namespace {

struct Armed {
  std::mutex mu;
  bool loaded = false;          // GUARDED_BY(mu)
  std::set<std::string> names;  // not yet reached; GUARDED_BY(mu)
};

Armed& GetArmed() {
  static Armed* armed = new Armed();  // never destroyed: a point may be reached at exit
  return *armed;
}

}  // namespace

void PausePoint(std::string_view name) {
  Armed& a = GetArmed();
  {
    std::lock_guard<std::mutex> lock(a.mu);
    if (!a.loaded) {
      a.loaded = true;
      if (const char* env = std::getenv("RESPAWN_PAUSE_AT"); env != nullptr) {
        std::string_view v(env);
        while (!v.empty()) {
          size_t comma = v.find(',');
          if (comma != 0) a.names.emplace(v.substr(0, comma));
          if (comma == std::string_view::npos) break;
          v.remove_prefix(comma + 1);
        }
      }
    }
    if (a.names.erase(std::string(name)) == 0) return;
  }
  std::fprintf(stderr, "respawn: paused at %.*s (pid %ld); send SIGCONT to continue\n",
               static_cast<int>(name.size()), name.data(), static_cast<long>(::getpid()));
  std::fflush(stderr);
  ::raise(SIGSTOP);
}

}  // namespace respawn

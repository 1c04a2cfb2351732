// Named crash points: places in the commit path where tests (and the chaos configuration of the
// `respawn` binary) can make the process die as if the machine vanished.
//
//   CrashPoint("commit:before-publish");
//
// Arming: ArmCrashPoint(name) in-process, or RESPAWN_CRASH_AT=name[,name...] in the environment
// (read once, at the first call). An armed point ends the process with SIGKILL semantics
// (`_exit(137)` after flushing nothing), so no destructor or atexit handler runs.
// "name@N" fires on the Nth time the point is reached (1-based).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace respawn {

void CrashPoint(std::string_view name);

/// Arms `spec` ("name" or "name@N") in this process. Thread-safe.
void ArmCrashPoint(std::string_view spec);
void DisarmAllCrashPoints();

/// Every crash point name reached so far in this process (for tests that enumerate them).
std::vector<std::string> ReachedCrashPoints();

/// What an armed crash point does. Tests replace the default (_exit(137)) with a callback that
/// throws or records, to exercise recovery without forking.
using CrashHandler = void (*)(std::string_view name);
void SetCrashHandler(CrashHandler handler);

}  // namespace respawn

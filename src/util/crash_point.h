// Named crash points: places in the commit path where tests (and the chaos configuration of the
// `respawn` binary) can make the process die as if the machine vanished.
//
//   CrashPoint("commit:before-publish");
//
// Arming: ArmCrashPoint(spec) in-process, or RESPAWN_CRASH_AT=spec[,spec...] in the environment
// (read once, at the first call). A spec is "name", "name@N" (fire on the Nth time the point is
// reached, 1-based) and optionally an action suffix ":stop" ("name:stop", "name@N:stop").
// The default action ends the process with SIGKILL semantics (`_exit(137)` after flushing
// nothing), so no destructor or atexit handler runs. ":stop" instead stops the whole process
// with SIGSTOP at that point (as a VM freeze or a long GC pause would); it carries on where it
// was when a SIGCONT arrives. Tests use it to pause a writer in the middle of a commit.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace respawn {

void CrashPoint(std::string_view name);

/// Arms `spec` ("name", "name@N", either with ":stop") in this process. Thread-safe.
void ArmCrashPoint(std::string_view spec);
void DisarmAllCrashPoints();

/// Every crash point name reached so far in this process (for tests that enumerate them).
std::vector<std::string> ReachedCrashPoints();

/// What an armed crash point does. Tests replace the default (_exit(137)) with a callback that
/// throws or records, to exercise recovery without forking. Points armed with ":stop" always
/// stop the process; the handler is not called for them.
using CrashHandler = void (*)(std::string_view name);
void SetCrashHandler(CrashHandler handler);

}  // namespace respawn

// Named pause points: places where an end-to-end test stops the process to change the world at a
// known moment (rewrite a source file between the run's fingerprint and its read), then lets it
// continue.
//
//   PausePoint("runner:before-read");
//
// Arming: RESPAWN_PAUSE_AT=name[,name...] in the environment (read once, at the first call). An
// armed point, the first time it is reached, writes
//   respawn: paused at <name> (pid <pid>); send SIGCONT to continue
// to stderr and stops the whole process with SIGSTOP; `kill -CONT <pid>` resumes it. Later hits of
// the same point do not stop. Unarmed points cost one mutex and a map lookup.
#pragma once

#include <string_view>

namespace respawn {

void PausePoint(std::string_view name);

}  // namespace respawn

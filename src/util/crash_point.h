// Named crash points: places in the commit path where tests (and the chaos configuration of the
// `respawn` binary) can make the process die as if the machine vanished.
//
//   CrashPoint<"ledger:before-publish">();
//
// The template form also declares the point when the program starts, so DeclaredCrashPoints()
// (and `respawn debug crash-points`) lists every point compiled into the program whether or not
// it was reached; end-to-end suites check that each one is reached and survived. Points whose
// names are built at run time (the chaos store's "store:<op>:before|after") call the plain
// CrashPoint(name) and declare their names with DeclareCrashPoint at static initialization.
//
// Arming: ArmCrashPoint(spec) in-process, or RESPAWN_CRASH_AT=spec[,spec...] in the environment
// (read once, at the first call). A spec is "name", "name@N" (fire on the Nth time the point is
// reached, 1-based) and optionally an action suffix ":stop" ("name:stop", "name@N:stop").
// The default action ends the process with SIGKILL semantics (`_exit(137)` after flushing
// nothing), so no destructor or atexit handler runs. ":stop" instead stops the whole process
// with SIGSTOP at that point (as a VM freeze or a long GC pause would); it carries on where it
// was when a SIGCONT arrives. Tests use it to pause a writer in the middle of a commit.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace respawn {

void CrashPoint(std::string_view name);

/// Adds `name` to DeclaredCrashPoints(). Returns true (for use in static initializers).
/// Thread-safe.
bool DeclareCrashPoint(std::string_view name);

/// Every crash point declared in this program (sorted), reached or not.
std::vector<std::string> DeclaredCrashPoints();

namespace crash_point_internal {

// A string literal as a template argument: CrashPoint<"name">().
template <size_t N>
struct Name {
  consteval Name(const char (&s)[N]) {  // NOLINT(google-explicit-constructor): literal syntax
    for (size_t i = 0; i < N; ++i) value[i] = s[i];
  }
  constexpr std::string_view view() const { return std::string_view(value, N - 1); }
  char value[N];
};

// One per point; its initializer runs at program start and declares the name.
template <Name kName>
inline const bool kDeclared = DeclareCrashPoint(kName.view());

}  // namespace crash_point_internal

/// The crash point `kName`, declared at program start (see above).
template <crash_point_internal::Name kName>
void CrashPoint() {
  if (crash_point_internal::kDeclared<kName>) CrashPoint(kName.view());
}

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

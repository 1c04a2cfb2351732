// Minimal leveled logging to stderr. RESPAWN_LOG=debug|info|warn|error sets the level
// (default warn). Never log secrets: callers pass only redacted values.
#pragma once

#include <sstream>
#include <string>

namespace respawn {

enum class LogLevel : int { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

LogLevel CurrentLogLevel();
void SetLogLevel(LogLevel level);
void LogLine(LogLevel level, const std::string& line);

}  // namespace respawn

#define RESPAWN_LOG(level, expr)                                          \
  do {                                                                    \
    if (::respawn::LogLevel::level >= ::respawn::CurrentLogLevel()) {     \
      std::ostringstream _respawn_os;                                     \
      _respawn_os << expr;                                                \
      ::respawn::LogLine(::respawn::LogLevel::level, _respawn_os.str());  \
    }                                                                     \
  } while (0)

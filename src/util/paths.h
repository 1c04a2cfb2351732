// Paths as a shell would expand them: pipeline files name paths the way users type them.
#pragma once

#include <string>
#include <string_view>

#include "util/status.h"

namespace respawn {

/// Expands a leading `~` (the home directory: $HOME, else the user database) or `~user`, and
/// `$NAME` / `${NAME}` anywhere, as a POSIX shell does for an unquoted word (no globbing, no
/// word splitting). `$$` is a literal `$`. InvalidArgument naming the variable when it is not
/// set (a path silently missing a part is worse than an error), or when `~user` is unknown.
Result<std::string> ExpandShellPath(std::string_view path);

}  // namespace respawn

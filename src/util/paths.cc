#include "util/paths.h"

#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <vector>

namespace respawn {
namespace {

bool IsNameChar(char c, bool first) {
  bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  return first ? alpha : alpha || (c >= '0' && c <= '9');
}

// The home directory of `user` ("" = this process's user).
Result<std::string> HomeOf(const std::string& user, std::string_view path) {
  if (user.empty()) {
    if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
      return std::string(home);
    }
  }
  long size = ::sysconf(_SC_GETPW_R_SIZE_MAX);
  std::vector<char> buf(size > 0 ? static_cast<size_t>(size) : 16384);
  struct passwd pw;
  struct passwd* found = nullptr;
  int rc = user.empty() ? ::getpwuid_r(::getuid(), &pw, buf.data(), buf.size(), &found)
                        : ::getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &found);
  if (rc != 0 || found == nullptr || found->pw_dir == nullptr) {
    return InvalidArgument("path \"" + std::string(path) + "\": " +
                           (user.empty() ? std::string("HOME is not set and this user has no "
                                                       "home directory")
                                         : "there is no user \"" + user + "\"") +
                           "; write the directory out");
  }
  return std::string(found->pw_dir);
}

}  // namespace

Result<std::string> ExpandShellPath(std::string_view path) {
  std::string out;
  size_t i = 0;
  if (!path.empty() && path[0] == '~') {
    size_t end = path.find('/');
    if (end == std::string_view::npos) end = path.size();
    ASSIGN_OR_RETURN(std::string home, HomeOf(std::string(path.substr(1, end - 1)), path));
    out = home;
    i = end;
  }
  while (i < path.size()) {
    char c = path[i];
    if (c != '$') {
      out += c;
      ++i;
      continue;
    }
    if (i + 1 < path.size() && path[i + 1] == '$') {
      out += '$';
      i += 2;
      continue;
    }
    std::string name;
    size_t next;
    if (i + 1 < path.size() && path[i + 1] == '{') {
      size_t close = path.find('}', i + 2);
      if (close == std::string_view::npos) {
        return InvalidArgument("path \"" + std::string(path) + "\": \"${\" is not closed");
      }
      name = std::string(path.substr(i + 2, close - i - 2));
      next = close + 1;
    } else {
      size_t j = i + 1;
      while (j < path.size() && IsNameChar(path[j], j == i + 1)) ++j;
      name = std::string(path.substr(i + 1, j - i - 1));
      next = j;
    }
    bool valid = !name.empty();
    for (size_t k = 0; k < name.size(); ++k) valid = valid && IsNameChar(name[k], k == 0);
    if (!valid) {
      return InvalidArgument("path \"" + std::string(path) + "\": \"$\" must start a variable "
                             "name ($NAME or ${NAME}); write $$ for a literal $");
    }
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) {
      return InvalidArgument("path \"" + std::string(path) + "\" uses $" + name +
                             ", which is not set in the environment");
    }
    out += value;
    i = next;
  }
  return out;
}

}  // namespace respawn

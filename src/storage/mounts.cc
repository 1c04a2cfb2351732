#include "storage/mounts.h"

#include <sstream>

namespace respawn {
namespace {

std::vector<std::string> Split(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(sep, start);
    if (end == std::string_view::npos) end = s.size();
    if (end > start) out.emplace_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// mountinfo escapes space, tab, newline and backslash in paths as \ooo (octal).
std::string Unescape(std::string_view s) {
  auto octal = [](char c) { return c >= '0' && c <= '7'; };
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && octal(s[i + 1]) && octal(s[i + 2]) && octal(s[i + 3])) {
      out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
      i += 3;
      continue;
    }
    out += s[i];
  }
  return out;
}

bool IsUnder(const std::string& path, const std::string& mount_point) {
  if (mount_point == "/") return true;
  return path.compare(0, mount_point.size(), mount_point) == 0 &&
         (path.size() == mount_point.size() || path[mount_point.size()] == '/');
}

}  // namespace

MountInfo FindMount(std::string_view mountinfo, const std::string& path) {
  MountInfo best;
  std::istringstream lines{std::string(mountinfo)};
  std::string line;
  while (std::getline(lines, line)) {
    // id parent major:minor root mount_point options [optional fields...] - type source super
    std::vector<std::string> f = Split(line, ' ');
    size_t dash = 0;
    for (size_t i = 6; i < f.size(); ++i) {
      if (f[i] == "-") {
        dash = i;
        break;
      }
    }
    if (dash == 0 || dash + 2 >= f.size()) continue;  // needs type and source after "-"
    std::string mount_point = Unescape(f[4]);
    if (!IsUnder(path, mount_point)) continue;
    if (!best.fs_type.empty() && mount_point.size() < best.mount_point.size()) continue;
    best.mount_point = mount_point;
    best.fs_type = f[dash + 1];
    best.source = Unescape(f[dash + 2]);
    best.options = Split(f[5], ',');
    if (dash + 3 < f.size()) {
      for (std::string& o : Split(f[dash + 3], ',')) best.options.push_back(std::move(o));
    }
  }
  return best;
}

std::vector<std::string> NfsMountWarnings(const MountInfo& mount) {
  std::vector<std::string> out;
  if (mount.fs_type != "nfs" && mount.fs_type != "nfs4") return out;
  std::string lookupcache = "all";  // the client's default when the option is not shown
  bool async = false;
  for (const std::string& o : mount.options) {
    if (o.rfind("lookupcache=", 0) == 0) lookupcache = o.substr(12);
    if (o == "async") async = true;
  }
  if (lookupcache != "positive" && lookupcache != "pos" && lookupcache != "none") {
    out.push_back("mounted with lookupcache=" + lookupcache +
                  ": negative lookups are cached, so a commit record another host just created "
                  "can stay invisible here for up to a minute (acdirmax); remount with "
                  "-o lookupcache=positive");
  }
  if (async) {
    out.push_back(
        "mounted async: writes are acknowledged before they reach the server (respawn "
        "fsyncs what it commits, so it is safe, but other readers may see partial "
        "files); also make sure the server exports it with `sync`: an `async` export "
        "acknowledges fsync before the data is on disk, and a server crash then loses "
        "committed records");
  }
  return out;
}

}  // namespace respawn

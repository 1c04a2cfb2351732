#include "util/glob.h"

#include <cstddef>

namespace respawn {
namespace {

constexpr std::string_view kGlobChars = "*?[";

bool MatchClass(std::string_view p, char c, size_t* consumed) {
  // p starts at '['. Returns false with *consumed == 0 when the class is not closed.
  size_t i = 1;
  bool negate = false;
  if (i < p.size() && (p[i] == '!' || p[i] == '^')) {
    negate = true;
    ++i;
  }
  bool matched = false;
  bool first = true;
  while (i < p.size() && (p[i] != ']' || first)) {
    first = false;
    char lo = p[i];
    if (i + 2 < p.size() && p[i + 1] == '-' && p[i + 2] != ']') {
      char hi = p[i + 2];
      if (c >= lo && c <= hi) matched = true;
      i += 3;
    } else {
      if (c == lo) matched = true;
      ++i;
    }
  }
  if (i >= p.size()) {
    *consumed = 0;
    return false;
  }
  *consumed = i + 1;
  return matched != negate;
}

bool Glob(std::string_view p, std::string_view s) {
  while (!p.empty()) {
    if (p.starts_with("**")) {
      if (p.size() == 2) return true;
      if (p[2] == '/') {
        std::string_view rest = p.substr(3);
        for (size_t k = 0; k <= s.size(); ++k) {
          if ((k == 0 || s[k - 1] == '/') && Glob(rest, s.substr(k))) return true;
        }
        return false;
      }
      std::string_view rest = p.substr(2);
      for (size_t k = 0; k <= s.size(); ++k) {
        if (Glob(rest, s.substr(k))) return true;
      }
      return false;
    }
    if (p[0] == '*') {
      std::string_view rest = p.substr(1);
      for (size_t k = 0; k <= s.size(); ++k) {
        if (Glob(rest, s.substr(k))) return true;
        if (k < s.size() && s[k] == '/') break;
      }
      return false;
    }
    if (s.empty()) return false;
    if (p[0] == '?') {
      if (s[0] == '/') return false;
    } else if (p[0] == '[') {
      size_t consumed = 0;
      bool ok = s[0] != '/' && MatchClass(p, s[0], &consumed);
      if (consumed == 0) {
        if (s[0] != '[') return false;  // unclosed: a literal '['
        consumed = 1;
      } else if (!ok) {
        return false;
      }
      p.remove_prefix(consumed);
      s.remove_prefix(1);
      continue;
    } else if (p[0] == '\\' && p.size() > 1) {
      if (s[0] != p[1]) return false;
      p.remove_prefix(1);
    } else if (p[0] != s[0]) {
      return false;
    }
    p.remove_prefix(1);
    s.remove_prefix(1);
  }
  return s.empty();
}

}  // namespace

bool HasGlob(std::string_view path) {
  return path.find_first_of(kGlobChars) != std::string_view::npos;
}

GlobParts SplitGlob(std::string_view glob) {
  size_t slash = glob.rfind('/', glob.find_first_of(kGlobChars));
  if (slash == std::string_view::npos) return {std::string_view(), glob};
  return {glob.substr(0, slash + 1), glob.substr(slash + 1)};
}

std::string_view GlobLiteralPrefix(std::string_view glob) {
  return glob.substr(0, glob.find_first_of(kGlobChars));
}

bool GlobMatch(std::string_view pattern, std::string_view path) { return Glob(pattern, path); }

}  // namespace respawn

#include "util/strings.h"

namespace respawn {

std::string Quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

std::string StripQuotes(std::string_view s) {
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
  return std::string(s);
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string_view Trim(std::string_view s) {
  constexpr std::string_view kSpace = " \t\n\v\f\r";
  size_t begin = s.find_first_not_of(kSpace);
  if (begin == std::string_view::npos) return s.substr(s.size());
  return s.substr(begin, s.find_last_not_of(kSpace) - begin + 1);
}

std::string PrefixSuccessor(std::string_view prefix) {
  std::string p(prefix);
  while (!p.empty()) {
    auto c = static_cast<unsigned char>(p.back());
    if (c != 0xff) {
      p.back() = static_cast<char>(c + 1);
      return p;
    }
    p.pop_back();
  }
  return p;
}

}  // namespace respawn

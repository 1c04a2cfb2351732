#include "cli/location.h"

#include <sys/stat.h>

#include "storage/store_url.h"
#include "util/strings.h"

namespace respawn::cli {

std::string Location::BaseName() const {
  std::string_view s = local ? std::string_view(path) : std::string_view(key);
  while (!s.empty() && s.back() == '/') s.remove_suffix(1);
  size_t slash = s.rfind('/');
  return std::string(slash == std::string_view::npos ? s : s.substr(slash + 1));
}

Result<Location> ParseLocation(std::string_view arg) {
  Location loc;
  loc.arg = std::string(arg);
  loc.trailing_slash = !arg.empty() && arg.back() == '/';
  size_t sep = arg.find("://");
  std::string scheme = sep == std::string_view::npos ? "" : Lower(arg.substr(0, sep));
  if (scheme == "s3" || scheme == "memory") {
    std::string_view rest = arg.substr(sep + 3);
    size_t slash = rest.find('/');
    std::string_view root = rest.substr(0, slash);
    loc.key = slash == std::string_view::npos ? "" : std::string(rest.substr(slash + 1));
    loc.store_url = scheme + "://" + std::string(root);
    if (scheme == "memory" && root.empty()) {
      return InvalidArgument("URL " + Quoted(arg) +
                             " names no memory store; write memory://name or memory://name/key");
    }
    // Validates the bucket name (and gives the URL's fix) without opening anything.
    Result<ParsedStoreUrl> parsed = ParseStoreUrl(loc.store_url);
    if (!parsed.ok()) {
      std::string message = parsed.status().message();
      if (message.find(loc.store_url) != std::string::npos && loc.store_url != arg) {
        message += " (in " + Quoted(arg) + ")";
      }
      return InvalidArgument(message);
    }
    return loc;
  }
  // Local paths (plain or file://), and unsupported schemes, which ParseStoreUrl names.
  ASSIGN_OR_RETURN(ParsedStoreUrl parsed, ParseStoreUrl(arg));
  if (parsed.scheme != StoreScheme::kPosix) {
    return InvalidArgument("cannot use " + Quoted(arg) + " as a path or object URL");
  }
  loc.local = true;
  loc.path = parsed.path;
  return loc;
}

LocalKind KindOf(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return LocalKind::kMissing;
  if (S_ISREG(st.st_mode)) return LocalKind::kFile;
  if (S_ISDIR(st.st_mode)) return LocalKind::kDirectory;
  return LocalKind::kOther;
}

std::string ParentPath(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos || slash == 0) return "/";
  return path.substr(0, slash);
}

std::string FileName(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string JoinUrl(const std::string& store_url, std::string_view key) {
  std::string out = store_url;
  if (key.empty()) return out;
  if (out.empty() || out.back() != '/') out += '/';
  out += key;
  return out;
}

}  // namespace respawn::cli

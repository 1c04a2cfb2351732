#include "storage/store_url.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <system_error>

#include "storage/chaos_store.h"
#include "storage/memory_store.h"
#include "storage/metrics_store.h"
#include "storage/posix_store.h"
#include "storage/retry_store.h"
#include "storage/s3_store.h"
#include "util/strings.h"

namespace respawn {
namespace {

constexpr std::string_view kSupported =
    "supported: a directory path, file:///abs/path, s3://bucket/prefix, memory://name";

// Lexically normalized, without a trailing '/' (except "/" itself).
std::string NormalizePath(const std::string& path) {
  std::string normal = std::filesystem::path(path).lexically_normal().string();
  while (normal.size() > 1 && normal.back() == '/') normal.pop_back();
  return normal;
}

Result<std::string> CurrentDirectory() {
  std::string buf(4096, '\0');
  for (;;) {
    if (::getcwd(buf.data(), buf.size()) != nullptr) {
      buf.resize(std::char_traits<char>::length(buf.c_str()));
      return buf;
    }
    if (errno != ERANGE || buf.size() > (1u << 20)) {
      return FailedPrecondition(
          "cannot resolve a relative store path: the current directory "
          "is unavailable (" +
          std::error_code(errno, std::generic_category()).message() + "); give an absolute path");
    }
    buf.resize(buf.size() * 2);
  }
}

Status CheckBucketName(std::string_view url, std::string_view bucket) {
  if (bucket.empty()) {
    return InvalidArgument("store URL " + Quoted(url) +
                           " names no bucket; write s3://bucket or s3://bucket/prefix");
  }
  bool chars_ok = true;
  for (char c : bucket) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-')) {
      chars_ok = false;
    }
  }
  if (bucket.size() < 3 || bucket.size() > 63 || !chars_ok) {
    return InvalidArgument("store URL " + Quoted(url) + ": " + Quoted(bucket) +
                           " is not a valid S3 bucket name (3 to 63 characters: lowercase "
                           "letters, digits, '.' and '-')");
  }
  return Status::OK();
}

Result<ParsedStoreUrl> ParseFileUrl(std::string_view url) {
  // "file:" then "///abs" (empty host), "//localhost/abs", or "/abs".
  std::string_view rest = url.substr(5);
  std::string path;
  if (rest.substr(0, 2) == "//") {
    std::string_view after = rest.substr(2);
    if (after.substr(0, 9) == "localhost" && (after.size() == 9 || after[9] == '/')) {
      after.remove_prefix(9);
    }
    if (after.empty() || after.front() != '/') {
      return InvalidArgument("store URL " + Quoted(url) +
                             " has no absolute path: a file URL takes three slashes and an "
                             "absolute path (file:///abs/path), or give a plain directory path "
                             "(relative paths are resolved against the current directory)");
    }
    path = std::string(after);
  } else if (!rest.empty() && rest.front() == '/') {
    path = std::string(rest);
  } else {
    return InvalidArgument("store URL " + Quoted(url) +
                           " has no absolute path: write file:///abs/path, or give a plain "
                           "directory path (relative paths are resolved against the current "
                           "directory)");
  }
  ParsedStoreUrl parsed;
  parsed.scheme = StoreScheme::kPosix;
  parsed.path = NormalizePath(path);
  return parsed;
}

bool IsSchemeChar(char c, bool first) {
  bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  if (first) return alpha;
  return alpha || (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.';
}

// Schemes a mistyped URL is recognised by (a local directory called "s3:" is not plausible).
bool IsUrlScheme(std::string_view scheme) {
  const std::string s = Lower(scheme);
  return s == "s3" || s == "s3a" || s == "s3n" || s == "memory" || s == "gs" || s == "http" ||
         s == "https";
}

}  // namespace

std::string StoreUrlNearMiss(std::string_view text) {
  size_t end = 0;
  while (end < text.size() && IsSchemeChar(text[end], end == 0)) ++end;
  if (end == 0 || !IsUrlScheme(text.substr(0, end))) return "";
  const std::string scheme = Lower(text.substr(0, end));
  std::string_view rest = text.substr(end);
  auto fix = [&](std::string_view tail, const std::string& what) {
    while (!tail.empty() && tail.front() == '/') tail.remove_prefix(1);
    return "store URL " + Quoted(text) + " " + what + ": write " + scheme + "://" +
           std::string(tail);
  };
  if (rest.starts_with("://")) return "";  // a URL (S3:// too: schemes are case-insensitive)
  if (rest.starts_with(":"))
    return fix(rest.substr(1), "is missing a slash after \"" + scheme + ":\"");
  if (rest.starts_with("//")) return fix(rest, "is missing the colon after \"" + scheme + "\"");
  return "";
}

Result<ParsedStoreUrl> ParseStoreUrl(std::string_view url) {
  if (url.empty()) {
    return InvalidArgument(std::string("store URL is empty; ") + std::string(kSupported));
  }
  if (std::string near_miss = StoreUrlNearMiss(url); !near_miss.empty()) {
    return InvalidArgument(near_miss);
  }
  if (Lower(url.substr(0, 5)) == "file:") return ParseFileUrl(url);

  size_t sep = url.find("://");
  bool has_scheme = sep != std::string_view::npos && sep > 0;
  for (size_t i = 0; has_scheme && i < sep; ++i) {
    if (!IsSchemeChar(url[i], i == 0)) has_scheme = false;
  }
  if (has_scheme) {
    std::string scheme = Lower(url.substr(0, sep));
    std::string_view rest = url.substr(sep + 3);
    ParsedStoreUrl parsed;
    if (scheme == "s3") {
      size_t slash = rest.find('/');
      std::string_view bucket = rest.substr(0, slash);
      RETURN_IF_ERROR(CheckBucketName(url, bucket));
      std::string_view prefix =
          slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
      while (!prefix.empty() && prefix.front() == '/') prefix.remove_prefix(1);
      while (!prefix.empty() && prefix.back() == '/') prefix.remove_suffix(1);
      parsed.scheme = StoreScheme::kS3;
      parsed.bucket = std::string(bucket);
      parsed.prefix = std::string(prefix);
      return parsed;
    }
    if (scheme == "memory") {
      parsed.scheme = StoreScheme::kMemory;
      parsed.path = std::string(rest);
      return parsed;
    }
    return InvalidArgument("store URL " + Quoted(url) + " has the unsupported scheme " +
                           Quoted(scheme) + "; " + std::string(kSupported));
  }

  // A plain path.
  std::string path(url);
  if (path.front() != '/') {
    ASSIGN_OR_RETURN(std::string cwd, CurrentDirectory());
    path = cwd + "/" + path;
  }
  ParsedStoreUrl parsed;
  parsed.scheme = StoreScheme::kPosix;
  parsed.path = NormalizePath(path);
  return parsed;
}

Result<OpenedStore> OpenStore(std::string_view url, const OpenStoreOptions& options) {
  ASSIGN_OR_RETURN(ParsedStoreUrl parsed, ParseStoreUrl(url));

  OpenedStore opened;
  switch (parsed.scheme) {
    case StoreScheme::kPosix: {
      PosixStoreOptions posix_options;
      posix_options.create_root = !options.read_only;
      ASSIGN_OR_RETURN(std::unique_ptr<PosixStore> posix,
                       PosixStore::Open(parsed.path, posix_options));
      opened.backend = std::move(posix);
      break;
    }
    case StoreScheme::kMemory:
      opened.backend = MemoryStore::Named(parsed.path);
      break;
    case StoreScheme::kS3: {
      ASSIGN_OR_RETURN(S3Config config, S3ConfigFromEnvironment(parsed.bucket, parsed.prefix));
      config.retry = options.retry_policy;
      ASSIGN_OR_RETURN(std::unique_ptr<S3Store> s3, S3Store::Open(std::move(config)));
      opened.backend = std::move(s3);
      break;
    }
  }
  std::shared_ptr<Store> store = opened.backend;

  std::string chaos_text = options.chaos;
  bool chaos_from_env = false;
  if (chaos_text.empty()) {
    if (const char* env = std::getenv("RESPAWN_CHAOS"); env != nullptr) {
      chaos_text = env;
      chaos_from_env = true;
    }
  }
  bool chaos = false;
  if (!chaos_text.empty()) {
    Result<ChaosSpec> spec = ParseChaosSpec(chaos_text);
    if (!spec.ok()) {
      return InvalidArgument(
          std::string(chaos_from_env ? "environment variable RESPAWN_CHAOS" : "chaos spec") + " " +
          Quoted(chaos_text) + " is invalid: " + spec.status().message());
    }
    if (spec->enabled()) {
      chaos = true;
      store = std::make_shared<ChaosStore>(std::move(store), *spec);
    }
  }
  // S3Store retries each HTTP request itself; wrap it only when chaos injects errors above it.
  if (options.retry && (chaos || parsed.scheme != StoreScheme::kS3)) {
    store = std::make_shared<RetryStore>(std::move(store), options.retry_policy);
  }
  if (options.metrics) {
    opened.metrics = std::make_shared<MetricsStore>(std::move(store));
    store = opened.metrics;
  }
  opened.store = std::move(store);
  return opened;
}

}  // namespace respawn

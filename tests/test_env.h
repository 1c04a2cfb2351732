// Helpers for suites that run against the S3-compatible servers of scripts/s3-server.sh.
//
// `scripts/s3-server.sh start radosgw|swift DIR` writes DIR/env (KEY=VALUE lines: endpoint,
// credentials, region, test bucket). ctest sets RESPAWN_TEST_S3_ENV_RADOSGW and
// RESPAWN_TEST_S3_ENV_SWIFT to those files (tests/suites.cmake). A developer running a test binary
// by hand may leave them unset, and the S3 cases then skip, except in CI (CI=true): there nothing
// skips, and a missing server fails the case. A variable that is set but names a file that is
// missing or cannot be read is an error everywhere.
//
// Header-only so that every tests/*_test.cc binary can use it without a CMake change.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/status.h"

namespace respawn::test {

/// The S3 servers scripts/s3-server.sh can start.
inline const std::vector<std::string>& S3TestServerNames() {
  static const std::vector<std::string> names = {"radosgw", "swift"};
  return names;
}

/// The environment variable naming the env file of `server`: "radosgw" ->
/// "RESPAWN_TEST_S3_ENV_RADOSGW".
inline std::string S3EnvVariable(std::string_view server) {
  std::string name = "RESPAWN_TEST_S3_ENV_";
  for (char c : server) name += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return name;
}

/// True in CI (CI=true or CI=1, as CI services set it): suites must not skip there.
inline bool InCi() {
  const char* ci = std::getenv("CI");
  if (ci == nullptr) return false;
  std::string v(ci);
  for (char& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return v == "true" || v == "1" || v == "yes";
}

/// Parses an env file: KEY=VALUE lines, blank lines and '#' comments ignored, no quoting (the
/// value is everything after the first '='). FailedPrecondition when the file is missing or
/// cannot be read (never NotFound, which means "skip" to callers of UseS3TestServer);
/// InvalidArgument names the file and line of a malformed line.
inline Result<std::vector<std::pair<std::string, std::string>>> ReadEnvFile(
    const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    return FailedPrecondition("env file " + path +
                              " does not exist (start the server with scripts/s3-server.sh "
                              "start SERVER DIR; did it fail?)");
  }
  if (!S_ISREG(st.st_mode)) {
    return FailedPrecondition("env file " + path + " exists but is not a regular file");
  }
  std::ifstream in(path);
  if (!in) return FailedPrecondition("env file " + path + " exists but cannot be read");
  std::vector<std::pair<std::string, std::string>> vars;
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    size_t eq = line.find('=');
    if (eq == 0 || eq == std::string::npos) {
      return InvalidArgument(path + ":" + std::to_string(line_no) + ": expected KEY=VALUE");
    }
    vars.emplace_back(line.substr(0, eq), line.substr(eq + 1));
  }
  if (in.bad()) return FailedPrecondition("env file " + path + " exists but cannot be read");
  return vars;
}

struct S3TestServer {
  std::string name;      // "radosgw" or "swift" (RESPAWN_TEST_SERVER)
  std::string bucket;    // RESPAWN_TEST_BUCKET
  std::string endpoint;  // AWS_ENDPOINT_URL
  std::string env_file;  // where it was read from
};

/// Points the process environment at `server`: reads the env file named by S3EnvVariable(server)
/// and setenv()s every line, after clearing the variables that would otherwise take precedence
/// (AWS_ENDPOINT_URL_S3, AWS_SESSION_TOKEN, AWS_PROFILE). NotFound when the variable is unset
/// outside CI (callers skip: GTEST_SKIP); FailedPrecondition when it is unset in CI or its file
/// is missing or unreadable; InvalidArgument when the file lacks a needed key.
/// Not thread-safe (setenv): call it before starting threads, e.g. from SetUp().
inline Result<S3TestServer> UseS3TestServer(std::string_view server) {
  std::string variable = S3EnvVariable(server);
  const char* file = std::getenv(variable.c_str());
  if (file == nullptr || *file == '\0') {
    std::string why = variable + " is not set; run the suite through ctest, or start the server " +
                      "with `scripts/s3-server.sh start " + std::string(server) + " DIR` and set " +
                      variable + "=DIR/env";
    if (InCi()) return FailedPrecondition("CI is set, so nothing may skip: " + why);
    return NotFound(why);
  }
  S3TestServer result;
  result.env_file = file;
  ASSIGN_OR_RETURN(auto vars, ReadEnvFile(result.env_file));
  for (const char* stale : {"AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN", "AWS_PROFILE"}) {
    unsetenv(stale);
  }
  for (const auto& [key, value] : vars) {
    setenv(key.c_str(), value.c_str(), /*overwrite=*/1);
    if (key == "RESPAWN_TEST_SERVER") result.name = value;
    if (key == "RESPAWN_TEST_BUCKET") result.bucket = value;
    if (key == "AWS_ENDPOINT_URL") result.endpoint = value;
  }
  if (result.bucket.empty() || result.endpoint.empty()) {
    return InvalidArgument(result.env_file +
                           " lacks RESPAWN_TEST_BUCKET or AWS_ENDPOINT_URL; restart the server "
                           "with scripts/s3-server.sh");
  }
  if (result.name.empty()) result.name = std::string(server);
  return result;
}

/// Whether this run must not skip for a missing server (CI=true): a suite then fails instead.
inline bool ServersRequired() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string_view(ci) == "true";
}

/// The PostgreSQL server of scripts/pg-server.sh (the commit coordinator's tests).
struct PgTestServer {
  std::string url;   // RESPAWN_TEST_PG_URL: postgresql://respawn:PASSWORD@127.0.0.1:PORT/postgres
  std::string port;  // RESPAWN_TEST_PG_PORT
  std::string user;  // RESPAWN_TEST_PG_USER
  std::string password;  // RESPAWN_TEST_PG_PASSWORD
  std::string bin;       // RESPAWN_TEST_PG_BIN: psql and friends
  std::string env_file;
};

/// Reads the env file named by RESPAWN_TEST_PG_ENV (ctest sets it for suites that list
/// "postgres" on their respawn-test-servers line). NotFound when the variable is unset (callers
/// skip, unless ServersRequired()); FailedPrecondition when the file named cannot be read, and
/// InvalidArgument when it lacks the URL (never a skip).
inline Result<PgTestServer> UsePgTestServer() {
  const char* file = std::getenv("RESPAWN_TEST_PG_ENV");
  if (file == nullptr || *file == '\0') {
    return NotFound(
        "RESPAWN_TEST_PG_ENV is not set; run the suite through ctest, or start the server with "
        "`scripts/pg-server.sh start DIR` and set RESPAWN_TEST_PG_ENV=DIR/env");
  }
  PgTestServer result;
  result.env_file = file;
  auto vars = ReadEnvFile(result.env_file);
  if (!vars.ok()) return FailedPrecondition(vars.status().message());
  for (const auto& [key, value] : *vars) {
    if (key == "RESPAWN_TEST_PG_URL") result.url = value;
    if (key == "RESPAWN_TEST_PG_PORT") result.port = value;
    if (key == "RESPAWN_TEST_PG_USER") result.user = value;
    if (key == "RESPAWN_TEST_PG_PASSWORD") result.password = value;
    if (key == "RESPAWN_TEST_PG_BIN") result.bin = value;
  }
  if (result.url.empty()) {
    return InvalidArgument(
        result.env_file +
        " lacks RESPAWN_TEST_PG_URL; restart the server with scripts/pg-server.sh");
  }
  return result;
}

/// A name unique to this process and call, safe in URLs, keys and file names:
/// "<label>-<pid>-<counter>-<8 random hex digits>" (characters other than [A-Za-z0-9._-] in
/// `label` become '_').
inline std::string UniqueName(std::string_view label) {
  static std::atomic<uint64_t> counter{0};
  std::string name;
  for (char c : label) {
    bool safe = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
    name += safe ? c : '_';
  }
  std::random_device rd;
  char suffix[64];
  snprintf(suffix, sizeof(suffix), "-%ld-%llu-%08x", static_cast<long>(getpid()),
           static_cast<unsigned long long>(counter.fetch_add(1)), rd());
  return name + suffix;
}

}  // namespace respawn::test

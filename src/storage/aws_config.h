// Reading S3 settings the way the AWS CLI does: environment variables, then the shared
// credentials and config files (~/.aws/credentials, ~/.aws/config). S3ConfigFromEnvironment
// (declared in s3_store.h) is implemented here on top of these pieces.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "storage/s3_store.h"

namespace respawn {

/// One [section] of an AWS INI file. A key whose value is empty and is followed by indented
/// "name = value" lines holds a nested section (the "s3 =" block of a profile).
struct AwsIniSection {
  std::map<std::string, std::string> values;
  std::map<std::string, std::map<std::string, std::string>> nested;
};

/// Sections by the name written inside the brackets, whitespace-normalized ("profile dev").
using AwsIni = std::map<std::string, AwsIniSection>;

/// Parses the INI dialect of the AWS CLI: '#' and ';' start comment lines, keys are
/// case-insensitive (stored lowercase), values are trimmed, inline comments are not stripped.
/// Lines outside any section are ignored.
AwsIni ParseAwsIni(std::string_view text);

/// Returns the value of an environment variable, nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;

/// S3ConfigFromEnvironment with the environment supplied by `env` (HOME included), for tests.
/// Empty variables count as unset.
Result<S3Config> S3ConfigFromEnvironmentWith(const std::string& bucket, const std::string& prefix,
                                             const EnvLookup& env);

}  // namespace respawn

#include "storage/aws_config.h"

#include <pwd.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>

#include "util/strings.h"

namespace respawn {
namespace {

// A size in bytes as the AWS CLI writes multipart settings: digits, optionally followed by KB,
// MB or GB (powers of 1024, as the AWS CLI reads them; KiB, MiB and GiB are accepted too).
std::optional<uint64_t> ParseByteSize(std::string_view text) {
  std::string t = Lower(Trim(text));
  size_t digits = 0;
  while (digits < t.size() && std::isdigit(static_cast<unsigned char>(t[digits]))) ++digits;
  if (digits == 0 || digits > 15) return std::nullopt;
  uint64_t n = 0;
  std::from_chars(t.data(), t.data() + digits, n);  // at most 15 digits: always in range
  std::string unit(Trim(std::string_view(t).substr(digits)));
  if (unit.empty() || unit == "b") return n;
  if (unit == "kb" || unit == "kib") return n << 10;
  if (unit == "mb" || unit == "mib") return n << 20;
  if (unit == "gb" || unit == "gib") return n << 30;
  return std::nullopt;
}

// "profile   dev" -> "profile dev"; other names are only trimmed.
std::string NormalizeSectionName(std::string_view raw) {
  std::string name(Trim(raw));
  if (name.rfind("profile", 0) == 0 && name.size() > 7 &&
      std::isspace(static_cast<unsigned char>(name[7]))) {
    return "profile " + std::string(Trim(std::string_view(name).substr(7)));
  }
  if (name.rfind("services", 0) == 0 && name.size() > 8 &&
      std::isspace(static_cast<unsigned char>(name[8]))) {
    return "services " + std::string(Trim(std::string_view(name).substr(8)));
  }
  return name;
}

struct IniFile {
  std::string path;
  bool exists = false;
  AwsIni ini;
};

// Reads an INI file; a missing file is an empty one, an unreadable one is an error.
Result<IniFile> ReadIni(const std::string& path) {
  IniFile file;
  file.path = path;
  if (path.empty()) return file;
  if (::access(path.c_str(), F_OK) != 0) return file;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return PermissionDenied("cannot read " + path + ": " + std::strerror(errno) +
                            "; fix its permissions or point AWS_SHARED_CREDENTIALS_FILE / "
                            "AWS_CONFIG_FILE elsewhere");
  }
  std::stringstream buf;
  buf << in.rdbuf();
  file.exists = true;
  file.ini = ParseAwsIni(buf.str());
  return file;
}

const AwsIniSection* FindSection(const IniFile& file, const std::string& name) {
  auto it = file.ini.find(name);
  return it == file.ini.end() ? nullptr : &it->second;
}

std::string ValueOf(const AwsIniSection* section, const std::string& key) {
  if (section == nullptr) return "";
  auto it = section->values.find(key);
  return it == section->values.end() ? "" : it->second;
}

std::string NestedValueOf(const AwsIniSection* section, const std::string& block,
                          const std::string& key) {
  if (section == nullptr) return "";
  auto it = section->nested.find(block);
  if (it == section->nested.end()) return "";
  auto kv = it->second.find(key);
  return kv == it->second.end() ? "" : kv->second;
}

std::string ExpandHome(const std::string& path, const std::string& home) {
  if (path == "~") return home;
  if (path.rfind("~/", 0) == 0) return home + path.substr(1);
  return path;
}

bool IsTrue(const std::string& v) {
  std::string l = Lower(v);
  return l == "true" || l == "1" || l == "yes";
}

}  // namespace

AwsIni ParseAwsIni(std::string_view text) {
  AwsIni ini;
  AwsIniSection* section = nullptr;
  std::string nested_key;  // the key whose indented block we are in, or ""
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    std::string trimmed(Trim(line));
    if (trimmed.empty() || trimmed[0] == '#' || trimmed[0] == ';') {
      if (end == text.size()) break;
      continue;
    }
    const bool indented = std::isspace(static_cast<unsigned char>(line[0]));
    if (trimmed.front() == '[' && trimmed.back() == ']' && !indented) {
      section = &ini[NormalizeSectionName(std::string_view(trimmed).substr(1, trimmed.size() - 2))];
      nested_key.clear();
    } else if (section != nullptr) {
      size_t eq = trimmed.find('=');
      if (eq != std::string::npos) {
        std::string key = Lower(Trim(std::string_view(trimmed).substr(0, eq)));
        std::string value(Trim(std::string_view(trimmed).substr(eq + 1)));
        if (indented && !nested_key.empty()) {
          section->nested[nested_key][key] = value;
        } else {
          section->values[key] = value;
          if (value.empty()) {
            nested_key = key;
          } else {
            nested_key.clear();
          }
        }
      }
    }
    if (end == text.size()) break;
  }
  return ini;
}

Result<S3Config> S3ConfigFromEnvironmentWith(const std::string& bucket, const std::string& prefix,
                                             const EnvLookup& env) {
  auto get = [&](const char* name) -> std::string {
    std::optional<std::string> v = env(name);
    return v.has_value() ? *v : std::string();
  };

  S3Config config;
  config.bucket = bucket;
  config.prefix = prefix;
  while (!config.prefix.empty() && config.prefix.front() == '/') config.prefix.erase(0, 1);
  while (!config.prefix.empty() && config.prefix.back() == '/') config.prefix.pop_back();

  std::string home = get("HOME");
  if (home.empty()) {
    if (const passwd* pw = ::getpwuid(::getuid()); pw != nullptr && pw->pw_dir != nullptr) {
      home = pw->pw_dir;
    }
  }
  std::string credentials_path = get("AWS_SHARED_CREDENTIALS_FILE");
  if (credentials_path.empty() && !home.empty()) credentials_path = home + "/.aws/credentials";
  credentials_path = ExpandHome(credentials_path, home);
  std::string config_path = get("AWS_CONFIG_FILE");
  if (config_path.empty() && !home.empty()) config_path = home + "/.aws/config";
  config_path = ExpandHome(config_path, home);

  std::string profile = get("AWS_PROFILE");
  if (profile.empty()) profile = get("AWS_DEFAULT_PROFILE");
  const bool explicit_profile = !profile.empty();
  if (profile.empty()) profile = "default";

  ASSIGN_OR_RETURN(IniFile credentials_file, ReadIni(credentials_path));
  ASSIGN_OR_RETURN(IniFile config_file, ReadIni(config_path));
  const AwsIniSection* cred_section = FindSection(credentials_file, profile);
  const AwsIniSection* conf_section = FindSection(config_file, "profile " + profile);
  if (conf_section == nullptr && profile == "default") {
    conf_section = FindSection(config_file, "default");
  }

  // Credentials: the environment, then the credentials file, then the config file.
  const std::string env_key = get("AWS_ACCESS_KEY_ID");
  const std::string env_secret = get("AWS_SECRET_ACCESS_KEY");
  S3Credentials& creds = config.credentials;
  if (!env_key.empty() && !env_secret.empty()) {
    creds.access_key_id = env_key;
    creds.secret_access_key = env_secret;
    creds.session_token = get("AWS_SESSION_TOKEN");
    creds.source = "environment variables";
  } else if (!env_key.empty() || !env_secret.empty()) {
    return FailedPrecondition(
        std::string(env_key.empty() ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID") +
        " is set but " + (env_key.empty() ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY") +
        " is not (s3://" + bucket +
        "): set both, or unset it to use AWS_PROFILE with "
        "~/.aws/credentials");
  } else {
    for (const auto& [section, path] :
         {std::pair{cred_section, credentials_file.path}, std::pair{conf_section, config_path}}) {
      std::string key = ValueOf(section, "aws_access_key_id");
      std::string secret = ValueOf(section, "aws_secret_access_key");
      if (key.empty() && secret.empty()) continue;
      if (key.empty() || secret.empty()) {
        return FailedPrecondition("profile '" + profile + "' in " + path + " has " +
                                  (key.empty() ? "aws_secret_access_key" : "aws_access_key_id") +
                                  " but no " +
                                  (key.empty() ? "aws_access_key_id" : "aws_secret_access_key") +
                                  ": add it (aws configure --profile " + profile + ")");
      }
      creds.access_key_id = key;
      creds.secret_access_key = secret;
      creds.session_token = ValueOf(section, "aws_session_token");
      creds.source = "profile '" + profile + "' in " + path;
      break;
    }
  }
  if (creds.access_key_id.empty()) {
    if (explicit_profile && cred_section == nullptr && conf_section == nullptr) {
      return FailedPrecondition(
          "AWS_PROFILE names profile '" + profile + "', which is in neither " + credentials_path +
          " nor " + config_path + " (s3://" + bucket + "): add it (aws configure --profile " +
          profile + ") or fix AWS_PROFILE");
    }
    for (const char* unsupported : {"role_arn", "credential_process", "sso_start_url",
                                    "sso_session", "web_identity_token_file"}) {
      if (!ValueOf(conf_section, unsupported).empty() ||
          !ValueOf(cred_section, unsupported).empty()) {
        return FailedPrecondition(
            "profile '" + profile + "' gets its credentials through " + unsupported +
            ", which respawn does not support (s3://" + bucket +
            "): export static keys, e.g. eval \"$(aws configure export-credentials --profile " +
            profile + " --format env)\"");
      }
    }
    return FailedPrecondition("no AWS credentials for s3://" + bucket +
                              ": set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE "
                              "with ~/.aws/credentials");
  }

  // Region.
  std::string region = get("AWS_REGION");
  if (region.empty()) region = get("AWS_DEFAULT_REGION");
  if (region.empty()) region = ValueOf(conf_section, "region");
  if (region.empty()) region = ValueOf(cred_section, "region");
  if (!region.empty()) config.region = region;

  // Endpoint: service-specific before global, environment before files.
  std::string endpoint;
  if (!IsTrue(get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"))) {
    endpoint = get("AWS_ENDPOINT_URL_S3");
    if (endpoint.empty()) endpoint = get("AWS_ENDPOINT_URL");
    if (endpoint.empty()) endpoint = NestedValueOf(conf_section, "s3", "endpoint_url");
    if (endpoint.empty()) {
      std::string services = ValueOf(conf_section, "services");
      if (!services.empty()) {
        endpoint =
            NestedValueOf(FindSection(config_file, "services " + services), "s3", "endpoint_url");
      }
    }
    if (endpoint.empty()) endpoint = ValueOf(conf_section, "endpoint_url");
  }
  while (!endpoint.empty() && endpoint.back() == '/') endpoint.pop_back();
  config.endpoint = endpoint;
  config.path_style = !endpoint.empty();

  // Multipart sizes (the AWS CLI's multipart_threshold and multipart_chunksize).
  for (const auto& [name, field] :
       {std::pair{"RESPAWN_S3_MULTIPART_THRESHOLD", &config.multipart_threshold},
        std::pair{"RESPAWN_S3_MULTIPART_CHUNKSIZE", &config.part_size}}) {
    std::string value = get(name);
    if (value.empty()) continue;
    std::optional<uint64_t> bytes = ParseByteSize(value);
    if (!bytes || *bytes == 0) {
      return InvalidArgument(std::string("environment variable ") + name + "=\"" + value +
                             "\" is not a size: write bytes, or a number with KB, MB or GB "
                             "(e.g. 8MB)");
    }
    *field = *bytes;
  }
  return config;
}

Result<S3Config> S3ConfigFromEnvironment(const std::string& bucket, const std::string& prefix) {
  return S3ConfigFromEnvironmentWith(bucket, prefix,
                                     [](const std::string& name) -> std::optional<std::string> {
                                       const char* v = std::getenv(name.c_str());
                                       if (v == nullptr) return std::nullopt;
                                       return std::string(v);
                                     });
}

}  // namespace respawn

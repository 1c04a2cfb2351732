#include "pipeline/preflight.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>

namespace respawn {

namespace {

namespace fs = std::filesystem;

// Why `path` cannot be written, or "" when it can (as far as can be known without writing).
// A partitioned output (`folder`) is a folder that is replaced as a whole.
std::string WhyNotWritable(const fs::path& path, bool folder) {
  std::error_code ec;
  fs::file_status st = fs::status(path, ec);
  if (fs::is_directory(st) && !folder) return path.string() + " is a folder; name a file inside it";
  if (fs::exists(st) && !fs::is_directory(st) && folder) {
    return path.string() + " is a file, and a partitioned output is a folder; choose another path";
  }
  // The nearest folder that exists: the run creates the missing ones below it.
  fs::path dir = path.parent_path();
  while (!dir.empty()) {
    fs::file_status ds = fs::status(dir, ec);
    if (fs::exists(ds)) {
      if (!fs::is_directory(ds)) {
        return dir.string() + " is a file, so no folder can be made there for " + path.string() +
               "; choose another path";
      }
      break;
    }
    if (dir == dir.parent_path()) break;
    dir = dir.parent_path();
  }
  if (dir.empty()) dir = ".";
  // access() answers for this user and also sees a read-only file system (EROFS).
  if (::access(dir.c_str(), W_OK | X_OK) != 0) {
    const int err = errno;
    return "folder " + dir.string() + " is not writable (" + std::strerror(err) +
           "); choose another path or make the folder writable";
  }
  return "";
}

}  // namespace

Status CheckLocalOutputsWritable(const PipelineSpec& spec) {
  std::string problems;
  for (const OutputSpec& out : spec.outputs) {
    if (out.location.is_url) continue;
    std::string why = WhyNotWritable(fs::path(out.location.resolved), !out.partition_by.empty());
    if (why.empty()) continue;
    if (!problems.empty()) problems += "\n";
    problems += spec.Where(out.location.line ? out.location.line : out.line) + ": output \"" +
                out.name + "\" cannot be written: " + why;
  }
  if (problems.empty()) return Status::OK();
  return InvalidArgument(std::move(problems));
}

}  // namespace respawn

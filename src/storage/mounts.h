// The mount a local path lives on (from /proc/self/mountinfo), for advice about shared
// filesystems: which NFS client options make respawn's commit protocol slower or unsafe to
// rely on between hosts.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace respawn {

struct MountInfo {
  std::string mount_point;           // e.g. "/mnt/efs"
  std::string fs_type;               // e.g. "nfs4"
  std::string source;                // e.g. "server:/export"
  std::vector<std::string> options;  // per-mount and superblock options, e.g. "lookupcache=all"
};

/// The entry of `mountinfo` (the text of /proc/self/mountinfo) whose mount point is the longest
/// prefix of the absolute, symlink-free path `path`; fs_type is empty when none matches.
MountInfo FindMount(std::string_view mountinfo, const std::string& path);

/// Warnings for an NFS mount (empty for other filesystems):
///   - lookupcache other than "positive" or "none" (the default, "all", caches negative lookups:
///     a record another host just created can stay invisible to this one for up to acdirmax,
///     60 s by default, which slows recovery and makes a writer lose publish races for that long);
///   - "async" on the client (writes are acknowledged before they reach the server; fsync still
///     flushes, which respawn relies on, but other tools reading the store may see partial files).
std::vector<std::string> NfsMountWarnings(const MountInfo& mount);

}  // namespace respawn

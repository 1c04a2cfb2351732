#include "storage/mounts.h"

#include <gtest/gtest.h>

namespace respawn {
namespace {

constexpr std::string_view kMountinfo =
    "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n"
    "40 22 0:45 / /mnt/efs rw,relatime shared:20 - nfs4 fs-1.efs:/ "
    "rw,vers=4.1,rsize=1048576,hard,proto=tcp,timeo=600,sec=sys\n"
    "41 22 0:46 / /mnt/nfs\\040share rw,relatime - nfs server:/export "
    "rw,sync,vers=3,lookupcache=positive\n"
    "42 22 0:47 / /mnt/fast rw,relatime - nfs server:/fast rw,vers=3,lookupcache=none,async\n";

TEST(MountsTest, LongestMountPointWins) {
  MountInfo m = FindMount(kMountinfo, "/mnt/efs/checkpoints/x");
  EXPECT_EQ(m.mount_point, "/mnt/efs");
  EXPECT_EQ(m.fs_type, "nfs4");
  EXPECT_EQ(m.source, "fs-1.efs:/");
  EXPECT_EQ(FindMount(kMountinfo, "/home/u").fs_type, "ext4");
  EXPECT_EQ(FindMount(kMountinfo, "/mnt/efsother").mount_point, "/");  // not a path prefix
  EXPECT_EQ(FindMount(kMountinfo, "/mnt/nfs share/a").mount_point, "/mnt/nfs share");
}

TEST(MountsTest, NfsWarnings) {
  // EFS's usual mount shows no lookupcache option: the default (all) caches negative lookups.
  std::vector<std::string> efs = NfsMountWarnings(FindMount(kMountinfo, "/mnt/efs/c"));
  ASSERT_EQ(efs.size(), 1u);
  EXPECT_NE(efs[0].find("lookupcache=all"), std::string::npos) << efs[0];
  EXPECT_TRUE(NfsMountWarnings(FindMount(kMountinfo, "/mnt/nfs share/c")).empty());
  std::vector<std::string> fast = NfsMountWarnings(FindMount(kMountinfo, "/mnt/fast/c"));
  ASSERT_EQ(fast.size(), 1u);
  EXPECT_NE(fast[0].find("async"), std::string::npos) << fast[0];
  EXPECT_TRUE(NfsMountWarnings(FindMount(kMountinfo, "/home/u")).empty());
}

}  // namespace
}  // namespace respawn

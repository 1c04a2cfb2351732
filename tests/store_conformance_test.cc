// The cross-backend conformance suite: every Store backend shows the semantics store.h promises
// (in the spirit of Arrow's GenericFileSystemTest). One value-parameterized suite runs against
//   memory   MemoryStore ("memory://<unique>")
//   posix    PosixStore in a fresh temporary directory
//   radosgw  S3Store on Ceph RADOS Gateway (full S3, put-if-absent)
//   swift    S3Store on OpenStack Swift's s3api (no conditional PUT: the lease fallback's trigger)
// The S3 cases read the env file named by RESPAWN_TEST_S3_ENV_RADOSGW / _SWIFT (written by
// scripts/s3-server.sh; ctest sets them, see tests/suites.cmake) and skip when it is unset.
// Every case works under its own prefix and deletes what it wrote.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "storage/s3_store.h"
#include "storage/store.h"
#include "storage/store_url.h"
#include "test_env.h"
#include "util/hash.h"
#include "util/testing.h"

namespace respawn {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kMiB = 1ull << 20;

using test::StatusOf;

template <typename R>
::testing::AssertionResult HasCode(const R& r, StatusCode want) {
  if (StatusOf(r).code() == want) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "want " << StatusCodeName(want) << ", got " << StatusOf(r).ToString();
}

#define EXPECT_CODE(expr, want) EXPECT_TRUE(HasCode((expr), (want))) << #expr

/// Deterministic pseudo-random bytes (fast enough for 100 MiB).
std::string RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t v = rng();
    std::memcpy(&s[i], &v, 8);
  }
  for (; i < n; ++i) s[i] = static_cast<char>(rng());
  return s;
}

/// Equality of byte strings without printing megabytes on failure.
::testing::AssertionResult SameBytes(std::string_view got, std::string_view want) {
  if (got == want) return ::testing::AssertionSuccess();
  size_t i = 0;
  while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
  return ::testing::AssertionFailure()
         << "got " << got.size() << " bytes (xxh3 " << HexU64(Xxh3(got)) << "), want "
         << want.size() << " bytes (xxh3 " << HexU64(Xxh3(want)) << "); first difference at byte "
         << i;
}

std::vector<std::string> KeysOf(const std::vector<ObjectInfo>& objects) {
  std::vector<std::string> keys;
  for (const auto& o : objects) keys.push_back(o.key);
  return keys;
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool IsS3(const std::string& backend) { return backend == "radosgw" || backend == "swift"; }

std::string ReadLocalFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void WriteLocalFile(const fs::path& path, std::string_view data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

/// Names of the entries of a local directory.
std::set<std::string> DirEntries(const fs::path& dir) {
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.insert(e.path().filename().string());
  return names;
}

struct Listing {
  std::vector<std::string> keys;
  std::vector<std::string> common_prefixes;
  size_t pages = 0;
  size_t largest_page = 0;
};

class StoreConformanceTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const std::string& backend = GetParam();
    // A stray RESPAWN_CHAOS in the developer's shell must not turn backend bugs into noise.
    unsetenv("RESPAWN_CHAOS");
    std::string unique =
        test::UniqueName(::testing::UnitTest::GetInstance()->current_test_info()->name());
    scratch_ = fs::temp_directory_path() / ("respawn-conformance-files-" + unique);
    fs::create_directories(scratch_);

    std::string url;
    if (backend == "memory") {
      url = "memory://conformance-" + unique;
    } else if (backend == "posix") {
      local_root_ = fs::temp_directory_path() / ("respawn-conformance-" + unique);
      url = local_root_.string();
    } else {
      auto server = test::UseS3TestServer(backend);
      if (!server.ok() && server.status().code() == StatusCode::kNotFound) {
        GTEST_SKIP() << server.status().message();
      }
      ASSERT_OK(server);
      ASSERT_EQ(server->name, backend) << server->env_file << " describes another server";
      bucket_ = server->bucket;
      prefix_ = "conformance/" + unique;
      url = "s3://" + bucket_ + "/" + prefix_;
    }
    auto opened = OpenStore(url);
    ASSERT_OK(opened) << url;
    store_ = opened->store;
    backend_ = opened->backend;
    ASSERT_NE(store_, nullptr);
  }

  void TearDown() override {
    if (store_ != nullptr) {
      auto all = ListAll(*store_, "");
      if (!all.ok()) {
        ADD_FAILURE() << "cleanup: listing " << store_->Url() << ": " << all.status().ToString();
      } else if (!all->empty()) {
        auto deleted = store_->DeleteMany(KeysOf(*all));
        if (!deleted.ok() || !deleted->failed.empty()) {
          ADD_FAILURE() << "cleanup: deleting " << all->size() << " keys under " << store_->Url()
                        << ": "
                        << (deleted.ok() ? deleted->FirstError() : deleted.status()).ToString();
        }
      }
    }
    std::error_code ec;
    if (!local_root_.empty()) fs::remove_all(local_root_, ec);
    if (!scratch_.empty()) fs::remove_all(scratch_, ec);
  }

  const std::string& backend() const { return GetParam(); }

  /// The store's capabilities, after the S3 backend has found out whether the server honours
  /// If-None-Match (S3Store probes lazily).
  Capabilities Caps() {
    if (auto* s3 = dynamic_cast<S3Store*>(backend_.get())) {
      auto probed = s3->ProbePutIfAbsent();
      EXPECT_OK(probed) << "ProbePutIfAbsent";
    }
    return store_->capabilities();
  }

  void ExpectObject(const std::string& key, std::string_view want) {
    auto got = store_->Get(key);
    ASSERT_OK(got) << "Get(" << key << ")";
    EXPECT_TRUE(SameBytes(*got, want)) << "Get(" << key << ")";
  }

  /// Every page of a listing, checking the page-size limit and that tokens make progress.
  Listing ListEverything(ListOptions options) {
    Listing out;
    std::set<std::string> tokens;
    for (;;) {
      auto page = store_->List(options);
      if (!page.ok()) {
        ADD_FAILURE() << "List(prefix=\"" << options.prefix << "\"): " << page.status().ToString();
        return out;
      }
      ++out.pages;
      size_t entries = page->objects.size() + page->common_prefixes.size();
      out.largest_page = std::max(out.largest_page, entries);
      for (const auto& o : page->objects) out.keys.push_back(o.key);
      for (const auto& p : page->common_prefixes) out.common_prefixes.push_back(p);
      if (page->next_token.empty()) break;
      if (!tokens.insert(page->next_token).second || out.pages > 10000) {
        ADD_FAILURE() << "List(prefix=\"" << options.prefix << "\") repeats continuation token "
                      << page->next_token;
        return out;
      }
      options.continuation_token = page->next_token;
    }
    return out;
  }

  /// Puts `keys` (value: "value of <key>") from `threads` threads.
  void PutMany(const std::vector<std::string>& keys, int threads) {
    std::atomic<size_t> next{0};
    std::mutex mu;
    std::vector<std::string> errors;
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&] {
        for (size_t i = next++; i < keys.size(); i = next++) {
          Status s = store_->Put(keys[i], "value of " + keys[i]);
          if (!s.ok()) {
            std::lock_guard<std::mutex> lock(mu);
            errors.push_back(keys[i] + ": " + s.ToString());
          }
        }
      });
    }
    for (auto& th : pool) th.join();
    EXPECT_TRUE(errors.empty()) << errors.size() << " puts failed, first: " << errors.front();
  }

  std::shared_ptr<Store> store_;    // the outermost wrapper, as callers use it
  std::shared_ptr<Store> backend_;  // the innermost backend
  std::string bucket_;              // S3 only
  std::string prefix_;              // S3 only: the key prefix of this case in the bucket
  fs::path local_root_;             // posix only
  fs::path scratch_;                // local files of this case
};

TEST_P(StoreConformanceTest, RoundTripsObjects) {
  std::string binary;
  for (int i = 0; i < 512; ++i) binary += static_cast<char>(i % 256);
  binary += std::string(100, '\0') + "after the NULs" + std::string(3, '\0');
  const std::map<std::string, std::string> objects = {
      {"empty", ""},
      {"one-byte", "x"},
      {"binary", binary},
      {"five-mib", RandomBytes(5 * kMiB, 1)},
  };
  for (const auto& [key, data] : objects) ASSERT_OK(store_->Put(key, data));
  for (const auto& [key, data] : objects) {
    ExpectObject(key, data);
    ASSERT_OK_AND_ASSIGN(auto info, store_->Stat(key));
    EXPECT_EQ(info.size, data.size()) << key;
  }
}

// libcurl is C: an exception from the caller's progress function must not unwind through it.
// The S3 client stops the transfer and the call fails with Internal naming it (not retried);
// nothing is left behind. (The other backends call it from C++ frames only.)
TEST_P(StoreConformanceTest, S3ProgressFunctionThatThrowsFailsTheCall) {
  if (dynamic_cast<S3Store*>(backend_.get()) == nullptr) {
    GTEST_SKIP() << "only the S3 client calls the progress function from a C library";
  }
  auto throwing = [](uint64_t, uint64_t) { throw std::runtime_error("progress says stop"); };
  PutOptions put;
  put.progress = throwing;
  Status st = store_->Put("thrown/put", std::string(256 * 1024, 'x'), put);
  EXPECT_CODE(st, StatusCode::kInternal);
  EXPECT_NE(st.message().find("progress says stop"), std::string::npos) << st.ToString();
  EXPECT_CODE(store_->Stat("thrown/put"), StatusCode::kNotFound);

  ASSERT_OK(store_->Put("thrown/get", std::string(256 * 1024, 'y')));
  GetOptions get;
  get.progress = throwing;
  const fs::path target = scratch_ / "thrown-get";
  st = store_->GetToFile("thrown/get", target.string(), get);
  EXPECT_CODE(st, StatusCode::kInternal);
  EXPECT_NE(st.message().find("progress says stop"), std::string::npos) << st.ToString();
  EXPECT_FALSE(fs::exists(target)) << "GetToFile left a partial file";
}

TEST_P(StoreConformanceTest, OverwriteReplacesWholeObject) {
  const std::string a = std::string(1 * kMiB, 'a');
  const std::string b = std::string(300 * 1024, 'b');
  ASSERT_OK(store_->Put("obj", a));
  ASSERT_OK(store_->Put("obj", b));
  ExpectObject("obj", b);
  ASSERT_OK_AND_ASSIGN(auto info, store_->Stat("obj"));
  EXPECT_EQ(info.size, b.size());

  // A reader racing with overwrites sees one whole version or the other, never a mix.
  std::atomic<bool> done{false};
  std::atomic<int> reads{0};
  std::atomic<int> torn{0};
  std::string first_error;
  std::thread reader([&] {
    while (!done) {
      auto got = store_->Get("obj");
      if (!got.ok()) {
        if (first_error.empty()) first_error = got.status().ToString();
        ++torn;
      } else if (*got != a && *got != b) {
        ++torn;
      }
      ++reads;
    }
  });
  for (int i = 0; i < 10; ++i) {
    EXPECT_OK(store_->Put("obj", i % 2 == 0 ? a : b));
  }
  done = true;
  reader.join();
  EXPECT_EQ(torn.load(), 0) << "of " << reads.load()
                            << " reads during overwrites; first error: " << first_error;
  ExpectObject("obj", b);
}

TEST_P(StoreConformanceTest, MissingObjectIsNotFound) {
  EXPECT_CODE(store_->Get("no/such/key"), StatusCode::kNotFound);
  EXPECT_CODE(store_->Stat("no/such/key"), StatusCode::kNotFound);
  EXPECT_CODE(store_->GetRange("no/such/key", 0, 10), StatusCode::kNotFound);
  const fs::path target = scratch_ / "never-written";
  EXPECT_CODE(store_->GetToFile("no/such/key", target.string()), StatusCode::kNotFound);
  EXPECT_FALSE(fs::exists(target)) << "GetToFile of a missing key left " << target;
  EXPECT_TRUE(DirEntries(scratch_).empty()) << "GetToFile of a missing key left temporary files";
  // A prefix of an existing key is not an object either.
  ASSERT_OK(store_->Put("dir/file", "x"));
  EXPECT_CODE(store_->Get("dir"), StatusCode::kNotFound);
  EXPECT_CODE(store_->Stat("dir"), StatusCode::kNotFound);
}

TEST_P(StoreConformanceTest, StatReportsSizeAndMtime) {
  const int64_t before = NowMs();
  ASSERT_OK(store_->Put("stat/me", std::string(12345, 's')));
  const int64_t after = NowMs();
  ASSERT_OK_AND_ASSIGN(auto info, store_->Stat("stat/me"));
  EXPECT_EQ(info.key, "stat/me");
  EXPECT_EQ(info.size, 12345u);
  // S3's Last-Modified has whole seconds; allow that and a little clock skew.
  EXPECT_GE(info.mtime_ms, before - 2000);
  EXPECT_LE(info.mtime_ms, after + 2000);

  ASSERT_OK_AND_ASSIGN(auto listed, ListAll(*store_, "stat/"));
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].key, "stat/me");
  EXPECT_EQ(listed[0].size, 12345u);
}

TEST_P(StoreConformanceTest, GetRangeReadsSlices) {
  const std::string data = RandomBytes(1000, 2);
  ASSERT_OK(store_->Put("range", data));
  ASSERT_OK_AND_ASSIGN(auto middle, store_->GetRange("range", 100, 200));
  EXPECT_TRUE(SameBytes(middle, data.substr(100, 200)));
  auto tail = store_->GetRange("range", 900, 500);  // runs past the end: the last 100 bytes
  ASSERT_OK(tail);
  EXPECT_TRUE(SameBytes(*tail, data.substr(900)));
  ASSERT_OK_AND_ASSIGN(auto whole, store_->GetRange("range", 0, 1000));
  EXPECT_TRUE(SameBytes(whole, data));
  ASSERT_OK_AND_ASSIGN(auto last, store_->GetRange("range", 999, 1));
  EXPECT_TRUE(SameBytes(last, data.substr(999)));
  EXPECT_CODE(store_->GetRange("range", 1010, 10), StatusCode::kInvalidArgument);
}

TEST_P(StoreConformanceTest, SmallFilesRoundTrip) {
  const std::string data = RandomBytes(kMiB + 17, 3);
  const fs::path source = scratch_ / "source";
  WriteLocalFile(source, data);
  ASSERT_OK(store_->PutFile("files/small", source.string()));
  ExpectObject("files/small", data);

  // GetToFile replaces an existing file whole and leaves no temporary file beside it.
  const fs::path download_dir = scratch_ / "download";
  fs::create_directories(download_dir);
  const fs::path target = download_dir / "small";
  WriteLocalFile(target, "stale contents that must disappear");
  ASSERT_OK(store_->GetToFile("files/small", target.string()));
  EXPECT_TRUE(SameBytes(ReadLocalFile(target), data));
  EXPECT_EQ(DirEntries(download_dir), std::set<std::string>{"small"});

  // Empty files too.
  const fs::path empty = scratch_ / "empty";
  WriteLocalFile(empty, "");
  ASSERT_OK(store_->PutFile("files/empty", empty.string()));
  ExpectObject("files/empty", "");
  ASSERT_OK(store_->GetToFile("files/empty", (download_dir / "empty").string()));
  EXPECT_EQ(fs::file_size(download_dir / "empty"), 0u);

  EXPECT_FALSE(store_->PutFile("files/none", (scratch_ / "no-such-file").string()).ok());
  EXPECT_CODE(store_->Stat("files/none"), StatusCode::kNotFound);
}

// GetOptions::if_match: a read pinned to the ETag that Stat and List report returns that
// version, and once the object was replaced it fails (FailedPrecondition) and writes nothing.
TEST_P(StoreConformanceTest, IfMatchPinsReadsToOneVersion) {
  const std::string one = "version one";
  // Above S3Store's download chunk (16 MiB): the pinned download takes more than one range.
  const std::string big = RandomBytes(17 * kMiB + 5, 9);
  ASSERT_OK(store_->Put("pin/small", one));
  ASSERT_OK(store_->Put("pin/big", big));
  ASSERT_OK(store_->Put("pin/empty", "not empty yet"));
  auto small = store_->Stat("pin/small");
  auto large = store_->Stat("pin/big");
  auto was_full = store_->Stat("pin/empty");
  ASSERT_OK(small);
  ASSERT_OK(large);
  ASSERT_OK(was_full);
  ASSERT_FALSE(small->etag.empty()) << "Stat reports no ETag";
  ASSERT_OK_AND_ASSIGN(auto listed, ListAll(*store_, "pin/"));
  ASSERT_EQ(listed.size(), 3u);
  EXPECT_EQ(listed[2].key, "pin/small");  // after pin/big, pin/empty
  EXPECT_EQ(listed[2].etag, small->etag) << "List and Stat report different ETags";

  GetOptions pin;
  pin.if_match = small->etag;
  ASSERT_OK_AND_ASSIGN(auto got, store_->Get("pin/small", pin));
  EXPECT_EQ(got, one);
  const fs::path target = scratch_ / "pinned";
  ASSERT_OK(store_->GetToFile("pin/small", target.string(), pin));
  EXPECT_EQ(ReadLocalFile(target), one);
  GetOptions pin_big;
  pin_big.if_match = large->etag;
  const fs::path big_target = scratch_ / "pinned-big";
  ASSERT_OK(store_->GetToFile("pin/big", big_target.string(), pin_big));
  EXPECT_TRUE(SameBytes(ReadLocalFile(big_target), big));

  // Replaced: the pinned reads fail and leave the earlier download as it was.
  ASSERT_OK(store_->Put("pin/small", "version two, longer"));
  ASSERT_OK(store_->Put("pin/empty", ""));
  EXPECT_CODE(store_->Get("pin/small", pin), StatusCode::kFailedPrecondition);
  Status changed = store_->GetToFile("pin/small", target.string(), pin);
  EXPECT_CODE(changed, StatusCode::kFailedPrecondition);
  EXPECT_NE(changed.message().find("changed"), std::string::npos) << changed.message();
  EXPECT_EQ(ReadLocalFile(target), one);
  GetOptions pin_empty;
  pin_empty.if_match = was_full->etag;
  EXPECT_CODE(store_->GetToFile("pin/empty", (scratch_ / "empty").string(), pin_empty),
              StatusCode::kFailedPrecondition);
  EXPECT_EQ(DirEntries(scratch_), (std::set<std::string>{"pinned", "pinned-big"}))
      << "a failed pinned read left a file";
  // Without a pin the new version reads as usual.
  ASSERT_OK_AND_ASSIGN(auto now, store_->Get("pin/small"));
  EXPECT_EQ(now, "version two, longer");
}

// Above S3Config::multipart_threshold (64 MiB), so S3 takes the parallel multipart path and the
// ranged parallel download.
TEST_P(StoreConformanceTest, LargeFileRoundTrip) {
  if (backend() == "memory") GTEST_SKIP() << "the memory store is for small objects";
  const uint64_t size = 100 * kMiB + 12345;
  const fs::path source = scratch_ / "large";
  Xxh3Stream source_hash;
  {
    std::ofstream out(source, std::ios::binary);
    for (uint64_t written = 0, seed = 10; written < size; ++seed) {
      std::string chunk = RandomBytes(std::min<uint64_t>(8 * kMiB, size - written), seed);
      source_hash.Update(chunk);
      out.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
      written += chunk.size();
    }
    ASSERT_TRUE(out.good());
  }
  const uint64_t want_hash = source_hash.Digest();

  std::mutex mu;
  uint64_t max_done = 0;
  uint64_t last_total = 0;
  bool over_total = false;
  PutOptions put_options;
  put_options.progress = [&](uint64_t done, uint64_t total) {
    std::lock_guard<std::mutex> lock(mu);
    max_done = std::max(max_done, done);
    last_total = total;
    if (total != 0 && done > total) over_total = true;
  };
  auto start = std::chrono::steady_clock::now();
  ASSERT_OK(store_->PutFile("big/file", source.string(), put_options));
  auto put_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (max_done != 0) {
    EXPECT_EQ(max_done, size) << "PutFile progress never reached the file size";
    EXPECT_TRUE(last_total == 0 || last_total == size) << "progress total " << last_total;
    EXPECT_FALSE(over_total) << "PutFile progress reported more bytes done than the total";
  }

  auto info = store_->Stat("big/file");
  ASSERT_OK(info);
  EXPECT_EQ(info->size, size);

  const fs::path download_dir = scratch_ / "download";
  fs::create_directories(download_dir);
  const fs::path target = download_dir / "large";
  start = std::chrono::steady_clock::now();
  ASSERT_OK(store_->GetToFile("big/file", target.string()));
  auto get_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(DirEntries(download_dir), std::set<std::string>{"large"});
  ASSERT_EQ(fs::file_size(target), size);
  ASSERT_OK_AND_ASSIGN(auto got_hash, Xxh3File(target.string()));
  EXPECT_EQ(HexU64(got_hash), HexU64(want_hash)) << "downloaded file differs from the upload";

  // A range across a 16 MiB boundary (a multipart part boundary on S3).
  ASSERT_OK_AND_ASSIGN(auto range, store_->GetRange("big/file", 16 * kMiB - 5, 10));
  std::ifstream in(source, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(16 * kMiB - 5));
  std::string want_range(10, '\0');
  in.read(want_range.data(), 10);
  EXPECT_TRUE(SameBytes(range, want_range));

  std::cout << "[ info     ] " << backend() << ": PutFile " << size / kMiB << " MiB in " << put_s
            << " s, GetToFile in " << get_s << " s\n";
}

TEST_P(StoreConformanceTest, KeysWithSpacesPlusPercentAndUnicode) {
  const std::vector<std::string> keys = {
      "dir/naïve file+1%.txt",
      "ünï/κλειδί 2",
      "sym/a=b&c?d#e~f*g:h@i,j!k'l(m)n;o$p[q]r",
      "sp ace/plus+plus/percent%20stays%2Fliteral",
  };
  for (const auto& key : keys) ASSERT_OK(store_->Put(key, "value of " + key));
  for (const auto& key : keys) {
    ExpectObject(key, "value of " + key);
    ASSERT_OK_AND_ASSIGN(auto info, store_->Stat(key));
    EXPECT_EQ(info.key, key);
    EXPECT_EQ(info.size, ("value of " + key).size()) << key;
    ASSERT_OK_AND_ASSIGN(auto range, store_->GetRange(key, 0, 5));
    EXPECT_EQ(range, "value");
    // Listing by the key's first segment finds exactly it.
    std::string first_segment = key.substr(0, key.find('/') + 1);
    ASSERT_OK_AND_ASSIGN(auto listed, ListAll(*store_, first_segment));
    EXPECT_EQ(KeysOf(listed), std::vector<std::string>{key}) << "prefix " << first_segment;
  }
  std::vector<std::string> sorted = keys;
  std::sort(sorted.begin(), sorted.end());
  ASSERT_OK_AND_ASSIGN(auto all, ListAll(*store_, ""));
  EXPECT_EQ(KeysOf(all), sorted);
  for (const auto& key : keys) {
    ASSERT_OK(store_->Delete(key));
    EXPECT_CODE(store_->Get(key), StatusCode::kNotFound);
  }
}

TEST_P(StoreConformanceTest, ListsByPrefix) {
  const std::vector<std::string> keys = {"p/a", "p/b/c", "p/b/d", "pa", "pb/x", "q/x", "o"};
  PutMany(keys, 4);
  struct Case {
    std::string prefix;
    std::vector<std::string> want;
  };
  const std::vector<Case> cases = {
      {"p/", {"p/a", "p/b/c", "p/b/d"}},
      {"p", {"p/a", "p/b/c", "p/b/d", "pa", "pb/x"}},
      {"p/b/", {"p/b/c", "p/b/d"}},
      {"p/b/c", {"p/b/c"}},
      {"", {"o", "p/a", "p/b/c", "p/b/d", "pa", "pb/x", "q/x"}},
      {"zzz", {}},
  };
  for (const auto& c : cases) {
    ListOptions options;
    options.prefix = c.prefix;
    EXPECT_EQ(ListEverything(options).keys, c.want) << "prefix \"" << c.prefix << "\"";
  }
  ASSERT_OK_AND_ASSIGN(auto listed, ListAll(*store_, "p/a"));
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].size, std::string("value of p/a").size());
}

TEST_P(StoreConformanceTest, ListsWithDelimiter) {
  PutMany({"d/1", "d/2", "d/sub/3", "d/sub/4", "d/sub2/5", "d/sub2/deeper/6", "e", "f/7"}, 4);
  ListOptions options;
  options.delimiter = "/";

  options.prefix = "d/";
  Listing d = ListEverything(options);
  EXPECT_EQ(d.keys, (std::vector<std::string>{"d/1", "d/2"}));
  EXPECT_EQ(d.common_prefixes, (std::vector<std::string>{"d/sub/", "d/sub2/"}));

  options.prefix = "";
  Listing root = ListEverything(options);
  EXPECT_EQ(root.keys, std::vector<std::string>{"e"});
  EXPECT_EQ(root.common_prefixes, (std::vector<std::string>{"d/", "f/"}));

  options.prefix = "d/sub2/";
  Listing sub2 = ListEverything(options);
  EXPECT_EQ(sub2.keys, std::vector<std::string>{"d/sub2/5"});
  EXPECT_EQ(sub2.common_prefixes, std::vector<std::string>{"d/sub2/deeper/"});

  options.prefix = "d/sub";  // not ending in the delimiter: groups after the prefix
  Listing partial = ListEverything(options);
  EXPECT_TRUE(partial.keys.empty());
  EXPECT_EQ(partial.common_prefixes, (std::vector<std::string>{"d/sub/", "d/sub2/"}));
}

TEST_P(StoreConformanceTest, PaginatesListings) {
  std::vector<std::string> keys;
  for (int i = 0; i < 25; ++i) {
    char name[32];
    snprintf(name, sizeof(name), "page/k%02d", i);
    keys.push_back(name);
  }
  std::vector<std::string> all_keys = keys;
  for (const char* outside : {"pag", "pagf", "page0", "pagez/x"}) all_keys.push_back(outside);
  PutMany(all_keys, 8);

  ListOptions options;
  options.prefix = "page/";
  options.max_keys = 7;
  Listing listing = ListEverything(options);
  EXPECT_EQ(listing.keys, keys) << "no duplicates, none missing, in byte order";
  EXPECT_LE(listing.largest_page, 7u) << "a page held more than max_keys entries";
  EXPECT_GE(listing.pages, 4u);

  // The same with a delimiter (common prefixes count against max_keys too).
  for (int i = 0; i < 9; ++i) ASSERT_OK(store_->Put("page/sub" + std::to_string(i) + "/x", "x"));
  options.delimiter = "/";
  Listing grouped = ListEverything(options);
  EXPECT_EQ(grouped.keys, keys);
  EXPECT_EQ(grouped.common_prefixes.size(), 9u);
  std::set<std::string> unique_prefixes(grouped.common_prefixes.begin(),
                                        grouped.common_prefixes.end());
  EXPECT_EQ(unique_prefixes.size(), 9u);
  EXPECT_LE(grouped.largest_page, 7u);
}

TEST_P(StoreConformanceTest, DeleteOfMissingKeyIsOk) {
  EXPECT_OK(store_->Delete("never/was"));
  ASSERT_OK(store_->Put("gone/soon", "x"));
  ASSERT_OK(store_->Delete("gone/soon"));
  EXPECT_CODE(store_->Get("gone/soon"), StatusCode::kNotFound);
  EXPECT_OK(store_->Delete("gone/soon"));

  ASSERT_OK(store_->Put("many/a", "a"));
  ASSERT_OK_AND_ASSIGN(auto result, store_->DeleteMany({"many/a", "many/missing", "never/was"}));
  EXPECT_EQ(result.deleted, 3u);
  EXPECT_TRUE(result.failed.empty()) << result.FirstError().ToString();
  EXPECT_CODE(store_->Get("many/a"), StatusCode::kNotFound);
  ASSERT_OK_AND_ASSIGN(auto empty, store_->DeleteMany({}));
  EXPECT_EQ(empty.deleted, 0u);
}

TEST_P(StoreConformanceTest, DeleteManyRemovesThousandsOfKeys) {
  std::vector<std::string> keys;
  for (int i = 0; i < 2500; ++i) {
    char name[32];
    snprintf(name, sizeof(name), "bulk/%02d/k%04d", i % 10, i);
    keys.push_back(name);
  }
  PutMany(keys, 16);
  ASSERT_OK(store_->Put("keep", "kept"));
  ASSERT_OK_AND_ASSIGN(auto before, ListAll(*store_, "bulk/"));
  ASSERT_EQ(before.size(), keys.size());

  auto start = std::chrono::steady_clock::now();
  auto result = store_->DeleteMany(keys);
  auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_OK(result);
  EXPECT_EQ(result->deleted, keys.size());
  EXPECT_TRUE(result->failed.empty())
      << result->failed.size() << " failed, first: " << result->FirstError().ToString();
  std::cout << "[ info     ] " << backend() << ": DeleteMany of " << keys.size() << " keys in "
            << seconds << " s, " << result->requests << " requests\n";
  // The requests reported are the ones made: one per key at most, and bulk where the backend
  // has a bulk delete (S3 DeleteObjects: at most 1,000 keys each, so at least 3 here).
  EXPECT_GE(result->requests, 3u);
  EXPECT_LE(result->requests, keys.size());
  if (backend() == "radosgw") {
    EXPECT_LE(result->requests, 100u);
  }

  for (size_t i = 0; i < keys.size(); i += 250) {
    EXPECT_CODE(store_->Stat(keys[i]), StatusCode::kNotFound);
  }
  // A listing may lag on some backends (Capabilities::consistent_listing); give those a moment.
  auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(Caps().consistent_listing ? 0 : 30);
  Result<std::vector<ObjectInfo>> after = std::vector<ObjectInfo>{};
  for (;;) {
    after = ListAll(*store_, "bulk/");
    if (!after.ok() || after->empty() || std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_OK(after);
  EXPECT_TRUE(after->empty()) << after->size() << " keys still listed, first: " << (*after)[0].key;
  ExpectObject("keep", "kept");
}

TEST_P(StoreConformanceTest, PutIfAbsentCreatesOnlyOnce) {
  const Capabilities caps = Caps();
  PutOptions if_absent;
  if_absent.if_absent = true;
  if (!caps.put_if_absent) {
    // The store says so up front, and refuses rather than writing unconditionally: that is what
    // sends the commit protocol to its lease fallback.
    EXPECT_CODE(store_->Put("once", "first", if_absent), StatusCode::kUnimplemented);
    EXPECT_CODE(store_->Get("once"), StatusCode::kNotFound)
        << "a refused put-if-absent must not write";
    return;
  }
  ASSERT_OK(store_->Put("once", "first", if_absent));
  EXPECT_CODE(store_->Put("once", "second", if_absent), StatusCode::kAlreadyExists);
  ExpectObject("once", "first");
  // A plain Put still overwrites, and a deleted key can be created again.
  ASSERT_OK(store_->Put("once", "third"));
  ExpectObject("once", "third");
  ASSERT_OK(store_->Delete("once"));
  ASSERT_OK(store_->Put("once", "fourth", if_absent));
  ExpectObject("once", "fourth");
  // PutFile honours it too.
  const fs::path source = scratch_ / "source";
  WriteLocalFile(source, "from a file");
  EXPECT_CODE(store_->PutFile("once", source.string(), if_absent), StatusCode::kAlreadyExists);
  ExpectObject("once", "fourth");
  ASSERT_OK(store_->PutFile("once-file", source.string(), if_absent));
  ExpectObject("once-file", "from a file");
}

TEST_P(StoreConformanceTest, PutIfAbsentRaceHasOneWinnerPerKey) {
  constexpr int kThreads = 16;
  constexpr int kKeys = 10;
  const Capabilities caps = Caps();
  std::vector<std::vector<Status>> results(kKeys, std::vector<Status>(kThreads));
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      PutOptions if_absent;
      if_absent.if_absent = true;
      ++ready;
      while (ready.load() < kThreads) std::this_thread::yield();
      for (int i = 0; i < kKeys; ++i) {
        int k = (i + t) % kKeys;  // threads start on different keys, then collide on each
        results[k][t] =
            store_->Put("race/" + std::to_string(k), "writer " + std::to_string(t), if_absent);
      }
    });
  }
  for (auto& th : threads) th.join();

  for (int k = 0; k < kKeys; ++k) {
    const std::string key = "race/" + std::to_string(k);
    int winner = -1;
    int winners = 0;
    for (int t = 0; t < kThreads; ++t) {
      const Status& s = results[k][t];
      if (!caps.put_if_absent) {
        EXPECT_CODE(s, StatusCode::kUnimplemented) << " " << key << " writer " << t;
        continue;
      }
      if (s.ok()) {
        winner = t;
        ++winners;
      } else {
        // The loser of a put-if-absent race learns the key is taken (AlreadyExists), or, on
        // stores that detect the conflict mid-flight, that it should retry (Aborted).
        EXPECT_TRUE(s.code() == StatusCode::kAlreadyExists || s.code() == StatusCode::kAborted)
            << key << " writer " << t << ": " << s.ToString();
      }
    }
    if (!caps.put_if_absent) {
      EXPECT_CODE(store_->Get(key), StatusCode::kNotFound);
      continue;
    }
    EXPECT_EQ(winners, 1) << key;
    if (winners == 1) ExpectObject(key, "writer " + std::to_string(winner));
  }
}

TEST_P(StoreConformanceTest, ReportsExpectedCapabilities) {
  const Capabilities caps = Caps();
  const bool want_put_if_absent = backend() != "swift";
  EXPECT_EQ(caps.put_if_absent, want_put_if_absent);
  EXPECT_GE(caps.max_delete_batch, 1u);
  if (backend() == "memory") {
    EXPECT_TRUE(caps.consistent_listing);
    EXPECT_EQ(store_->Url().rfind("memory://", 0), 0u) << store_->Url();
  }
  if (backend() == "posix") {
    EXPECT_TRUE(caps.atomic_rename);
  }
  if (IsS3(backend())) {
    EXPECT_FALSE(caps.atomic_rename) << "rename on S3 is copy + delete";
    EXPECT_EQ(store_->Url(), "s3://" + bucket_ + "/" + prefix_);
    const char* secret = std::getenv("AWS_SECRET_ACCESS_KEY");
    ASSERT_NE(secret, nullptr);
    EXPECT_EQ(store_->Url().find(secret), std::string::npos) << "the URL holds the secret key";
    // The probe cleans up after itself.
    auto left = ListAll(*store_, "");
    ASSERT_OK(left);
    EXPECT_TRUE(left->empty()) << "ProbePutIfAbsent left " << (*left)[0].key;
  }
}

TEST_P(StoreConformanceTest, RejectsInvalidKeys) {
  const std::string too_long(1025, 'k');
  const std::string with_nul("a\0b", 3);
  for (const std::string& key : {std::string(), too_long, with_nul}) {
    EXPECT_CODE(store_->Put(key, "x"), StatusCode::kInvalidArgument) << "key size " << key.size();
    EXPECT_CODE(store_->Get(key), StatusCode::kInvalidArgument) << "key size " << key.size();
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreConformanceTest,
                         ::testing::Values("memory", "posix", "radosgw", "swift"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
}  // namespace respawn

#include "storage/posix_store.h"

#include <grp.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "storage/memory_store.h"

namespace respawn {

// Reaches PosixStore's private error mapping.
class PosixStorePeer {
 public:
  static Status ErrnoStatus(int err, std::string_view action, const std::string& path) {
    return PosixStore::ErrnoStatus(err, action, path);
  }
  static bool DirKnownDurable(const PosixStore& store, const std::string& dir) {
    return store.DirKnownDurable(dir);
  }
};

namespace {

namespace fs = std::filesystem;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary);
  out << data;
}

// Every file name under `dir`, recursively, relative to it.
std::vector<std::string> FilesUnder(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file()) out.push_back(fs::relative(it->path(), dir).string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Lists every page; keys as-is, common prefixes as "P:" + prefix, in byte order.
std::vector<std::string> ListItems(Store& store, ListOptions options, size_t* pages = nullptr) {
  std::vector<std::string> items;
  size_t n = 0;
  for (;;) {
    Result<ListPage> page = store.List(options);
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    if (!page.ok()) break;
    ++n;
    std::vector<std::pair<std::string, bool>> merged;
    for (const auto& o : page->objects) merged.emplace_back(o.key, false);
    for (const auto& p : page->common_prefixes) merged.emplace_back(p, true);
    std::sort(merged.begin(), merged.end());
    for (const auto& [item, is_prefix] : merged) items.push_back(is_prefix ? "P:" + item : item);
    EXPECT_LE(merged.size(), options.max_keys);
    if (page->next_token.empty()) break;
    options.continuation_token = page->next_token;
    if (n > 100000) {
      ADD_FAILURE() << "listing does not end";
      break;
    }
  }
  if (pages) *pages = n;
  return items;
}

class PosixStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "posix_store_test.XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    root_ = dir_ + "/root";
    PosixStoreOptions options;
    Result<std::unique_ptr<PosixStore>> store = PosixStore::Open(root_, options);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
  }
  void TearDown() override {
    store_.reset();
    std::error_code ec;
    fs::permissions(dir_, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(dir_, ec);
  }

  std::string dir_;   // the mkdtemp'd directory
  std::string root_;  // the store root, inside dir_
  std::unique_ptr<PosixStore> store_;
};

TEST_F(PosixStoreTest, OpenChecksTheRoot) {
  EXPECT_EQ(PosixStore::Open("relative/dir").status().code(), StatusCode::kInvalidArgument);
  PosixStoreOptions no_create;
  no_create.create_root = false;
  Result<std::unique_ptr<PosixStore>> missing = PosixStore::Open(dir_ + "/missing", no_create);
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find(dir_ + "/missing"), std::string::npos);
  WriteFile(dir_ + "/file", "x");
  EXPECT_EQ(PosixStore::Open(dir_ + "/file").status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(PosixStore::Open(dir_ + "/file/sub").status().code(), StatusCode::kFailedPrecondition);
  // Created with parents; trailing slashes and dots normalized.
  Result<std::unique_ptr<PosixStore>> nested = PosixStore::Open(dir_ + "/n/./m/");
  ASSERT_TRUE(nested.ok()) << nested.status().ToString();
  EXPECT_EQ((*nested)->root(), dir_ + "/n/m");
  EXPECT_EQ((*nested)->Url(), "file://" + dir_ + "/n/m");
  EXPECT_TRUE(fs::is_directory(dir_ + "/n/m"));
}

TEST_F(PosixStoreTest, Capabilities) {
  Capabilities c = store_->capabilities();
  EXPECT_TRUE(c.put_if_absent);
  EXPECT_TRUE(c.consistent_listing);
  EXPECT_TRUE(c.atomic_rename);
  EXPECT_TRUE(c.durable_sync);
  EXPECT_EQ(c.max_delete_batch, 1000u);
  PosixStoreOptions no_sync;
  no_sync.fsync = false;
  EXPECT_FALSE((*PosixStore::Open(root_, no_sync))->capabilities().durable_sync);
}

TEST_F(PosixStoreTest, PutGetStatMapToFiles) {
  ASSERT_TRUE(store_->Put("a/b/c.txt", "hello").ok());
  EXPECT_EQ(ReadFile(root_ + "/a/b/c.txt"), "hello");
  EXPECT_EQ(*store_->Get("a/b/c.txt"), "hello");
  Result<ObjectInfo> info = store_->Stat("a/b/c.txt");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->key, "a/b/c.txt");
  EXPECT_EQ(info->size, 5u);
  int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  EXPECT_LE(std::abs(info->mtime_ms - now_ms), 60000);
  ASSERT_TRUE(store_->Put("a/b/c.txt", "replaced").ok());
  EXPECT_EQ(*store_->Get("a/b/c.txt"), "replaced");
  EXPECT_NE(store_->Stat("a/b/c.txt")->etag, info->etag);
  ASSERT_TRUE(store_->Put("empty", "").ok());
  EXPECT_EQ(*store_->Get("empty"), "");
  EXPECT_EQ(FilesUnder(root_), (std::vector<std::string>{"a/b/c.txt", "empty"}));
}

TEST_F(PosixStoreTest, MissingKeys) {
  Status s = store_->Get("no/such/key").status();
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_NE(s.message().find("no/such/key"), std::string::npos);
  EXPECT_EQ(store_->Stat("nope").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->GetRange("nope", 0, 1).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(store_->Delete("nope").ok());
  EXPECT_TRUE(store_->Delete("no/such/key").ok());
}

TEST_F(PosixStoreTest, KeysCannotEscapeTheRoot) {
  const std::vector<std::string> bad = {"",
                                        "/etc/passwd",
                                        "../x",
                                        "a/../../x",
                                        "..",
                                        ".",
                                        "a/./b",
                                        "a//b",
                                        "a/",
                                        "//",
                                        "a/../b",
                                        ".respawn-tmp-1",
                                        "a/.respawn-tmp-x/b",
                                        std::string("a\0b", 3),
                                        std::string(1025, 'k')};
  for (const std::string& key : bad) {
    Status put = store_->Put(key, "x");
    EXPECT_EQ(put.code(), StatusCode::kInvalidArgument) << key;
    if (!key.empty() && key.find('\0') == std::string::npos && key.size() < 100) {
      EXPECT_NE(put.message().find("\"" + key + "\""), std::string::npos) << put.message();
    }
    EXPECT_EQ(store_->Get(key).status().code(), StatusCode::kInvalidArgument) << key;
    EXPECT_EQ(store_->GetRange(key, 0, 1).status().code(), StatusCode::kInvalidArgument) << key;
    EXPECT_EQ(store_->Stat(key).status().code(), StatusCode::kInvalidArgument) << key;
    EXPECT_EQ(store_->Delete(key).code(), StatusCode::kInvalidArgument) << key;
    EXPECT_EQ(store_->GetToFile(key, dir_ + "/out").code(), StatusCode::kInvalidArgument) << key;
  }
  // Nothing was written anywhere in the temp dir but the (empty) root.
  EXPECT_TRUE(FilesUnder(dir_).empty());
  // Names that merely contain dots are fine.
  for (const char* key : {"...", "a..b", "..a/.b", "x/.respawn-tmp"}) {
    EXPECT_TRUE(store_->Put(key, "ok").ok()) << key;
    EXPECT_EQ(*store_->Get(key), "ok");
  }
}

TEST_F(PosixStoreTest, LongSegmentIsInvalidArgument) {
  Status s = store_->Put(std::string(300, 'x'), "v");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
}

TEST_F(PosixStoreTest, PutIfAbsent) {
  PutOptions create;
  create.if_absent = true;
  ASSERT_TRUE(store_->Put("d/k", "first", create).ok());
  Status s = store_->Put("d/k", "second", create);
  EXPECT_EQ(s.code(), StatusCode::kAlreadyExists);
  EXPECT_NE(s.message().find("\"d/k\""), std::string::npos);
  EXPECT_EQ(*store_->Get("d/k"), "first");
  EXPECT_EQ(FilesUnder(root_), (std::vector<std::string>{"d/k"}));  // no temp left
}

TEST_F(PosixStoreTest, PutIfAbsentRaceHasOneWinnerPerKey) {
  constexpr int kThreads = 16;
  constexpr int kKeys = 20;
  std::vector<std::vector<int>> winners(kKeys);
  std::mutex mu;
  std::atomic<int> other_errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      PutOptions create;
      create.if_absent = true;
      for (int k = 0; k < kKeys; ++k) {
        std::string key = "race/" + std::to_string(k % 4) + "/key" + std::to_string(k);
        Status s = store_->Put(key, "writer " + std::to_string(t), create);
        if (s.ok()) {
          std::lock_guard<std::mutex> lock(mu);
          winners[k].push_back(t);
        } else if (!s.IsAlreadyExists()) {
          ADD_FAILURE() << s.ToString();
          ++other_errors;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(other_errors.load(), 0);
  for (int k = 0; k < kKeys; ++k) {
    ASSERT_EQ(winners[k].size(), 1u) << "key " << k;
    std::string key = "race/" + std::to_string(k % 4) + "/key" + std::to_string(k);
    EXPECT_EQ(*store_->Get(key), "writer " + std::to_string(winners[k][0]));
  }
  EXPECT_EQ(FilesUnder(root_).size(), static_cast<size_t>(kKeys));  // no temp files left
}

TEST_F(PosixStoreTest, TempFilesAreNeverListedOrVisible) {
  ASSERT_TRUE(store_->Put("a/real", "r").ok());
  // A writer that crashed between creating and publishing its temp file leaves this behind.
  WriteFile(root_ + "/a/.respawn-tmp-0123456789abcdef", "partial");
  fs::create_directories(root_ + "/crashed");
  WriteFile(root_ + "/crashed/.respawn-tmp-feed", "partial object of crashed/obj");
  ListOptions all;
  EXPECT_EQ(ListItems(*store_, all), (std::vector<std::string>{"a/real"}));
  ListOptions delim;
  delim.delimiter = "/";
  // "crashed/" holds no object, so it is no common prefix either.
  EXPECT_EQ(ListItems(*store_, delim), (std::vector<std::string>{"P:a/"}));
  EXPECT_EQ(store_->Get("crashed/obj").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->Stat("a/.respawn-tmp-0123456789abcdef").status().code(),
            StatusCode::kInvalidArgument);
  // Writing the key the crashed writer meant works.
  ASSERT_TRUE(store_->Put("crashed/obj", "whole").ok());
  EXPECT_EQ(*store_->Get("crashed/obj"), "whole");
}

TEST_F(PosixStoreTest, DeleteRemovesEmptyDirectories) {
  ASSERT_TRUE(store_->Put("x/y/z/obj", "v").ok());
  ASSERT_TRUE(store_->Delete("x/y/z/obj").ok());
  EXPECT_FALSE(fs::exists(root_ + "/x"));
  EXPECT_TRUE(fs::is_directory(root_));

  ASSERT_TRUE(store_->Put("p/q/a", "v").ok());
  ASSERT_TRUE(store_->Put("p/b", "v").ok());
  ASSERT_TRUE(store_->Delete("p/q/a").ok());
  EXPECT_FALSE(fs::exists(root_ + "/p/q"));
  EXPECT_TRUE(fs::exists(root_ + "/p/b"));
  ASSERT_TRUE(store_->Delete("p/b").ok());
  EXPECT_FALSE(fs::exists(root_ + "/p"));
  EXPECT_TRUE(fs::is_empty(root_));
}

TEST_F(PosixStoreTest, ConcurrentPutsAndDeletesInSharedDirectories) {
  // Deletes remove directories that concurrent writers are about to use; every put must still
  // succeed.
  constexpr int kThreads = 8;
  constexpr int kRounds = 200;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRounds; ++i) {
        std::string key = "s/" + std::to_string(i % 3) + "/t" + std::to_string(t);
        Status put = store_->Put(key, "v");
        if (!put.ok()) {
          ADD_FAILURE() << put.ToString();
          ++failures;
        }
        Result<std::string> got = store_->Get(key);
        if (!got.ok() || *got != "v") ++failures;
        if (!store_->Delete(key).ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_TRUE(fs::is_empty(root_));
}

TEST_F(PosixStoreTest, KeyNamingADirectory) {
  ASSERT_TRUE(store_->Put("a/b", "v").ok());
  EXPECT_EQ(store_->Get("a").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->Stat("a").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->GetRange("a", 0, 1).status().code(), StatusCode::kNotFound);
  Status put = store_->Put("a", "v");
  EXPECT_EQ(put.code(), StatusCode::kFailedPrecondition) << put.ToString();
  EXPECT_NE(put.message().find("\"a\""), std::string::npos);
  PutOptions create;
  create.if_absent = true;
  EXPECT_EQ(store_->Put("a", "v", create).code(), StatusCode::kFailedPrecondition);
  // An object where a directory would have to be.
  Status below = store_->Put("a/b/c", "v");
  EXPECT_EQ(below.code(), StatusCode::kFailedPrecondition) << below.ToString();
  EXPECT_NE(below.message().find("\"a/b\""), std::string::npos);
  EXPECT_EQ(store_->Get("a/b/c").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(store_->Delete("a").ok());
  EXPECT_TRUE(store_->Delete("a/b/c").ok());
  EXPECT_EQ(*store_->Get("a/b"), "v");
  EXPECT_EQ(FilesUnder(root_), (std::vector<std::string>{"a/b"}));
}

TEST_F(PosixStoreTest, GetRange) {
  ASSERT_TRUE(store_->Put("k", "0123456789").ok());
  EXPECT_EQ(*store_->GetRange("k", 2, 3), "234");
  EXPECT_EQ(*store_->GetRange("k", 8, 100), "89");
  EXPECT_EQ(*store_->GetRange("k", 0, 0), "");
  EXPECT_EQ(*store_->GetRange("k", 10, 5), "");  // offset == size: empty
  Status past = store_->GetRange("k", 11, 1).status();
  EXPECT_EQ(past.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(past.message().find("\"k\""), std::string::npos);
}

TEST_F(PosixStoreTest, PutFileAndGetToFileStream) {
  std::string data(3 * 1024 * 1024 + 17, '\0');
  std::mt19937 rng(1);
  for (char& c : data) c = static_cast<char>(rng());
  std::string src = dir_ + "/src.bin";
  WriteFile(src, data);

  std::vector<std::pair<uint64_t, uint64_t>> calls;
  PutOptions po;
  po.progress = [&](uint64_t done, uint64_t total) { calls.emplace_back(done, total); };
  ASSERT_TRUE(store_->PutFile("big/obj", src, po).ok());
  ASSERT_GE(calls.size(), 3u);  // streamed in chunks
  EXPECT_EQ(calls.back().first, data.size());
  EXPECT_EQ(calls.back().second, data.size());
  EXPECT_EQ(ReadFile(root_ + "/big/obj"), data);

  calls.clear();
  GetOptions go;
  go.progress = [&](uint64_t done, uint64_t total) { calls.emplace_back(done, total); };
  fs::create_directories(dir_ + "/out");
  std::string dst = dir_ + "/out/obj";
  WriteFile(dst, "old contents");
  ASSERT_TRUE(store_->GetToFile("big/obj", dst, go).ok());
  EXPECT_EQ(ReadFile(dst), data);
  ASSERT_GE(calls.size(), 3u);
  EXPECT_EQ(calls.back().first, data.size());
  EXPECT_EQ(FilesUnder(dir_ + "/out"), (std::vector<std::string>{"obj"}));

  // Empty objects too.
  WriteFile(dir_ + "/empty", "");
  ASSERT_TRUE(store_->PutFile("empty", dir_ + "/empty").ok());
  ASSERT_TRUE(store_->GetToFile("empty", dir_ + "/out/empty").ok());
  EXPECT_EQ(ReadFile(dir_ + "/out/empty"), "");

  Status missing_src = store_->PutFile("x", dir_ + "/missing");
  EXPECT_EQ(missing_src.code(), StatusCode::kNotFound);
  EXPECT_NE(missing_src.message().find(dir_ + "/missing"), std::string::npos);
  EXPECT_FALSE(fs::exists(root_ + "/x"));
  EXPECT_EQ(store_->GetToFile("missing", dst).code(), StatusCode::kNotFound);
  EXPECT_EQ(ReadFile(dst), data);  // untouched
  Status no_dir = store_->GetToFile("big/obj", dir_ + "/no/such/dir/file");
  EXPECT_EQ(no_dir.code(), StatusCode::kFailedPrecondition) << no_dir.ToString();
}

TEST_F(PosixStoreTest, ListPaginates) {
  std::vector<std::string> keys;
  for (int i = 0; i < 25; ++i) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "p/%02d/obj", i);
    keys.push_back(buf);
    ASSERT_TRUE(store_->Put(keys.back(), "v").ok());
  }
  ASSERT_TRUE(store_->Put("q", "v").ok());
  ListOptions o;
  o.prefix = "p/";
  o.max_keys = 7;
  size_t pages = 0;
  EXPECT_EQ(ListItems(*store_, o, &pages), keys);
  EXPECT_EQ(pages, 4u);
  Result<ListPage> first = store_->List(o);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->next_token, "p/06/obj");
  EXPECT_EQ(first->objects[0].size, 1u);
  Result<std::vector<ObjectInfo>> all = ListAll(*store_, "");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 26u);
}

TEST_F(PosixStoreTest, ListDelimiter) {
  for (const char* k : {"a/1", "a/2", "b/x/1", "b/y", "c", "d/e/f", "a.txt", "a-b/1"}) {
    ASSERT_TRUE(store_->Put(k, "v").ok());
  }
  fs::create_directories(root_ + "/empty/dir");  // left behind; holds no object
  ListOptions o;
  o.delimiter = "/";
  std::vector<std::string> expected = {"P:a-b/", "a.txt", "P:a/", "P:b/", "c", "P:d/"};
  EXPECT_EQ(ListItems(*store_, o), expected);
  for (size_t max_keys = 1; max_keys <= 7; ++max_keys) {
    o.max_keys = max_keys;
    EXPECT_EQ(ListItems(*store_, o), expected) << "max_keys " << max_keys;
  }
  o.max_keys = 1000;
  o.prefix = "b/";
  EXPECT_EQ(ListItems(*store_, o), (std::vector<std::string>{"P:b/x/", "b/y"}));
  o.prefix = "a";
  EXPECT_EQ(ListItems(*store_, o), (std::vector<std::string>{"P:a-b/", "a.txt", "P:a/"}));
  o.prefix = "d/e/";
  EXPECT_EQ(ListItems(*store_, o), (std::vector<std::string>{"d/e/f"}));
}

TEST_F(PosixStoreTest, ListMissingOrImpossiblePrefixIsEmpty) {
  ASSERT_TRUE(store_->Put("a/b", "v").ok());
  for (const char* prefix :
       {"nope/", "nope/deeper/x", "a/b/", "a/b/c", "../", "/", "a//", "./a", ".respawn-tmp-x/"}) {
    ListOptions o;
    o.prefix = prefix;
    Result<ListPage> page = store_->List(o);
    ASSERT_TRUE(page.ok()) << prefix << ": " << page.status().ToString();
    EXPECT_TRUE(page->objects.empty()) << prefix;
    EXPECT_TRUE(page->next_token.empty()) << prefix;
  }
  fs::remove_all(root_);  // even the root gone is an empty listing
  ListOptions o;
  EXPECT_TRUE(store_->List(o).ok());
}

// Random trees listed with random prefixes, delimiters and page sizes must list exactly as the
// MemoryStore (the reference model of S3 listing semantics) does.
TEST_F(PosixStoreTest, ListMatchesTheReferenceModel) {
  MemoryStore model("posix-list-model");
  PosixStoreOptions no_sync;  // a logic test: durability is not its subject
  no_sync.fsync = false;
  Result<std::unique_ptr<PosixStore>> opened = PosixStore::Open(root_, no_sync);
  ASSERT_TRUE(opened.ok());
  PosixStore& store = **opened;
  std::mt19937 rng(42);
  const std::vector<std::string> names = {"a", "b", "a.b", "a-", "ab", "0", "\xc3\xa9", "z~"};
  std::set<std::string> keys;
  for (int i = 0; i < 150; ++i) {
    int depth = 1 + static_cast<int>(rng() % 3);
    std::string key;
    for (int d = 0; d < depth; ++d) {
      if (d > 0) key += '/';
      key += names[rng() % names.size()];
    }
    // A filesystem cannot hold both "k" and "k/...".
    bool conflict = false;
    for (const auto& k : keys) {
      if (k.rfind(key + "/", 0) == 0 || key.rfind(k + "/", 0) == 0) conflict = true;
    }
    if (conflict || keys.count(key)) continue;
    keys.insert(key);
    ASSERT_TRUE(store.Put(key, key).ok()) << key;
    ASSERT_TRUE(model.Put(key, key).ok());
  }
  std::vector<std::string> prefixes = {"", "a", "a/", "a.", "ab/", "b/a", "0/0/", "\xc3", "zz"};
  for (int i = 0; i < 20; ++i) {
    auto it = keys.begin();
    std::advance(it, rng() % keys.size());
    prefixes.push_back(it->substr(0, rng() % (it->size() + 1)));
  }
  for (const std::string& prefix : prefixes) {
    for (const char* delimiter : {"", "/", "a", "-"}) {
      for (size_t max_keys : {1, 2, 5, 1000}) {
        ListOptions o;
        o.prefix = prefix;
        o.delimiter = delimiter;
        o.max_keys = max_keys;
        EXPECT_EQ(ListItems(store, o), ListItems(model, o))
            << "prefix \"" << prefix << "\" delimiter \"" << delimiter << "\" max_keys "
            << max_keys;
      }
    }
  }
}

TEST_F(PosixStoreTest, DeleteMany) {
  std::vector<std::string> keys;
  for (int i = 0; i < 100; ++i) {
    keys.push_back("dm/" + std::to_string(i % 10) + "/" + std::to_string(i));
    ASSERT_TRUE(store_->Put(keys.back(), "v").ok());
  }
  keys.push_back("dm/absent");
  keys.push_back("../escape");
  Result<DeleteResult> r = store_->DeleteMany(keys);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->deleted, 101u);
  ASSERT_EQ(r->failed.size(), 1u);
  EXPECT_EQ(r->failed[0].first, "../escape");
  EXPECT_EQ(r->failed[0].second.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(fs::is_empty(root_));
}

TEST_F(PosixStoreTest, ErrnoMapping) {
  Status denied = PosixStorePeer::ErrnoStatus(EACCES, "create temporary file", root_ + "/a/x");
  EXPECT_EQ(denied.code(), StatusCode::kPermissionDenied);
  const std::string& m = denied.message();
  EXPECT_NE(m.find(root_ + "/a/x"), std::string::npos) << m;
  EXPECT_NE(m.find("uid " + std::to_string(::geteuid())), std::string::npos) << m;
  // The path does not exist: the nearest existing parent (the root) is described.
  struct stat st;
  ASSERT_EQ(::stat(root_.c_str(), &st), 0);
  EXPECT_NE(m.find(root_ + " is owned by uid " + std::to_string(st.st_uid) + " gid " +
                   std::to_string(st.st_gid)),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("ownership"), std::string::npos) << m;
  EXPECT_EQ(PosixStorePeer::ErrnoStatus(EPERM, "open", root_).code(),
            StatusCode::kPermissionDenied);

  Status full = PosixStorePeer::ErrnoStatus(ENOSPC, "write", root_ + "/f");
  EXPECT_EQ(full.code(), StatusCode::kInternal);
  EXPECT_NE(full.message().find("no space left on device"), std::string::npos);
  EXPECT_NE(full.message().find(root_ + "/f"), std::string::npos);
  for (int err : {EIO, ESTALE, EINTR, EAGAIN, ETIMEDOUT}) {
    EXPECT_EQ(PosixStorePeer::ErrnoStatus(err, "read", "/p").code(), StatusCode::kUnavailable)
        << err;
  }
  EXPECT_EQ(PosixStorePeer::ErrnoStatus(ENOENT, "open", "/p").code(), StatusCode::kNotFound);
}

// Drops privileges (when root) or removes write permission (otherwise) and checks the message a
// user sees.
TEST_F(PosixStoreTest, PermissionDeniedNamesUidsAndOwner) {
  ASSERT_TRUE(store_->Put("locked/existing", "v").ok());
  if (::geteuid() != 0) {
    fs::permissions(root_ + "/locked", fs::perms::owner_read | fs::perms::owner_exec);
    Status s = store_->Put("locked/new", "v");
    fs::permissions(root_ + "/locked", fs::perms::owner_all);
    EXPECT_EQ(s.code(), StatusCode::kPermissionDenied) << s.ToString();
    EXPECT_NE(s.message().find("uid " + std::to_string(::geteuid())), std::string::npos);
    EXPECT_NE(s.message().find("is owned by uid"), std::string::npos);
    return;
  }
  // Root ignores permission bits: run the write in a child that becomes uid/gid 65534.
  ::chmod(dir_.c_str(), 0755);
  ::chmod(root_.c_str(), 0755);
  ::chmod((root_ + "/locked").c_str(), 0755);
  EXPECT_EXIT(
      {
        if (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0) {
          std::fprintf(stderr, "cannot drop privileges\n");
          std::_Exit(2);
        }
        Status s = store_->Put("locked/new", "v");
        std::fprintf(stderr, "%s\n", s.ToString().c_str());
        std::_Exit(s.code() == StatusCode::kPermissionDenied ? 0 : 1);
      },
      ::testing::ExitedWithCode(0),
      "PermissionDenied: .*/locked/.*\\(this process runs as uid 65534 gid 65534; .*/locked is "
      "owned by uid 0 gid 0, mode 0755\\); check the ownership");
}

// A directory that already exists (its creator may have died before fsyncing its parent) is
// made durable before an object goes below it, once per process.
TEST(PosixStoreDurability, ExistingDirectoriesAreSyncedOnce) {
  std::string root = fs::temp_directory_path() / ("respawn-durable-" + std::to_string(::getpid()));
  fs::remove_all(root);
  fs::create_directories(root + "/made/elsewhere");
  auto store = PosixStore::Open(root);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_FALSE(PosixStorePeer::DirKnownDurable(**store, root + "/made/elsewhere"));
  ASSERT_TRUE((*store)->Put("made/elsewhere/x", "1").ok());
  EXPECT_TRUE(PosixStorePeer::DirKnownDurable(**store, root + "/made"));
  EXPECT_TRUE(PosixStorePeer::DirKnownDurable(**store, root + "/made/elsewhere"));
  ASSERT_TRUE((*store)->Put("made/elsewhere/y", "2").ok());
  ASSERT_TRUE((*store)->Put("new/dir/z", "3").ok());
  EXPECT_TRUE(PosixStorePeer::DirKnownDurable(**store, root + "/new/dir"));
  fs::remove_all(root);
}

}  // namespace
}  // namespace respawn

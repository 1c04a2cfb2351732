#include "storage/memory_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace respawn {
namespace {

// Lists every page and returns the items in order: keys as-is, common prefixes as "P:" + prefix.
std::vector<std::string> ListItems(Store& store, ListOptions options, size_t* pages = nullptr) {
  std::vector<std::string> items;
  size_t n = 0;
  for (;;) {
    Result<ListPage> page = store.List(options);
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    if (!page.ok()) break;
    ++n;
    // Merge objects and prefixes in byte order, as S3 returns them.
    std::vector<std::string> merged;
    for (const auto& o : page->objects) merged.push_back(o.key);
    for (const auto& p : page->common_prefixes) merged.push_back(p);
    std::sort(merged.begin(), merged.end());
    for (const auto& m : merged) {
      bool is_prefix = std::find(page->common_prefixes.begin(), page->common_prefixes.end(), m) !=
                       page->common_prefixes.end();
      items.push_back(is_prefix ? "P:" + m : m);
    }
    EXPECT_LE(page->objects.size() + page->common_prefixes.size(), options.max_keys);
    if (page->next_token.empty()) break;
    options.continuation_token = page->next_token;
    if (n > 10000) {
      ADD_FAILURE() << "listing does not end";
      break;
    }
  }
  if (pages) *pages = n;
  return items;
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "memory_store_test.XXXXXX");
    char* made = ::mkdtemp(tmpl.data());
    EXPECT_NE(made, nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(MemoryStoreTest, PutGetStatOverwrite) {
  MemoryStore store("t");
  ASSERT_TRUE(store.Put("a/b", "hello").ok());
  EXPECT_EQ(*store.Get("a/b"), "hello");
  Result<ObjectInfo> info = store.Stat("a/b");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->key, "a/b");
  EXPECT_EQ(info->size, 5u);
  EXPECT_GT(info->mtime_ms, 0);
  EXPECT_FALSE(info->etag.empty());
  ASSERT_TRUE(store.Put("a/b", "bye").ok());
  EXPECT_EQ(*store.Get("a/b"), "bye");
  EXPECT_NE(store.Stat("a/b")->etag, info->etag);
  // "a" and "a/b" can coexist, as on S3.
  ASSERT_TRUE(store.Put("a", "x").ok());
  EXPECT_EQ(*store.Get("a"), "x");
}

TEST(MemoryStoreTest, MissingKeys) {
  MemoryStore store("t");
  EXPECT_EQ(store.Get("nope").status().code(), StatusCode::kNotFound);
  EXPECT_NE(store.Get("nope").status().message().find("nope"), std::string::npos);
  EXPECT_EQ(store.Stat("nope").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store.GetRange("nope", 0, 1).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(store.Delete("nope").ok());
}

TEST(MemoryStoreTest, InvalidKeys) {
  MemoryStore store("t");
  EXPECT_EQ(store.Put("", "x").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store.Put(std::string("a\0b", 3), "x").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store.Put(std::string(1025, 'k'), "x").code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(store.Put(std::string(1024, 'k'), "x").ok());
}

TEST(MemoryStoreTest, PutIfAbsent) {
  MemoryStore store("t");
  PutOptions create;
  create.if_absent = true;
  ASSERT_TRUE(store.Put("k", "first", create).ok());
  Status s = store.Put("k", "second", create);
  EXPECT_EQ(s.code(), StatusCode::kAlreadyExists);
  EXPECT_NE(s.message().find("\"k\""), std::string::npos);
  EXPECT_EQ(*store.Get("k"), "first");
  ASSERT_TRUE(store.Delete("k").ok());
  EXPECT_TRUE(store.Put("k", "third", create).ok());
}

TEST(MemoryStoreTest, GetRange) {
  MemoryStore store("t");
  ASSERT_TRUE(store.Put("k", "0123456789").ok());
  EXPECT_EQ(*store.GetRange("k", 2, 3), "234");
  EXPECT_EQ(*store.GetRange("k", 8, 100), "89");
  EXPECT_EQ(*store.GetRange("k", 0, 0), "");
  EXPECT_EQ(*store.GetRange("k", 10, 5), "");  // offset == size: empty
  EXPECT_EQ(store.GetRange("k", 11, 1).status().code(), StatusCode::kInvalidArgument);
}

TEST(MemoryStoreTest, ListByteOrderAndPrefix) {
  MemoryStore store("t");
  std::vector<std::string> keys = {"a/b", "a.txt", "a", "a-", "b", "\xff", "\x7f", "A", "a/c/d"};
  for (const auto& k : keys) ASSERT_TRUE(store.Put(k, k).ok());
  std::sort(keys.begin(), keys.end());  // std::string compares bytes as unsigned
  ListOptions all;
  EXPECT_EQ(ListItems(store, all), keys);
  EXPECT_EQ(keys.back(), "\xff");

  ListOptions prefix;
  prefix.prefix = "a/";
  EXPECT_EQ(ListItems(store, prefix), (std::vector<std::string>{"a/b", "a/c/d"}));
  prefix.prefix = "a";
  EXPECT_EQ(ListItems(store, prefix),
            (std::vector<std::string>{"a", "a-", "a.txt", "a/b", "a/c/d"}));
  prefix.prefix = "zzz";
  EXPECT_TRUE(ListItems(store, prefix).empty());
}

TEST(MemoryStoreTest, ListDelimiterAndPagination) {
  MemoryStore store("t");
  for (const char* k : {"a/1", "a/2", "b/x/1", "b/y", "c", "d/", "e"}) {
    ASSERT_TRUE(store.Put(k, "v").ok());
  }
  ListOptions o;
  o.delimiter = "/";
  std::vector<std::string> expected = {"P:a/", "P:b/", "c", "P:d/", "e"};
  EXPECT_EQ(ListItems(store, o), expected);
  for (size_t max_keys : {1, 2, 3, 4, 5, 6}) {
    o.max_keys = max_keys;
    size_t pages = 0;
    EXPECT_EQ(ListItems(store, o, &pages), expected) << "max_keys " << max_keys;
    EXPECT_EQ(pages, (expected.size() + max_keys - 1) / max_keys) << "max_keys " << max_keys;
  }
  o.max_keys = 1000;
  o.prefix = "b/";
  EXPECT_EQ(ListItems(store, o), (std::vector<std::string>{"P:b/x/", "b/y"}));
  o.prefix = "d/";  // the key equal to the prefix is an object
  EXPECT_EQ(ListItems(store, o), (std::vector<std::string>{"d/"}));

  ListOptions flat;
  flat.max_keys = 2;
  size_t pages = 0;
  EXPECT_EQ(ListItems(store, flat, &pages),
            (std::vector<std::string>{"a/1", "a/2", "b/x/1", "b/y", "c", "d/", "e"}));
  EXPECT_EQ(pages, 4u);

  // The token is the last item of the page.
  ListOptions first;
  first.delimiter = "/";
  first.max_keys = 2;
  Result<ListPage> page = store.List(first);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->next_token, "b/");
}

TEST(MemoryStoreTest, ListMultiCharacterDelimiter) {
  MemoryStore store("t");
  for (const char* k : {"x--1--a", "x--1--b", "x--2", "x-3"}) ASSERT_TRUE(store.Put(k, "").ok());
  ListOptions o;
  o.prefix = "x--";
  o.delimiter = "--";
  EXPECT_EQ(ListItems(store, o), (std::vector<std::string>{"P:x--1--", "x--2"}));
}

TEST(MemoryStoreTest, NamedIsProcessWide) {
  auto a = MemoryStore::Named("memory-store-test-named");
  auto b = MemoryStore::Named("memory-store-test-named");
  auto c = MemoryStore::Named("memory-store-test-other");
  EXPECT_EQ(a.get(), b.get());
  EXPECT_NE(a.get(), c.get());
  ASSERT_TRUE(a->Put("k", "v").ok());
  EXPECT_EQ(*b->Get("k"), "v");
  EXPECT_EQ(c->Get("k").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(a->Url(), "memory://memory-store-test-named");
}

TEST(MemoryStoreTest, Capabilities) {
  MemoryStore store("t");
  Capabilities c = store.capabilities();
  EXPECT_TRUE(c.put_if_absent);
  EXPECT_TRUE(c.consistent_listing);
  EXPECT_FALSE(c.atomic_rename);
  EXPECT_FALSE(c.durable_sync);
}

TEST(MemoryStoreTest, FilesRoundTrip) {
  TempDir dir;
  std::string src = dir.path() + "/src.bin";
  std::string data;
  for (int i = 0; i < 100000; ++i) data += static_cast<char>(i * 7);
  {
    std::ofstream out(src, std::ios::binary);
    out << data;
  }
  MemoryStore store("t");
  uint64_t last_done = 0;
  PutOptions po;
  po.progress = [&](uint64_t done, uint64_t) { last_done = done; };
  ASSERT_TRUE(store.PutFile("obj", src, po).ok());
  EXPECT_EQ(last_done, data.size());
  EXPECT_EQ(*store.Get("obj"), data);

  std::string dst = dir.path() + "/dst.bin";
  ASSERT_TRUE(store.GetToFile("obj", dst).ok());
  std::ifstream in(dst, std::ios::binary);
  std::stringstream got;
  got << in.rdbuf();
  EXPECT_EQ(got.str(), data);
  // Only src and dst: no temporary file left.
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    (void)e;
    ++files;
  }
  EXPECT_EQ(files, 2u);

  EXPECT_EQ(store.PutFile("x", dir.path() + "/missing").code(), StatusCode::kNotFound);
  EXPECT_EQ(store.GetToFile("missing", dst).code(), StatusCode::kNotFound);
}

TEST(MemoryStoreTest, DeleteMany) {
  MemoryStore store("t");
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(store.Put("k" + std::to_string(i), "v").ok());
  Result<DeleteResult> r = store.DeleteMany({"k0", "k1", "absent", ""});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->deleted, 3u);
  ASSERT_EQ(r->failed.size(), 1u);
  EXPECT_EQ(r->failed[0].second.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store.Get("k0").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(store.Get("k2").ok());
}

}  // namespace
}  // namespace respawn

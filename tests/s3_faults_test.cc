// respawn-test-servers: radosgw
//
// S3 faults at the HTTP level: every Store operation of S3Store (wrapped in RetryStore, as
// OpenStore wraps it) runs through tests/tools/s3_fault_proxy.py, a real HTTP proxy between
// libcurl and a real radosgw, while the proxy answers 500 / 503 / SlowDown, resets the
// connection before or after the server did the work, truncates response bodies, or stalls.
//
//   FaultOnce.*        one fault on the operation's main request: the operation succeeds with the
//                      right bytes (checked against the server directly, around the proxy), and
//                      the proxy's counters prove the fault landed
//   FaultAlways.*      the fault on every request: the operation fails with a retryable,
//                      one-line error naming the object, within a bound derived from the
//                      configured timeouts (a hang guard, not a speed test), and leaves no
//                      partial result (no file for GetToFile)
//   Ambiguous*         put-if-absent whose first attempt was reset after the write landed
//                      resolves to success; one whose key another writer took between the
//                      attempts resolves to AlreadyExists (the order is forced with a proxy gate)
//
// The proxy is started by this process (one per test binary run) and stopped by its pid.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "storage/retry_store.h"
#include "storage/s3_store.h"
#include "storage/store.h"
#include "test_env.h"
#include "util/hash.h"
#include "util/testing.h"

extern char** environ;

namespace respawn {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr uint64_t kMiB = 1ull << 20;

// Client settings: short timeouts so that stalls and persistent faults end quickly.
constexpr auto kRequestTimeout = std::chrono::milliseconds(1000);
constexpr auto kDeadline = std::chrono::milliseconds(5000);
constexpr int kAttempts = 4;
constexpr double kStallSeconds = 2.5;       // longer than kRequestTimeout
constexpr double kLongStallSeconds = 10.0;  // longer than libcurl's speed window (see below)

std::string RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(rng());
  return s;
}

::testing::AssertionResult SameBytes(std::string_view got, std::string_view want) {
  if (got == want) return ::testing::AssertionSuccess();
  size_t i = 0;
  while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
  return ::testing::AssertionFailure()
         << "got " << got.size() << " bytes (xxh3 " << HexU64(Xxh3(got)) << "), want "
         << want.size() << " bytes (xxh3 " << HexU64(Xxh3(want)) << "); first difference at byte "
         << i;
}

std::string ReadLocalFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void WriteLocalFile(const fs::path& path, std::string_view data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

fs::path ProxyScript() {
  if (const char* env = std::getenv("RESPAWN_FAULT_PROXY"); env != nullptr && *env != '\0') {
    return env;
  }
  return fs::path(RESPAWN_TESTS_DIR) / "tools" / "s3_fault_proxy.py";
}

// ---------------------------------------------------------------------------------------------
// The proxy process and its control endpoint.

class FaultProxy {
 public:
  ~FaultProxy() { Stop(); }

  // Starts the proxy in front of `upstream`; logs go to `dir`.
  Status Start(const std::string& upstream, const fs::path& dir) {
    fs::create_directories(dir);
    const fs::path port_file = dir / "proxy.port";
    log_ = dir / "proxy.log";
    std::string python = access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
    std::vector<std::string> args = {python,   ProxyScript().string(), "--upstream",
                                     upstream, "--port-file",          port_file.string(),
                                     "--log",  log_.string(),          "--exit-with-parent"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    const std::string out = (dir / "proxy.out").string();
    posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    int rc = posix_spawnp(&pid_, python.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) return Internal("cannot start " + python + ": " + std::strerror(rc));
    const auto give_up = Clock::now() + std::chrono::seconds(30);
    while (Clock::now() < give_up) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return Internal("the fault proxy exited at start: " + ReadLocalFile(out));
      }
      std::ifstream in(port_file);
      if (in >> port_) return Status::OK();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return Internal("the fault proxy did not report its port within 30 s: " + ReadLocalFile(out));
  }

  void Stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    for (int i = 0; i < 250; ++i) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  const fs::path& log() const { return log_; }

  // One request to the control endpoint; the JSON answer (or an error).
  Result<json> Control(const std::string& method, const std::string& path,
                       const std::string& body = "") {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return Internal(std::string("socket: ") + std::strerror(errno));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port_));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      close(fd);
      return Unavailable("cannot connect to the fault proxy: " + std::string(std::strerror(errno)));
    }
    std::string request = method + " /__fault__/" + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
                          "Content-Length: " + std::to_string(body.size()) +
                          "\r\nConnection: close\r\n\r\n" + body;
    for (size_t sent = 0; sent < request.size();) {
      ssize_t n = send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) {
        close(fd);
        return Internal("sending to the fault proxy failed");
      }
      sent += static_cast<size_t>(n);
    }
    std::string answer;
    char buf[65536];
    for (;;) {
      ssize_t n = recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) break;
      answer.append(buf, static_cast<size_t>(n));
    }
    close(fd);
    size_t split = answer.find("\r\n\r\n");
    if (answer.rfind("HTTP/1.1 ", 0) != 0 || split == std::string::npos) {
      return Internal("bad answer from the fault proxy: " + answer.substr(0, 200));
    }
    json doc = json::parse(answer.substr(split + 4), nullptr, false);
    if (doc.is_discarded()) return Internal("bad JSON from the fault proxy");
    if (answer.compare(9, 3, "200") != 0) {
      return InvalidArgument("fault proxy: " + doc.value("error", answer.substr(0, 200)));
    }
    return doc;
  }

  Status SetRules(const json& rules) {
    json doc = {{"rules", rules}, {"seed", 7}};
    Result<json> r = Control("PUT", "rules", doc.dump());
    return r.ok() ? Status::OK() : r.status();
  }

  // How often rule `index` fired since the rules were set (-1 when unknown).
  int Fired(size_t index) {
    Result<json> stats = Control("GET", "stats");
    if (!stats.ok() || index >= (*stats)["rules"].size()) return -1;
    return (*stats)["rules"][index].value("fired", -1);
  }

  int Held(const std::string& gate) {
    Result<json> stats = Control("GET", "stats");
    if (!stats.ok()) return -1;
    return (*stats)["held"].value(gate, 0);
  }

  std::string Events() {
    Result<json> stats = Control("GET", "stats");
    return stats.ok() ? (*stats)["events"].dump() : stats.status().ToString();
  }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  fs::path log_;
};

// ---------------------------------------------------------------------------------------------
// Operations and faults.

// Which request of an operation a fault hits.
struct Target {
  std::string method;                                        // regex
  std::string path;                                          // regex searched in the target, "" any
  std::vector<std::pair<std::string, std::string>> headers;  // name, regex
  bool has_body = true;  // the answer carries a body (truncate applies)
};

struct Env;

struct Op {
  std::string name;
  Target target;
  // Writes what the operation needs, directly to the server (not through the proxy).
  std::function<void(Env&)> setup;
  // Runs the operation through the proxy; its status.
  std::function<Status(Env&)> run;
  // After a success: checks the result and the server's state (directly).
  std::function<void(Env&)> verify;
  // After a failure: checks nothing partial is left (may be empty).
  std::function<void(Env&)> verify_failed;
};

struct Env {
  std::shared_ptr<Store> store;   // S3Store through the proxy, wrapped in RetryStore
  std::shared_ptr<Store> direct;  // S3Store straight to the server
  fs::path scratch;               // local files
  std::string key = "obj";
  std::string data;               // what the operation writes or should read
  std::string result;             // what a read returned
  std::vector<std::string> keys;  // list / delete-many
  ObjectInfo info;                // stat
};

json RuleFor(const Target& t, json rule) {
  rule["method"] = t.method;
  if (!t.path.empty()) rule["path"] = t.path;
  if (!t.headers.empty()) {
    json headers = json::object();
    for (const auto& [name, regex] : t.headers) headers[name] = regex;
    rule["headers"] = headers;
  }
  return rule;
}

struct Fault {
  std::string name;
  json rule;        // without the match fields
  bool needs_body;  // applies only to answers with a body
};

const std::vector<Fault>& Faults() {
  static const std::vector<Fault> faults = {
      {"error500", {{"fault", "error"}, {"status", 500}}, false},
      {"error503", {{"fault", "error"}, {"status", 503}}, false},
      {"slowdown", {{"fault", "slowdown"}}, false},
      {"error500_after_forwarding",
       {{"fault", "error"}, {"status", 500}, {"when", "after"}},
       false},
      {"reset_before_forwarding", {{"fault", "reset"}, {"when", "before"}}, false},
      {"reset_after_forwarding", {{"fault", "reset"}, {"when", "after"}}, false},
      {"truncate", {{"fault", "truncate"}, {"keep", 0.5}}, true},
      {"stall", {{"fault", "stall"}, {"seconds", kStallSeconds}}, false},
      {"stall_mid_body",
       {{"fault", "stall"}, {"seconds", kStallSeconds}, {"body_bytes", 100}},
       true},
  };
  return faults;
}

void ExpectStored(Env& e, const std::string& key, const std::string& want) {
  Result<std::string> got = e.direct->Get(key);
  ASSERT_OK(got) << key;
  EXPECT_TRUE(SameBytes(*got, want)) << key;
}

void ExpectNoLocalLeftovers(Env& e, const fs::path& target) {
  EXPECT_FALSE(fs::exists(target)) << target << " exists after a failed download";
  for (const auto& entry : fs::directory_iterator(e.scratch)) {
    EXPECT_EQ(entry.path().filename().string().find(".respawn-"), std::string::npos)
        << "temporary file left behind: " << entry.path();
  }
}

const std::vector<Op>& Ops() {
  static const std::vector<Op> ops = [] {
    std::vector<Op> v;
    const Target put{"PUT", "", {}, false};
    const Target put_if_absent{"PUT", "", {{"if-none-match", "\\*"}}, false};

    v.push_back({"put", put, [](Env& e) { e.data = RandomBytes(100 * 1024, 1); },
                 [](Env& e) { return e.store->Put(e.key, e.data); },
                 [](Env& e) { ExpectStored(e, e.key, e.data); }, nullptr});

    v.push_back({"put_if_absent", put_if_absent,
                 [](Env& e) { e.data = RandomBytes(100 * 1024, 2); },
                 [](Env& e) {
                   PutOptions o;
                   o.if_absent = true;
                   return e.store->Put(e.key, e.data, o);
                 },
                 [](Env& e) { ExpectStored(e, e.key, e.data); }, nullptr});

    // Put-if-absent on a key another writer holds: AlreadyExists whatever the faults, and the
    // other writer's bytes stay.
    Target taken = put_if_absent;
    taken.has_body = true;  // the 412 carries an error document
    v.push_back({"put_if_absent_taken", taken,
                 [](Env& e) {
                   e.data = RandomBytes(4096, 3);
                   ASSERT_OK(e.direct->Put(e.key, "someone else's object"));
                 },
                 [](Env& e) {
                   PutOptions o;
                   o.if_absent = true;
                   Status s = e.store->Put(e.key, e.data, o);
                   if (s.IsAlreadyExists()) return Status::OK();
                   if (s.ok()) return Internal("put-if-absent on a taken key succeeded");
                   return s;
                 },
                 [](Env& e) { ExpectStored(e, e.key, "someone else's object"); },
                 [](Env& e) { ExpectStored(e, e.key, "someone else's object"); }});

    // A file over 8 MiB: put-if-absent streams it from disk and reads back through a hash.
    v.push_back({"put_if_absent_file", put_if_absent,
                 [](Env& e) {
                   e.data = RandomBytes(9 * kMiB, 4);
                   WriteLocalFile(e.scratch / "upload.bin", e.data);
                 },
                 [](Env& e) {
                   PutOptions o;
                   o.if_absent = true;
                   return e.store->PutFile(e.key, (e.scratch / "upload.bin").string(), o);
                 },
                 [](Env& e) { ExpectStored(e, e.key, e.data); }, nullptr});

    // Multipart: 11 MiB in 5 MiB parts; one op per request kind it sends.
    auto multipart = [](std::string name, Target t) {
      return Op{std::move(name),
                std::move(t),
                [](Env& e) {
                  e.data = RandomBytes(11 * kMiB, 5);
                  WriteLocalFile(e.scratch / "upload.bin", e.data);
                },
                [](Env& e) { return e.store->PutFile(e.key, (e.scratch / "upload.bin").string()); },
                [](Env& e) { ExpectStored(e, e.key, e.data); },
                nullptr};
    };
    v.push_back(multipart("multipart_create", {"POST", "\\?uploads", {}, true}));
    v.push_back(multipart("multipart_part", {"PUT", "partNumber=2&", {}, false}));
    v.push_back(multipart("multipart_complete", {"POST", "\\?uploadId=", {}, true}));

    auto stored_object = [](size_t size, uint64_t seed) {
      return [size, seed](Env& e) {
        e.data = RandomBytes(size, seed);
        ASSERT_OK(e.direct->Put(e.key, e.data));
      };
    };
    v.push_back({"get",
                 {"GET", "/obj$", {}, true},
                 stored_object(300 * 1024, 6),
                 [](Env& e) {
                   Result<std::string> got = e.store->Get(e.key);
                   if (!got.ok()) return got.status();
                   e.result = std::move(*got);
                   return Status::OK();
                 },
                 [](Env& e) { EXPECT_TRUE(SameBytes(e.result, e.data)); },
                 nullptr});

    v.push_back({"get_range",
                 {"GET", "/obj$", {{"range", "bytes="}}, true},
                 stored_object(300 * 1024, 7),
                 [](Env& e) {
                   Result<std::string> got = e.store->GetRange(e.key, 1000, 50000);
                   if (!got.ok()) return got.status();
                   e.result = std::move(*got);
                   return Status::OK();
                 },
                 [](Env& e) { EXPECT_TRUE(SameBytes(e.result, e.data.substr(1000, 50000))); },
                 nullptr});

    // GetToFile: 3.5 MiB in 1 MiB ranges; the first range and a later one.
    auto get_to_file = [&](std::string name, std::string range) {
      return Op{
          std::move(name),
          {"GET", "/obj$", {{"range", std::move(range)}}, true},
          stored_object(3 * kMiB + kMiB / 2, 8),
          [](Env& e) { return e.store->GetToFile(e.key, (e.scratch / "down.bin").string()); },
          [](Env& e) { EXPECT_TRUE(SameBytes(ReadLocalFile(e.scratch / "down.bin"), e.data)); },
          [](Env& e) { ExpectNoLocalLeftovers(e, e.scratch / "down.bin"); }};
    };
    v.push_back(get_to_file("get_to_file_first", "^bytes=0-"));
    v.push_back(get_to_file("get_to_file_range", "^bytes=2097152-"));

    v.push_back({"stat",
                 {"HEAD", "/obj$", {}, false},
                 stored_object(12345, 9),
                 [](Env& e) {
                   Result<ObjectInfo> info = e.store->Stat(e.key);
                   if (!info.ok()) return info.status();
                   e.info = *info;
                   return Status::OK();
                 },
                 [](Env& e) {
                   ASSERT_OK_AND_ASSIGN(ObjectInfo want, e.direct->Stat(e.key));
                   EXPECT_EQ(e.info.size, 12345u);
                   EXPECT_EQ(e.info.etag, want.etag);
                 },
                 nullptr});

    // List: 7 keys, 3 a page (so pages and continuation tokens go through the proxy too).
    v.push_back({"list",
                 {"GET", "list-type=2", {}, true},
                 [](Env& e) {
                   for (int i = 0; i < 7; ++i) {
                     e.keys.push_back("list/k" + std::to_string(i));
                     ASSERT_OK(e.direct->Put(e.keys.back(), "v"));
                   }
                 },
                 [](Env& e) {
                   ListOptions o;
                   o.prefix = "list/";
                   o.max_keys = 3;
                   e.result.clear();
                   for (int pages = 0; pages < 10; ++pages) {
                     Result<ListPage> page = e.store->List(o);
                     if (!page.ok()) return page.status();
                     for (const auto& obj : page->objects) e.result += obj.key + "\n";
                     if (page->next_token.empty()) break;
                     o.continuation_token = page->next_token;
                   }
                   return Status::OK();
                 },
                 [](Env& e) {
                   std::string want;
                   for (const auto& k : e.keys) want += k + "\n";
                   EXPECT_EQ(e.result, want);
                 },
                 nullptr});

    v.push_back({"delete",
                 {"DELETE", "/obj$", {}, false},
                 stored_object(10, 10),
                 [](Env& e) { return e.store->Delete(e.key); },
                 [](Env& e) {
                   Result<ObjectInfo> info = e.direct->Stat(e.key);
                   EXPECT_TRUE(info.status().IsNotFound()) << info.status().ToString();
                 },
                 nullptr});

    v.push_back({"delete_many",
                 {"POST", "\\?delete", {}, true},
                 [](Env& e) {
                   for (int i = 0; i < 40; ++i) {
                     e.keys.push_back("many/k" + std::to_string(i));
                     ASSERT_OK(e.direct->Put(e.keys.back(), "v"));
                   }
                 },
                 [](Env& e) {
                   Result<DeleteResult> r = e.store->DeleteMany(e.keys);
                   if (!r.ok()) return r.status();
                   if (!r->failed.empty()) return r->FirstError();
                   if (r->deleted != e.keys.size()) {
                     return Internal("deleted " + std::to_string(r->deleted) + " of " +
                                     std::to_string(e.keys.size()));
                   }
                   return Status::OK();
                 },
                 [](Env& e) {
                   Result<std::vector<ObjectInfo>> left = ListAll(*e.direct, "many/");
                   ASSERT_OK(left);
                   EXPECT_TRUE(left->empty()) << left->size() << " keys left";
                 },
                 nullptr});
    return v;
  }();
  return ops;
}

// ---------------------------------------------------------------------------------------------
// The fixture: one proxy per process, one store prefix per test.

class S3FaultsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    unsetenv("RESPAWN_CHAOS");
    auto server = test::UseS3TestServer("radosgw");
    if (!server.ok()) {
      skip_reason_ = new std::string(server.status().ToString());
      return;
    }
    bucket_ = new std::string(server->bucket);
    proxy_dir_ = new fs::path(fs::temp_directory_path() / test::UniqueName("respawn-s3faults"));
    proxy_ = new FaultProxy();
    Status started = proxy_->Start(server->endpoint, *proxy_dir_);
    if (!started.ok()) start_error_ = new std::string(started.ToString());
  }

  static void TearDownTestSuite() {
    if (proxy_ != nullptr) {
      proxy_->Stop();
      delete proxy_;
      proxy_ = nullptr;
    }
    if (proxy_dir_ != nullptr) {
      std::error_code ec;
      if (!::testing::UnitTest::GetInstance()->Failed()) fs::remove_all(*proxy_dir_, ec);
      delete proxy_dir_;
      proxy_dir_ = nullptr;
    }
  }

  void SetUp() override {
    if (skip_reason_ != nullptr) {
      const char* ci = std::getenv("CI");
      if (ci != nullptr && std::string(ci) == "true") {
        FAIL() << "CI=true and no radosgw: " << *skip_reason_;
      }
      GTEST_SKIP() << *skip_reason_;
    }
    ASSERT_EQ(start_error_, nullptr) << *start_error_;
    ASSERT_OK(proxy_->SetRules(json::array()));
    const std::string unique =
        test::UniqueName(::testing::UnitTest::GetInstance()->current_test_info()->name());
    prefix_ = "s3faults/" + unique;
    env_.scratch = *proxy_dir_ / unique;
    fs::create_directories(env_.scratch);

    ASSERT_OK_AND_ASSIGN(S3Config config, S3ConfigFromEnvironment(*bucket_, prefix_));
    config.parallelism = 4;
    Result<std::unique_ptr<S3Store>> direct = S3Store::Open(config);
    ASSERT_OK(direct);
    env_.direct = std::move(*direct);

    config.endpoint = proxy_->url();
    config.connect_timeout = std::chrono::milliseconds(2000);
    config.request_timeout = kRequestTimeout;
    config.retry.max_attempts = kAttempts;
    config.retry.base_delay = std::chrono::milliseconds(20);
    config.retry.max_delay = std::chrono::milliseconds(200);
    config.retry.deadline = kDeadline;
    config.multipart_threshold = 6 * kMiB;
    config.part_size = 5 * kMiB;
    config.download_chunk = kMiB;
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<S3Store> proxied, S3Store::Open(config));
    s3_ = proxied.get();
    env_.store =
        std::make_shared<RetryStore>(std::shared_ptr<S3Store>(std::move(proxied)), config.retry);
    // Learn put-if-absent support before any fault is set (the probe is not under test here).
    Result<bool> probed = s3_->ProbePutIfAbsent();
    ASSERT_TRUE(probed.ok() && *probed) << "radosgw should support put-if-absent";
  }

  void TearDown() override {
    if (proxy_ != nullptr && start_error_ == nullptr && skip_reason_ == nullptr) {
      if (HasFailure()) std::cerr << "proxy events: " << proxy_->Events() << "\n";
      EXPECT_OK(proxy_->SetRules(json::array()));
    }
    if (env_.direct != nullptr) {
      Result<std::vector<ObjectInfo>> all = ListAll(*env_.direct, "");
      if (all.ok() && !all->empty()) {
        std::vector<std::string> keys;
        for (const auto& o : *all) keys.push_back(o.key);
        (void)env_.direct->DeleteMany(keys);
      }
    }
  }

  // Runs `fn` in a thread; fails the test (and ends the process: the thread cannot be stopped)
  // when it has not returned after `bound`, so a hang is reported as one.
  Status RunBounded(const std::function<Status()>& fn, std::chrono::milliseconds bound,
                    std::chrono::milliseconds* took) {
    auto task = std::make_shared<std::packaged_task<Status()>>(fn);
    std::future<Status> done = task->get_future();
    const auto start = Clock::now();
    std::thread([task] { (*task)(); }).detach();
    if (done.wait_for(bound) != std::future_status::ready) {
      ADD_FAILURE() << "the operation hung: no answer after " << bound.count()
                    << " ms; proxy events: " << proxy_->Events();
      std::cerr.flush();
      proxy_->Stop();
      std::_Exit(1);
    }
    *took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
    return done.get();
  }

  static inline std::string* skip_reason_ = nullptr;
  static inline std::string* start_error_ = nullptr;
  static inline std::string* bucket_ = nullptr;
  static inline fs::path* proxy_dir_ = nullptr;
  static inline FaultProxy* proxy_ = nullptr;

  std::string prefix_;
  Env env_;
  S3Store* s3_ = nullptr;
};

// A generous bound on any operation under faults: RetryStore and S3Http each retry within the
// deadline (and the last attempt of each may start just before it), GetToFile sends two rounds
// of requests, and a stall holds an answer kStallSeconds. A hang goes far past it; slowness does
// not come close.
constexpr auto kHangBound = 4 * kDeadline + std::chrono::seconds(30);

struct Case {
  const Op* op;
  const Fault* fault;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.op->name << " under " << c.fault->name; }

std::string CaseName(const ::testing::TestParamInfo<Case>& info) {
  return info.param.op->name + "__" + info.param.fault->name;
}

std::vector<Case> OnceCases() {
  std::vector<Case> cases;
  for (const Op& op : Ops()) {
    for (const Fault& fault : Faults()) {
      if (fault.needs_body && !op.target.has_body) continue;  // nothing to cut or hold mid-body
      cases.push_back({&op, &fault});
    }
  }
  return cases;
}

std::vector<Case> AlwaysCases() {
  std::vector<Case> cases;
  for (const Op& op : Ops()) {
    // These differ from their siblings only in which request a single fault hits.
    if (op.name == "multipart_part" || op.name == "multipart_complete" ||
        op.name == "get_to_file_range") {
      continue;
    }
    for (const Fault& fault : Faults()) {
      if (fault.name == "error503" || fault.name == "reset_before_forwarding" ||
          fault.name == "stall") {
        cases.push_back({&op, &fault});
      }
    }
  }
  return cases;
}

class FaultOnce : public S3FaultsTest, public ::testing::WithParamInterface<Case> {};
class FaultAlways : public S3FaultsTest, public ::testing::WithParamInterface<Case> {};

TEST_P(FaultOnce, OperationSucceedsWithTheRightBytes) {
  const Op& op = *GetParam().op;
  const Fault& fault = *GetParam().fault;
  ASSERT_NO_FATAL_FAILURE(op.setup(env_));
  json rule = RuleFor(op.target, fault.rule);
  rule["nth"] = 1;
  ASSERT_OK(proxy_->SetRules(json::array({rule})));

  std::chrono::milliseconds took{};
  Status s = RunBounded([&] { return op.run(env_); }, kHangBound, &took);
  EXPECT_OK(s) << op.name << " under " << fault.name;
  EXPECT_EQ(proxy_->Fired(0), 1) << "the fault did not land; events: " << proxy_->Events();
  ASSERT_OK(proxy_->SetRules(json::array()));
  if (s.ok()) op.verify(env_);
}

TEST_P(FaultAlways, OperationFailsClearlyWithinItsTimeouts) {
  const Op& op = *GetParam().op;
  const Fault& fault = *GetParam().fault;
  ASSERT_NO_FATAL_FAILURE(op.setup(env_));
  // Every request of the operation, whatever its kind.
  json rule = fault.rule;
  // A stall long enough to fail large transfers too: libcurl's low-speed check averages over
  // about 5 s, so right after a fast upload a shorter stall goes unnoticed (and the transfer
  // then rightly succeeds).
  if (rule["fault"] == "stall") rule["seconds"] = kLongStallSeconds;
  ASSERT_OK(proxy_->SetRules(json::array({rule})));

  std::chrono::milliseconds took{};
  Status s = RunBounded([&] { return op.run(env_); }, kHangBound, &took);
  const int fired = proxy_->Fired(0);
  ASSERT_OK(proxy_->SetRules(json::array()));
  ASSERT_FALSE(s.ok()) << op.name << " succeeded although every request failed";
  EXPECT_TRUE(RetryPolicy::IsRetryable(s))
      << "want Unavailable or DeadlineExceeded, got " << s.ToString();
  // (A large transfer's first stalled attempt can use up the whole deadline: one is enough.)
  EXPECT_GE(fired, 1) << "the fault never landed";
  EXPECT_NE(s.message().find("s3://" + *bucket_), std::string::npos)
      << "the error does not name the object: " << s.ToString();
  EXPECT_EQ(s.message().find('\n'), std::string::npos) << "not one line: " << s.ToString();
  std::cout << op.name << " under persistent " << fault.name << ": " << took.count() << " ms, "
            << fired << " requests failed: " << s.ToString() << "\n";
  if (op.verify_failed) op.verify_failed(env_);
}

INSTANTIATE_TEST_SUITE_P(S3, FaultOnce, ::testing::ValuesIn(OnceCases()), CaseName);
INSTANTIATE_TEST_SUITE_P(S3, FaultAlways, ::testing::ValuesIn(AlwaysCases()), CaseName);

// The ambiguous put-if-absent, again and again: the first kAttempts sends of the PUT are all
// reset after the server stored the object. Whichever layer then meets the 412 (S3Http's next
// attempt, or RetryStore's after S3Http gave up) must read the object back and find its own.
TEST_F(S3FaultsTest, AmbiguousPutIfAbsentResolvesToOurWrite) {
  const std::string data = RandomBytes(64 * 1024, 11);
  json rule = {{"fault", "reset"},
               {"when", "after"},
               {"method", "PUT"},
               {"headers", {{"if-none-match", "\\*"}}},
               {"times", kAttempts}};
  ASSERT_OK(proxy_->SetRules(json::array({rule})));
  PutOptions o;
  o.if_absent = true;
  std::chrono::milliseconds took{};
  Status s = RunBounded([&] { return env_.store->Put("claim", data, o); }, kHangBound, &took);
  EXPECT_EQ(proxy_->Fired(0), kAttempts) << proxy_->Events();
  EXPECT_OK(s);
  ExpectStored(env_, "claim", data);
}

// The other side: the first attempt is reset before it reaches the server (so the client
// cannot know whether it landed), and another writer takes the key before the retry. The retry
// meets a 412 and reads back someone else's bytes: AlreadyExists, never success.
TEST_F(S3FaultsTest, AmbiguousPutIfAbsentLosesToAnotherWriter) {
  const std::string mine = RandomBytes(64 * 1024, 12);
  const std::string theirs = RandomBytes(64 * 1024, 13);
  json rule = {{"fault", "reset"}, {"when", "before"},
               {"method", "PUT"},  {"headers", {{"if-none-match", "\\*"}}},
               {"nth", 1},         {"hold", "first-attempt"}};
  ASSERT_OK(proxy_->SetRules(json::array({rule})));
  PutOptions o;
  o.if_absent = true;
  std::future<Status> mine_done =
      std::async(std::launch::async, [&] { return env_.store->Put("claim", mine, o); });
  // Wait until the first attempt sits at the gate, then let the other writer win.
  for (int i = 0; i < 1000 && proxy_->Held("first-attempt") < 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(proxy_->Held("first-attempt"), 1) << proxy_->Events();
  ASSERT_OK(env_.direct->Put("claim", theirs, o));
  ASSERT_OK(proxy_->Control("POST", "release/first-attempt"));
  ASSERT_EQ(mine_done.wait_for(kHangBound), std::future_status::ready) << "put-if-absent hung";
  Status s = mine_done.get();
  EXPECT_EQ(proxy_->Fired(0), 1) << proxy_->Events();
  EXPECT_TRUE(s.IsAlreadyExists()) << "want AlreadyExists, got " << s.ToString();
  ExpectStored(env_, "claim", theirs);
}

// The put-if-absent probe itself meets an ambiguous failure: its first PUT is reset after the
// server stored the probe object, the retry gets 412. The probe must still find that the server
// supports put-if-absent (the key is random: nobody else wrote it).
TEST_F(S3FaultsTest, PutIfAbsentProbeSurvivesAnAmbiguousFirstPut) {
  ASSERT_OK_AND_ASSIGN(S3Config config, S3ConfigFromEnvironment(*bucket_, prefix_));
  config.endpoint = proxy_->url();
  config.request_timeout = kRequestTimeout;
  config.retry.base_delay = std::chrono::milliseconds(20);
  config.retry.deadline = kDeadline;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<S3Store> fresh, S3Store::Open(config));
  json rule = {{"fault", "reset"},
               {"when", "after"},
               {"method", "PUT"},
               {"path", "respawn-probe"},
               {"nth", 1}};
  ASSERT_OK(proxy_->SetRules(json::array({rule})));
  Result<bool> probed = fresh->ProbePutIfAbsent();
  EXPECT_EQ(proxy_->Fired(0), 1) << proxy_->Events();
  ASSERT_OK(probed);
  EXPECT_TRUE(*probed) << "the probe concluded radosgw lacks put-if-absent";
}

// The proxy passes large bodies, keep-alive and SigV4 unchanged: a 40 MiB multipart upload and
// a download in parallel ranges through it, without faults, come back byte for byte.
TEST_F(S3FaultsTest, LargeTransfersPassUnchanged) {
  const std::string data = RandomBytes(40 * kMiB, 14);
  WriteLocalFile(env_.scratch / "big.bin", data);
  ASSERT_OK(env_.store->PutFile("big", (env_.scratch / "big.bin").string()));
  ASSERT_OK(env_.store->GetToFile("big", (env_.scratch / "big.back").string()));
  EXPECT_TRUE(SameBytes(ReadLocalFile(env_.scratch / "big.back"), data));
  ExpectStored(env_, "big", data);
}

}  // namespace
}  // namespace respawn

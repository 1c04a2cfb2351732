// respawn-test-servers: postgres swift radosgw
// The commit coordinator (src/ledger/coordinator.h) on a real PostgreSQL 15 (scripts/pg-server.sh),
// and the ledger committing through it on real stores: Swift (no put-if-absent), and radosgw and
// a local directory treated as if they had none (force_lease).
//
// The acceptance test of "safety never rests on a clock": two writer processes, one stopped
// with SIGSTOP in the middle of a commit until every timeout it has (retry deadlines; no lease in
// this mode) has passed while the other takes over and commits, then resumed with SIGCONT. No
// commit either process acknowledged may be lost, the chain must replay without DataLoss, and
// the resumed one must be fenced and commit nothing after the other's claim.
//
// Without RESPAWN_TEST_PG_ENV (and the S3 env files) the cases skip, unless CI=true, where they
// fail. ctest sets them.
#include "ledger/coordinator.h"

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "ledger/ledger.h"
#include "ledger/record.h"
#include "storage/store_url.h"
#include "test_env.h"
#include "util/crash_point.h"
#include "util/hash.h"
#include "util/testing.h"

namespace respawn::ledger {
namespace {

constexpr char kNs[] = "coord/main";

// Skips (or, with CI=true, fails) when a server's env is not given; fails when it is given but
// unusable.
#define SKIP_OR_FAIL(status)                                                         \
  do {                                                                               \
    const Status& st_ = (status);                                                    \
    if (st_.IsNotFound() && !test::ServersRequired()) GTEST_SKIP() << st_.message(); \
    FAIL() << st_.ToString();                                                        \
  } while (0)

RetryPolicy FastRetry() {
  RetryPolicy r;
  r.max_attempts = 5;
  r.base_delay = std::chrono::milliseconds(5);
  r.max_delay = std::chrono::milliseconds(50);
  r.deadline = std::chrono::seconds(2);
  return r;
}

std::string WithApplicationName(const std::string& url, const std::string& name) {
  return url + (url.find('?') == std::string::npos ? "?" : "&") + "application_name=" + name;
}

// A separate libpq connection for the test's own SQL (what an operator would do with psql).
class AdminConnection {
 public:
  explicit AdminConnection(const std::string& url) : conn_(PQconnectdb(url.c_str())) {}
  ~AdminConnection() { PQfinish(conn_); }
  bool ok() const { return PQstatus(conn_) == CONNECTION_OK; }
  std::string error() const { return PQerrorMessage(conn_); }
  // Runs `sql`; returns the first column of the first row ("" when none), or "ERROR: ...".
  std::string Query(const std::string& sql) {
    PGresult* r = PQexec(conn_, sql.c_str());
    std::string out;
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_TUPLES_OK) {
      if (PQntuples(r) > 0) out = PQgetvalue(r, 0, 0);
    } else if (st != PGRES_COMMAND_OK) {
      out = std::string("ERROR: ") + PQresultErrorMessage(r);
    }
    PQclear(r);
    return out;
  }

 private:
  PGconn* conn_;
};

class CoordinatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto pg = test::UsePgTestServer();
    if (!pg.ok()) SKIP_OR_FAIL(pg.status());
    pg_ = *pg;
    ASSERT_OK_AND_ASSIGN(auto c, OpenCoordinator(pg_.url));
    coordinator_ = c;
    ns_ = test::UniqueName("ns");
  }

  test::PgTestServer pg_;
  std::shared_ptr<CommitCoordinator> coordinator_;
  std::string ns_;
};

TEST_F(CoordinatorTest, CreateIfAbsentIsExclusiveAndReadable) {
  EXPECT_EQ(coordinator_->Url().find(pg_.password), std::string::npos) << coordinator_->Url();
  ASSERT_EQ(coordinator_->Latest(ns_).value(), 0u);
  ASSERT_OK(coordinator_->CreateIfAbsent(ns_, 1, std::string("one\0bytes", 9)));
  Status again = coordinator_->CreateIfAbsent(ns_, 1, "other");
  EXPECT_TRUE(again.IsAlreadyExists()) << again.ToString();
  ASSERT_OK(coordinator_->CreateIfAbsent(ns_, 2, "two"));
  ASSERT_OK(coordinator_->CreateIfAbsent(ns_, 5, "five"));
  EXPECT_EQ(coordinator_->Latest(ns_).value(), 5u);
  ASSERT_OK_AND_ASSIGN(auto rows, coordinator_->Read(ns_, 1, 4));
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows.at(1), std::string("one\0bytes", 9));  // exact bytes, NUL included
  EXPECT_EQ(rows.at(2), "two");
  // Namespaces are separate.
  const std::string other = ns_ + "-other";
  EXPECT_EQ(coordinator_->Latest(other).value(), 0u);
  ASSERT_OK(coordinator_->CreateIfAbsent(other, 1, "x"));
  EXPECT_EQ(coordinator_->Read(ns_, 1, 1).value().at(1), std::string("one\0bytes", 9));
  // GC deletes strictly below.
  ASSERT_OK_AND_ASSIGN(auto deleted, coordinator_->DeleteBelow(ns_, 5));
  EXPECT_EQ(deleted, 2u);
  EXPECT_EQ(coordinator_->Latest(ns_).value(), 5u);
  EXPECT_EQ(coordinator_->Read(ns_, 1, 10).value().size(), 1u);
  EXPECT_EQ(coordinator_->Read(other, 1, 1).value().size(), 1u);
  EXPECT_EQ(coordinator_->CreateIfAbsent(ns_, 0, "x").code(), StatusCode::kInvalidArgument);
}

// Eight connections race for every sequence: exactly one wins each, and the row is its bytes.
TEST_F(CoordinatorTest, ThreadsRacingForEachRecordHaveOneWinner) {
  constexpr int kThreads = 8;
  constexpr uint64_t kRecords = 40;
  std::vector<std::shared_ptr<CommitCoordinator>> connections;
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_OK_AND_ASSIGN(auto c, OpenCoordinator(pg_.url));
    connections.push_back(c);
  }
  std::vector<std::vector<uint64_t>> won(kThreads);
  std::vector<std::thread> threads;
  std::atomic<int> errors{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (uint64_t s = 1; s <= kRecords; ++s) {
        Status st = connections[t]->CreateIfAbsent(ns_, s, "thread " + std::to_string(t));
        if (st.ok()) {
          won[t].push_back(s);
        } else if (!st.IsAlreadyExists()) {
          ++errors;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(errors.load(), 0);
  std::map<uint64_t, int> winner;
  for (int t = 0; t < kThreads; ++t) {
    for (uint64_t s : won[t]) EXPECT_TRUE(winner.emplace(s, t).second) << "two winners of " << s;
  }
  EXPECT_EQ(winner.size(), kRecords);
  ASSERT_OK_AND_ASSIGN(auto rows, coordinator_->Read(ns_, 1, kRecords));
  for (const auto& [s, t] : winner) EXPECT_EQ(rows.at(s), "thread " + std::to_string(t)) << s;
}

// The same between processes, each with its own connection.
TEST_F(CoordinatorTest, ProcessesRacingForEachRecordHaveOneWinner) {
  constexpr int kProcesses = 4;
  constexpr uint64_t kRecords = 30;
  std::vector<std::pair<pid_t, int>> children;
  for (int p = 0; p < kProcesses; ++p) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    std::fflush(nullptr);
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(fds[0]);
      auto c = OpenCoordinator(pg_.url);
      if (!c.ok()) ::_exit(3);
      std::string wins;
      for (uint64_t s = 1; s <= kRecords; ++s) {
        Status st = (*c)->CreateIfAbsent(ns_, s, "process " + std::to_string(p));
        if (st.ok()) wins += std::to_string(s) + "\n";
        if (!st.ok() && !st.IsAlreadyExists()) ::_exit(4);
      }
      ssize_t n = ::write(fds[1], wins.data(), wins.size());
      ::_exit(n == static_cast<ssize_t>(wins.size()) ? 0 : 5);
    }
    ::close(fds[1]);
    children.emplace_back(pid, fds[0]);
  }
  std::map<uint64_t, int> winner;
  for (int p = 0; p < kProcesses; ++p) {
    std::string out;
    char buf[256];
    for (ssize_t n; (n = ::read(children[p].second, buf, sizeof(buf))) > 0;) out.append(buf, n);
    ::close(children[p].second);
    int status = 0;
    ASSERT_EQ(::waitpid(children[p].first, &status, 0), children[p].first);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child " << p << ": " << status;
    std::istringstream lines(out);
    for (uint64_t s; lines >> s;)
      EXPECT_TRUE(winner.emplace(s, p).second) << "two winners of " << s;
  }
  EXPECT_EQ(winner.size(), kRecords);
  ASSERT_OK_AND_ASSIGN(auto rows, coordinator_->Read(ns_, 1, kRecords));
  for (const auto& [s, p] : winner) EXPECT_EQ(rows.at(s), "process " + std::to_string(p)) << s;
}

// The server drops the connection (pg_terminate_backend, as a restart or a network cut would):
// the next call says Unavailable, the one after reconnects.
TEST_F(CoordinatorTest, ReconnectsAfterTheConnectionIsDropped) {
  const std::string app = "respawn-test-" + HexU64(Xxh3(ns_)).substr(0, 12);
  ASSERT_OK_AND_ASSIGN(auto c, OpenCoordinator(WithApplicationName(pg_.url, app)));
  ASSERT_OK(c->CreateIfAbsent(ns_, 1, "a"));
  AdminConnection admin(pg_.url);
  ASSERT_TRUE(admin.ok()) << admin.error();
  EXPECT_EQ(admin.Query("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
                        "application_name = '" +
                        app + "'"),
            "1");
  Status broken = c->CreateIfAbsent(ns_, 2, "b");
  EXPECT_EQ(broken.code(), StatusCode::kUnavailable) << broken.ToString();
  EXPECT_EQ(c->Latest(ns_).ValueOr(999), 1u);  // reconnected; the insert did not happen
  ASSERT_OK(c->CreateIfAbsent(ns_, 2, "b"));
}

TEST_F(CoordinatorTest, ConfigurationErrorsNameTheUrlAndTheFixButNoPassword) {
  struct Case {
    std::string url;
    StatusCode code;
    std::string says;
  };
  const std::string host = "127.0.0.1:" + pg_.port;
  const std::string wrong_password = "not-the-password-" + pg_.password.substr(0, 4);
  std::vector<Case> cases = {
      {"postgresql://respawn:" + wrong_password + "@" + host + "/postgres",
       StatusCode::kFailedPrecondition, "rejected the credentials"},
      {"postgresql://respawn:" + pg_.password + "@" + host + "/no_such_database",
       StatusCode::kFailedPrecondition, "does not exist"},
      {"postgresql://respawn:" + pg_.password + "@127.0.0.1:1/postgres",
       StatusCode::kFailedPrecondition, "is PostgreSQL running there"},
      {"mysql://respawn@" + host + "/postgres", StatusCode::kInvalidArgument,
       "not a PostgreSQL URL"},
      {"postgresql://respawn@" + host + "/postgres?nonsense_option=1", StatusCode::kInvalidArgument,
       "does not parse"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(RedactCoordinatorUrl(c.url));
    auto opened = OpenCoordinator(c.url);
    ASSERT_FALSE(opened.ok());
    EXPECT_EQ(opened.status().code(), c.code) << opened.status().ToString();
    const std::string& m = opened.status().message();
    EXPECT_NE(m.find(c.says), std::string::npos) << m;
    EXPECT_EQ(m.find(pg_.password), std::string::npos) << "password in: " << m;
    EXPECT_EQ(m.find(wrong_password), std::string::npos) << "password in: " << m;
    if (c.code == StatusCode::kFailedPrecondition) {
      EXPECT_NE(m.find("postgresql://respawn@"), std::string::npos) << m;
    }
  }
  EXPECT_EQ(RedactCoordinatorUrl("postgresql://u:secret@h:5/d?sslmode=disable&password=x"),
            "postgresql://u@h:5/d?sslmode=disable");
  EXPECT_EQ(CoordinatorUrlPassword("postgresql://u:se%40cret@h/d"), "se@cret");
}

// ---------------------------------------------------------------------------------------------
// The ledger through the coordinator, on "posix" and "radosgw" made to act without
// put-if-absent (force_lease), and on "swift", which has none.

class CoordinatedLedgerTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    auto pg = test::UsePgTestServer();
    if (!pg.ok()) SKIP_OR_FAIL(pg.status());
    pg_ = *pg;
    ASSERT_OK_AND_ASSIGN(auto c, OpenCoordinator(pg_.url));
    coordinator_ = c;
    if (GetParam() == "posix") {
      char dir[] = "/tmp/respawn-coord-XXXXXX";
      ASSERT_NE(::mkdtemp(dir), nullptr);
      dir_ = dir;
      url_ = dir_;
    } else {
      auto server = test::UseS3TestServer(GetParam());
      if (!server.ok()) SKIP_OR_FAIL(server.status());
      url_ = "s3://" + server->bucket + "/" + test::UniqueName("coord-" + GetParam());
    }
    store_ = OpenStoreAt(url_);
    ASSERT_NE(store_, nullptr);
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
    if (store_ != nullptr && dir_.empty()) {
      auto all = ListAll(*store_, "");
      if (all.ok()) {
        std::vector<std::string> keys;
        for (const auto& o : *all) keys.push_back(o.key);
        (void)store_->DeleteMany(keys);
      }
    }
  }

  static std::shared_ptr<Store> OpenStoreAt(const std::string& url) {
    OpenStoreOptions options;
    options.retry_policy = FastRetry();
    options.retry_policy.deadline = std::chrono::seconds(10);
    auto opened = OpenStore(url, options);
    EXPECT_OK(opened);
    return opened.ok() ? opened->store : nullptr;
  }

  LedgerOptions Opts(LedgerMode mode = LedgerMode::kWrite, uint64_t compaction = 8,
                     std::shared_ptr<CommitCoordinator> coordinator = nullptr) {
    LedgerOptions o;
    o.mode = mode;
    o.compaction_interval = compaction;
    o.retry = FastRetry();
    o.coordinator = coordinator != nullptr ? coordinator : coordinator_;
    o.force_lease = GetParam() != "swift";  // Swift has no put-if-absent of its own
    return o;
  }
  std::unique_ptr<Ledger> MustOpen(const LedgerOptions& o) {
    auto l = Ledger::Open(store_, kNs, o);
    EXPECT_OK(l);
    return l.ok() ? std::move(l).value() : nullptr;
  }
  // A reader of the store alone: what read-only tools without the coordinator see.
  Result<std::unique_ptr<Ledger>> StoreOnlyReader() {
    LedgerOptions o;
    o.mode = LedgerMode::kReadOnly;
    o.retry = FastRetry();
    return Ledger::Open(store_, kNs, o);
  }
  std::string Where() const { return store_->Url() + "/" + kNs; }
  static Changes Upsert(const std::string& name, const std::string& fingerprint) {
    Changes c;
    Entry e;
    e.fingerprint = fingerprint;
    c.upserts.emplace(name, e);
    return c;
  }

  test::PgTestServer pg_;
  std::shared_ptr<CommitCoordinator> coordinator_;
  std::string dir_;
  std::string url_;
  std::shared_ptr<Store> store_;
};

INSTANTIATE_TEST_SUITE_P(Stores, CoordinatedLedgerTest,
                         ::testing::Values("posix", "swift", "radosgw"),
                         [](const auto& info) { return info.param; });

TEST_P(CoordinatedLedgerTest, CommitsRecoverAndTheStoreHoldsCopies) {
  LedgerState expected;
  {
    auto w = MustOpen(Opts());
    ASSERT_NE(w, nullptr);
    EXPECT_EQ(w->commit_mode(), CommitMode::kCoordinator);
    for (int i = 0; i < 20; ++i) {
      auto seq = w->Commit(Upsert("e" + std::to_string(i), "fp" + std::to_string(i)));
      ASSERT_OK(seq);
    }
    expected = w->state();
    ASSERT_OK(w->Close());
  }
  EXPECT_EQ(expected.commit_mode, "coordinator");
  EXPECT_EQ(coordinator_->Latest(Where()).value(), 21u);
  auto r = MustOpen(Opts(LedgerMode::kReadOnly));
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->state(), expected);
  EXPECT_GT(r->last_recovery().snapshot_sequence, 0u);
  // Each record's copy in the store is the coordinator's row, byte for byte.
  Keys keys(kNs);
  ASSERT_OK_AND_ASSIGN(auto rows, coordinator_->Read(Where(), 1, 21));
  for (const auto& [s, bytes] : rows)
    EXPECT_EQ(store_->Get(keys.Record(s)).ValueOr(""), bytes) << s;
  ASSERT_OK_AND_ASSIGN(auto plain, StoreOnlyReader());
  EXPECT_EQ(plain->state(), expected);
}

TEST_P(CoordinatedLedgerTest, ZombieIsFencedAndAJoinedWriterCommits) {
  auto a = MustOpen(Opts());
  ASSERT_OK(a->Commit(Upsert("a1", "f")));
  auto b = MustOpen(Opts());
  auto st = a->Commit(Upsert("a2", "f"));
  ASSERT_EQ(st.status().code(), StatusCode::kFailedPrecondition) << st.status().ToString();
  EXPECT_NE(st.status().message().find("fenced"), std::string::npos);
  // Join mode works in coordinator mode (GC joins the last run's epoch this way).
  LedgerOptions join = Opts(LedgerMode::kJoin);
  join.run_id = b->run_id();
  auto j = MustOpen(join);
  ASSERT_NE(j, nullptr);
  EXPECT_EQ(j->epoch(), b->epoch());
  ASSERT_OK(j->Commit(Upsert("joined", "f")));
  ASSERT_OK(b->Commit(Upsert("b1", "f")));
  auto r = MustOpen(Opts(LedgerMode::kReadOnly));
  EXPECT_TRUE(r->Find("joined").has_value());
  EXPECT_TRUE(r->Find("b1").has_value());
  EXPECT_FALSE(r->Find("a2").has_value());
}

TEST_P(CoordinatedLedgerTest, ConcurrentWritersEachWithAConnectionLoseNothing) {
  auto owner = MustOpen(Opts());
  constexpr int kThreads = 4;
  constexpr int kEach = 8;
  std::vector<std::unique_ptr<Ledger>> writers;
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_OK_AND_ASSIGN(auto c, OpenCoordinator(pg_.url));
    LedgerOptions o = Opts(LedgerMode::kJoin, 4, c);
    writers.push_back(MustOpen(o));
    ASSERT_NE(writers.back(), nullptr);
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        auto seq =
            writers[t]->Commit(Upsert("t" + std::to_string(t) + "/" + std::to_string(i), "f"));
        EXPECT_OK(seq);
      }
    });
  }
  for (auto& th : threads) th.join();
  auto r = MustOpen(Opts(LedgerMode::kReadOnly));
  EXPECT_EQ(r->sequence(), 1u + kThreads * kEach);
  EXPECT_EQ(r->state().entries.size(), static_cast<size_t>(kThreads * kEach));
  ASSERT_OK_AND_ASSIGN(auto plain, StoreOnlyReader());
  EXPECT_EQ(plain->state(), r->state());
}

// A winner that died after its insert, before writing the store's copy: the coordinator is
// authoritative; the next writer repairs the copy.
TEST_P(CoordinatedLedgerTest, AMissingStoreCopyIsReadFromTheCoordinatorAndRepaired) {
  Keys keys(kNs);
  uint64_t last;
  LedgerState expected;
  {
    auto w = MustOpen(Opts(LedgerMode::kWrite, 1000));
    for (int i = 0; i < 5; ++i) ASSERT_OK(w->Commit(Upsert("e" + std::to_string(i), "f")));
    last = w->sequence();
    expected = w->state();
  }
  const std::string copy = store_->Get(keys.Record(last)).ValueOr("");
  ASSERT_FALSE(copy.empty());
  ASSERT_OK(store_->Delete(keys.Record(last)));
  {
    auto r = MustOpen(Opts(LedgerMode::kReadOnly));
    EXPECT_EQ(r->sequence(), last);
    EXPECT_EQ(r->state(), expected);
    // Readers write nothing.
    EXPECT_TRUE(store_->Stat(keys.Record(last)).status().IsNotFound());
  }
  {
    auto plain = StoreOnlyReader();  // the store alone lags by that record
    ASSERT_OK(plain);
    EXPECT_EQ((*plain)->sequence(), last - 1);
  }
  auto w = MustOpen(Opts());
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(store_->Get(keys.Record(last)).ValueOr(""), copy);
  EXPECT_TRUE(w->Find("e4").has_value());
}

TEST_P(CoordinatedLedgerTest, GcDeletesCoordinatorRowsBelowTheFloor) {
  auto w = MustOpen(Opts(LedgerMode::kWrite, 4));
  for (int i = 0; i < 30; ++i) ASSERT_OK(w->Commit(Upsert("t", "fp" + std::to_string(i))));
  ASSERT_OK_AND_ASSIGN(auto garbage, w->CollectObsolete(1));
  ASSERT_GT(garbage.floor, 0u);
  auto deleted = store_->DeleteMany(garbage.keys);
  ASSERT_TRUE(deleted.ok() && deleted->FirstError().ok());
  ASSERT_OK_AND_ASSIGN(auto rows, coordinator_->Read(Where(), 1, w->sequence()));
  EXPECT_EQ(rows.begin()->first, garbage.floor);
  EXPECT_EQ(rows.size(), w->sequence() - garbage.floor + 1);
  LedgerState expected = w->state();
  ASSERT_OK(w->Close());
  auto again = MustOpen(Opts());
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again->state().entries, expected.entries);
  ASSERT_OK(again->Commit(Upsert("after-gc", "f")));
}

TEST_P(CoordinatedLedgerTest, ACoordinatorWithoutTheLedgersRecordsIsRefused) {
  {
    auto w = MustOpen(Opts());
    ASSERT_OK(w->Commit(Upsert("x", "f")));
  }
  // Another database (here: the rows wiped) than the one the ledger was committed through.
  ASSERT_OK(coordinator_->DeleteBelow(Where(), UINT64_MAX / 2));
  ASSERT_OK_AND_ASSIGN(auto listed_before, ListAll(*store_, ""));
  auto w = Ledger::Open(store_, kNs, Opts());
  ASSERT_EQ(w.status().code(), StatusCode::kFailedPrecondition) << w.status().ToString();
  EXPECT_NE(w.status().message().find("not the database"), std::string::npos);
  EXPECT_EQ(coordinator_->Latest(Where()).value(), 0u);
  EXPECT_EQ(ListAll(*store_, "").value().size(), listed_before.size()) << "something was written";
}

// A ledger written before commit modes were recorded (records without a mode) is adopted by
// its first coordinator-mode writer: the store's last record becomes the first row.
TEST_P(CoordinatedLedgerTest, ALedgerFromBeforeRecordedModesIsAdopted) {
  Keys keys(kNs);
  std::string prev;
  for (uint64_t s = 1; s <= 3; ++s) {
    Record r;
    r.sequence = s;
    r.kind = s == 1 ? RecordKind::kClaim : RecordKind::kCommit;
    r.epoch = 1;
    r.writer = "old-writer";
    r.epoch_owner = "old-writer";
    r.run_id = "old-run";
    r.commit_id = "c" + std::to_string(s);
    r.prev = prev;
    if (s > 1) r.changes = Upsert("old" + std::to_string(s), "f");
    ASSERT_OK_AND_ASSIGN(auto bytes, EncodeRecord(r, &prev));
    ASSERT_EQ(bytes.find("commit_mode"), std::string::npos);
    ASSERT_OK(store_->Put(keys.Record(s), bytes));
  }
  {
    auto w = MustOpen(Opts());
    ASSERT_NE(w, nullptr);
    EXPECT_EQ(w->state().commit_mode, "coordinator");
    EXPECT_EQ(w->epoch(), 2u);
    EXPECT_TRUE(w->Find("old2").has_value());
    ASSERT_OK(w->Commit(Upsert("new", "f")));
  }
  ASSERT_OK_AND_ASSIGN(auto rows, coordinator_->Read(Where(), 1, 10));
  EXPECT_EQ(rows.begin()->first, 3u);  // the old chain's last record is the first row
  EXPECT_EQ(rows.rbegin()->first, 5u);
  auto r = MustOpen(Opts(LedgerMode::kReadOnly));
  EXPECT_TRUE(r->Find("old3").has_value());
  EXPECT_TRUE(r->Find("new").has_value());
  // From now on another mode is refused.
  LedgerOptions lease;
  lease.force_lease = true;
  lease.single_writer = true;
  auto refused = Ledger::Open(store_, kNs, lease);
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
}

// An insert whose answer is lost (the connection broke after it landed) is resolved by reading
// the row back: every commit lands exactly once.
TEST_P(CoordinatedLedgerTest, AmbiguousInsertsAreResolvedByReadingBack) {
  class LostAnswer : public CommitCoordinator {
   public:
    LostAnswer(std::shared_ptr<CommitCoordinator> t, int n) : t_(std::move(t)), left_(n) {}
    std::string Url() const override { return t_->Url(); }
    Status CreateIfAbsent(const std::string& ns, uint64_t s, std::string_view b) override {
      Status st = t_->CreateIfAbsent(ns, s, b);
      if (st.ok() && left_-- > 0) return Unavailable("test: connection lost after the insert");
      return st;
    }
    Result<std::map<uint64_t, std::string>> Read(const std::string& ns, uint64_t f,
                                                 uint64_t l) override {
      return t_->Read(ns, f, l);
    }
    Result<uint64_t> Latest(const std::string& ns) override { return t_->Latest(ns); }
    Result<uint64_t> DeleteBelow(const std::string& ns, uint64_t b) override {
      return t_->DeleteBelow(ns, b);
    }
    std::shared_ptr<CommitCoordinator> t_;
    std::atomic<int> left_;
  };
  auto lossy = std::make_shared<LostAnswer>(coordinator_, 4);
  auto w = MustOpen(Opts(LedgerMode::kWrite, 8, lossy));
  ASSERT_NE(w, nullptr);
  for (int i = 0; i < 5; ++i) {
    ASSERT_OK_AND_ASSIGN(auto seq, w->Commit(Upsert("e" + std::to_string(i), "f")));
    EXPECT_EQ(seq, 2u + i);
  }
  EXPECT_LE(lossy->left_.load(), 0);
  EXPECT_EQ(coordinator_->Latest(Where()).value(), 6u);  // no duplicates, no gaps
  auto r = MustOpen(Opts(LedgerMode::kReadOnly));
  EXPECT_EQ(r->state(), w->state());
}

// ---------------------------------------------------------------------------------------------
// Acceptance: a writer paused with SIGSTOP while committing, resumed after another took over.

struct Ack {
  std::string writer;
  uint64_t sequence = 0;
  std::string name;
};

// What a writer child reports on its pipe, one line each: "writer ID", "ack SEQ NAME",
// "fenced MESSAGE", "error MESSAGE", "done".
struct ChildLog {
  std::string writer;
  std::vector<Ack> acks;
  std::vector<std::string> fenced;
  std::vector<std::string> errors;
  bool done = false;
};

ChildLog ParseChildLog(const std::string& text) {
  ChildLog log;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    std::string word = line.substr(0, line.find(' '));
    std::string rest = line.find(' ') == std::string::npos ? "" : line.substr(line.find(' ') + 1);
    if (word == "writer") log.writer = rest;
    if (word == "ack") {
      Ack a;
      a.writer = log.writer;
      std::istringstream fields(rest);
      fields >> a.sequence >> a.name;
      log.acks.push_back(a);
    }
    if (word == "fenced") log.fenced.push_back(rest);
    if (word == "error") log.errors.push_back(rest);
    if (word == "done") log.done = true;
  }
  return log;
}

std::string ReadAll(int fd) {
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof(buf))) > 0;) out.append(buf, static_cast<size_t>(n));
  return out;
}

class PausedWriterTest : public CoordinatedLedgerTest {
 protected:
  // Forks a writer that opens the ledger and commits `prefix`/0..count-1, reporting on a pipe.
  // `crash_at` arms a crash point spec in the child ("name@N:stop" pauses it).
  pid_t StartWriter(const std::string& prefix, int count, const std::string& crash_at, int* fd) {
    int fds[2];
    if (::pipe(fds) != 0) return -1;
    std::fflush(nullptr);
    pid_t pid = ::fork();
    if (pid != 0) {
      ::close(fds[1]);
      *fd = fds[0];
      return pid;
    }
    ::close(fds[0]);
    FILE* out = ::fdopen(fds[1], "w");
    auto say = [out](const std::string& line) {
      std::fprintf(out, "%s\n", line.c_str());
      std::fflush(out);
    };
    // Its own store client and database connection: nothing of the parent's is shared.
    DisarmAllCrashPoints();
    if (!crash_at.empty()) ArmCrashPoint(crash_at);
    auto c = OpenCoordinator(pg_.url);
    std::shared_ptr<Store> store = OpenStoreAt(url_);
    if (!c.ok() || store == nullptr) {
      say("error cannot open: " + (c.ok() ? std::string("store") : c.status().ToString()));
      ::_exit(3);
    }
    LedgerOptions o = Opts(LedgerMode::kWrite, 4, *c);
    auto l = Ledger::Open(store, kNs, o);
    if (!l.ok()) {
      say("error open: " + l.status().ToString());
      ::_exit(4);
    }
    say("writer " + (*l)->writer_id());
    for (int i = 0; i < count; ++i) {
      std::string name = prefix + "/" + std::to_string(i);
      auto seq = (*l)->Commit(Upsert(name, "fp-" + name));
      if (seq.ok()) {
        say("ack " + std::to_string(*seq) + " " + name);
      } else if (seq.status().code() == StatusCode::kFailedPrecondition &&
                 seq.status().message().find("fenced") != std::string::npos) {
        say("fenced " + seq.status().message());
      } else {
        say("error " + seq.status().ToString());
      }
    }
    say("done");
    std::fclose(out);
    ::_exit(0);
  }

  // Checks the whole chain in the coordinator, record by record from 1: it links up (no
  // DataLoss), every acknowledged commit is there as its writer wrote it and applies, the
  // store's copies equal the rows, and the loser wrote nothing after the winner's claim.
  void CheckChain(const std::vector<Ack>& acks, const std::string& loser,
                  const std::string& winner) {
    const uint64_t latest = coordinator_->Latest(Where()).value();
    ASSERT_OK_AND_ASSIGN(auto rows, coordinator_->Read(Where(), 1, latest));
    ASSERT_EQ(rows.size(), latest) << "the chain has gaps";
    Keys keys(kNs);
    LedgerState state;
    std::string prev;
    std::map<uint64_t, Record> chain;
    std::set<uint64_t> applied;
    uint64_t winner_claim = 0;
    for (uint64_t s = 1; s <= latest; ++s) {
      std::string checksum;
      ASSERT_OK_AND_ASSIGN(auto r, DecodeRecord(keys.Record(s), s, rows.at(s), &checksum));
      ASSERT_EQ(r.prev, prev) << "record " << s << " does not continue the chain";
      prev = checksum;
      if (ApplyRecord(r, state)) applied.insert(s);
      if (r.kind == RecordKind::kClaim && r.writer == winner) winner_claim = s;
      EXPECT_EQ(store_->Get(keys.Record(s)).ValueOr("<missing>"), rows.at(s))
          << "the store's copy of record " << s << " differs";
      chain.emplace(s, std::move(r));
    }
    ASSERT_GT(winner_claim, 0u);
    for (const Ack& a : acks) {
      SCOPED_TRACE("acknowledged " + a.name + " at record " + std::to_string(a.sequence));
      ASSERT_TRUE(chain.count(a.sequence)) << "an acknowledged commit is lost";
      const Record& r = chain.at(a.sequence);
      EXPECT_EQ(r.writer, a.writer) << "its record was overwritten by another writer";
      EXPECT_TRUE(r.changes.upserts.count(a.name));
      EXPECT_TRUE(applied.count(a.sequence)) << "its record is ignored by replay";
      EXPECT_TRUE(state.entries.count(a.name)) << "it is not in the final state";
    }
    for (const auto& [s, r] : chain) {
      if (r.writer == loser) {
        EXPECT_LT(s, winner_claim)
            << "the fenced writer committed record " << s << " after the new writer's claim";
      }
    }
    // Recovery (snapshots, the coordinator) agrees, and so does the store alone.
    auto ledger = MustOpen(Opts(LedgerMode::kReadOnly));
    ASSERT_NE(ledger, nullptr);
    EXPECT_EQ(ledger->state().entries, state.entries);
    ASSERT_OK_AND_ASSIGN(auto plain, StoreOnlyReader());
    EXPECT_EQ(plain->state().entries, state.entries);
  }

  // Runs the scenario with the first writer stopped at `point` on its `nth` hit.
  void PausedWhileCommitting(const std::string& point, int nth) {
    int fd_a = -1, fd_b = -1;
    // Publishes of writer A: its claim is the 1st, its commits "a/0", "a/1" the 2nd and 3rd;
    // it stops in the middle of committing "a/2".
    pid_t a = StartWriter("a", 6, point + "@" + std::to_string(nth) + ":stop", &fd_a);
    ASSERT_GT(a, 0);
    int status = 0;
    ASSERT_EQ(::waitpid(a, &status, WUNTRACED), a);
    ASSERT_TRUE(WIFSTOPPED(status))
        << "writer A was not stopped at " << point << " (exit status " << status << ")";
    // B takes over and commits while A is stopped.
    pid_t b = StartWriter("b", 5, "", &fd_b);
    ASSERT_GT(b, 0);
    std::string log_b = ReadAll(fd_b);
    ::close(fd_b);
    ASSERT_EQ(::waitpid(b, &status, 0), b);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << log_b;
    ChildLog lb = ParseChildLog(log_b);
    ASSERT_TRUE(lb.done) << log_b;
    ASSERT_EQ(lb.acks.size(), 5u) << log_b;
    // Past every timeout A has: its retry deadline (2 s here) and any lease (none in this
    // mode). This is waiting, not a measurement.
    std::this_thread::sleep_for(FastRetry().deadline + std::chrono::seconds(1));
    ASSERT_EQ(::kill(a, SIGCONT), 0);
    std::string log_a = ReadAll(fd_a);
    ::close(fd_a);
    ASSERT_EQ(::waitpid(a, &status, 0), a);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << log_a;
    ChildLog la = ParseChildLog(log_a);
    ASSERT_TRUE(la.done) << log_a;
    EXPECT_TRUE(la.errors.empty()) << log_a;
    // A is fenced from the commit it was in (or the next one) on: every later commit fails.
    ASSERT_FALSE(la.fenced.empty()) << log_a;
    EXPECT_EQ(la.acks.size() + la.fenced.size(), 6u) << log_a;
    for (const Ack& ack : la.acks) EXPECT_LT(ack.sequence, lb.acks.front().sequence) << log_a;
    std::vector<Ack> acks = la.acks;
    acks.insert(acks.end(), lb.acks.begin(), lb.acks.end());
    CheckChain(acks, la.writer, lb.writer);
    std::printf("A acknowledged %zu commits and was fenced %zu times; B acknowledged %zu\n",
                la.acks.size(), la.fenced.size(), lb.acks.size());
  }
};

INSTANTIATE_TEST_SUITE_P(Stores, PausedWriterTest, ::testing::Values("posix", "swift", "radosgw"),
                         [](const auto& info) { return info.param; });

// Stopped before its insert: when it resumes, the record number is B's claim.
TEST_P(PausedWriterTest, StoppedBeforeItsInsertIsFencedAndLosesNothing) {
  PausedWhileCommitting("ledger:before-publish", 4);
}

// Stopped after its insert, before the store's copy: its commit is durable and B reads it
// (and writes the copy); when A resumes it reports success, then is fenced.
TEST_P(PausedWriterTest, StoppedAfterItsInsertKeepsItsCommitAndIsFenced) {
  PausedWhileCommitting("ledger:after-publish", 4);
}

}  // namespace
}  // namespace respawn::ledger

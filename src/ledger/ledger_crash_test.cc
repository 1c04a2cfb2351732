// Crash tests: a child process runs a ledger operation and dies (as if SIGKILLed) at a named
// crash point; the parent then recovers and checks the state is exactly the state before or
// after the operation, never in between, and that writing continues.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <random>
#include <thread>

#include "ledger/ledger.h"
#include "ledger/ledger_test_util.h"
#include "util/crash_point.h"

namespace respawn::ledger {
namespace {

using namespace ::respawn::ledger::testing;  // NOLINT

constexpr char kNs[] = "crash";
constexpr int kCrashed = 137;

enum class Op { kCommit, kOpen, kCollect };

// How the ledger commits (ledger.h, "Commit modes").
enum class Mode { kPutIfAbsent, kSingleWriter, kCoordinator };

struct CrashCase {
  std::string point;
  Op op;
  Mode mode;
  bool lands;  // the operation's changes are visible after the crash
};

std::string CaseName(const ::testing::TestParamInfo<CrashCase>& info) {
  std::string name = info.param.point.substr(info.param.point.find(':') + 1);
  for (char& c : name) {
    if (c == '-') c = '_';
  }
  switch (info.param.mode) {
    case Mode::kPutIfAbsent:
      return name;
    case Mode::kSingleWriter:
      return name + "_lease";
    case Mode::kCoordinator:
      return name + "_coordinator";
  }
  return name;
}

// Every crash point of the ledger with the operation that reaches it. ReachedCrashPoints below
// checks this list is complete.
std::vector<CrashCase> AllCases() {
  std::vector<CrashCase> cases;
  for (Mode mode : {Mode::kPutIfAbsent, Mode::kSingleWriter, Mode::kCoordinator}) {
    cases.push_back({"ledger:before-data", Op::kCommit, mode, false});
    cases.push_back({"ledger:after-data", Op::kCommit, mode, false});
    cases.push_back({"ledger:before-publish", Op::kCommit, mode, false});
    cases.push_back({"ledger:after-publish", Op::kCommit, mode, true});
    cases.push_back({"ledger:before-snapshot", Op::kCommit, mode, true});
    cases.push_back({"ledger:after-snapshot", Op::kCommit, mode, true});
    cases.push_back({"ledger:before-head", Op::kCommit, mode, true});
    cases.push_back({"ledger:after-head", Op::kCommit, mode, true});
    cases.push_back({"ledger:before-claim", Op::kOpen, mode, false});
    cases.push_back({"ledger:after-claim", Op::kOpen, mode, false});
    cases.push_back({"ledger:before-floor", Op::kCollect, mode, false});
    cases.push_back({"ledger:after-floor", Op::kCollect, mode, false});
  }
  cases.push_back({"ledger:lease-acquired", Op::kOpen, Mode::kSingleWriter, false});
  cases.push_back({"ledger:before-lease-renew", Op::kCommit, Mode::kSingleWriter, false});
  cases.push_back({"ledger:after-lease-renew", Op::kCommit, Mode::kSingleWriter, false});
  return cases;
}

// The coordinator of the coordinator cases: a directory every forked child shares.
std::shared_ptr<CommitCoordinator> SharedCoordinator(const std::string& dir) {
  return std::make_shared<StoreCoordinator>(OpenPosix(dir));
}

LedgerOptions CrashOptions(uint64_t compaction, Mode mode = Mode::kPutIfAbsent,
                           const std::string& coordinator_dir = "") {
  LedgerOptions o = Options(LedgerMode::kWrite, compaction);
  o.single_writer = mode == Mode::kSingleWriter;
  if (mode == Mode::kCoordinator) {
    o.force_lease = true;
    o.coordinator = SharedCoordinator(coordinator_dir);
  }
  o.lease.ttl = std::chrono::milliseconds(600);
  o.lease.settle = std::chrono::milliseconds(10);
  o.lease.max_clock_skew = std::chrono::milliseconds(50);
  o.lease.wait = std::chrono::seconds(10);  // a dead child's lease must expire first
  // Lease waits (a dead child's lease expiring, renewals) run on manual time: no test sleeps.
  // Each process has its own clock, as each has its own steady clock.
  o.clock = std::make_shared<ManualClock>();
  return o;
}

// Forks; the child runs `body` and exits with its return value (or dies at a crash point).
int RunChild(const std::function<int()>& body) {
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    int code = body();
    _exit(code);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid) return -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 1000 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

int ChildFail(const char* what, const Status& st) {
  std::fprintf(stderr, "child: %s: %s\n", what, st.ToString().c_str());
  return 3;
}

class CrashTest : public ::testing::TestWithParam<CrashCase> {
 protected:
  std::shared_ptr<Store> MakeStore() {
    std::shared_ptr<Store> posix = OpenPosix(dir_.path());
    if (GetParam().mode == Mode::kSingleWriter) {
      return std::make_shared<NoConditionalPutStore>(posix);
    }
    return posix;
  }
  LedgerOptions Opts(uint64_t compaction) {
    return CrashOptions(compaction, GetParam().mode, coordinator_dir_.path());
  }
  LedgerOptions ReadOpts() {
    LedgerOptions o = Opts(1);
    o.mode = LedgerMode::kReadOnly;
    return o;
  }
  TempDir dir_;
  TempDir coordinator_dir_;
};

TEST_P(CrashTest, StateIsBeforeOrAfterNeverBetween) {
  const CrashCase& c = GetParam();
  std::shared_ptr<Store> store = MakeStore();

  // History before the crash.
  const std::string old_bytes = "old version of a";
  const std::string new_bytes = "new version of a, written by the child";
  {
    auto w = Ledger::Open(store, kNs, Opts(3));
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    auto key = (*w)->DataKey("a", "fp1");
    ASSERT_TRUE(key.ok());
    auto o = (*w)->PutData(*key, old_bytes);
    ASSERT_TRUE(o.ok());
    ASSERT_TRUE((*w)->Commit(Upsert("a", MakeEntry("fp1", {*o}))).ok());
    ASSERT_TRUE((*w)->Commit(Upsert("b", MakeEntry("fpb"))).ok());
    ASSERT_TRUE((*w)->Commit(Upsert("old", MakeEntry("fpo"))).ok());
    ASSERT_TRUE((*w)->Close().ok());
  }
  Projection before;
  uint64_t epoch_before = 0;
  {
    auto r = Ledger::Open(store, kNs, ReadOpts());
    ASSERT_TRUE(r.ok());
    before = Project((*r)->state());
    epoch_before = (*r)->state().max_epoch;
  }
  // The child's commit, with a data key the parent knows.
  const std::string new_key = std::string(kNs) + "/data/a/fp2/attempt-crash-test/data";
  Changes changes = Upsert("a", MakeEntry("fp2", {ObjectFor(new_key, new_bytes)}, {{"rows", 3}}));
  changes.upserts.emplace("new", MakeEntry("fpn"));
  changes.removals.insert("old");
  Projection after = Apply(before, changes);
  ASSERT_NE(before, after);

  int code = RunChild([&]() -> int {
    // Compaction 1: every commit writes a snapshot, so the snapshot points are reached.
    if (c.op == Op::kOpen) ArmCrashPoint(c.point);
    LedgerOptions options = Opts(1);
    auto* clock = static_cast<ManualClock*>(options.clock.get());
    auto w = Ledger::Open(store, kNs, options);
    if (!w.ok()) return ChildFail("open", w.status());
    if (c.op == Op::kCollect) {
      for (int i = 0; i < 4; ++i) {
        auto s = (*w)->Commit(Changes());
        if (!s.ok()) return ChildFail("commit", s.status());
      }
      ArmCrashPoint(c.point);
      auto g = (*w)->CollectObsolete(1);
      if (!g.ok()) return ChildFail("collect", g.status());
      return 0;
    }
    if (c.op == Op::kCommit) {
      if (c.point.find("lease-renew") != std::string::npos) {
        clock->Advance(std::chrono::milliseconds(350));  // past half the TTL
      }
      ArmCrashPoint(c.point);
      auto o = (*w)->PutData(new_key, new_bytes);
      if (!o.ok()) return ChildFail("put data", o.status());
      auto s = (*w)->Commit(changes);
      if (!s.ok()) return ChildFail("commit", s.status());
    }
    return 0;  // survived: the point was not reached
  });
  ASSERT_EQ(code, kCrashed) << "child did not die at " << c.point;

  // Recover as the next writer.
  auto w = Ledger::Open(store, kNs, Opts(3));
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  Projection got = Project((*w)->state());
  EXPECT_TRUE(got == before || got == after) << "state between before and after";
  EXPECT_EQ(got, c.lands ? after : before);
  EXPECT_GT((*w)->epoch(), epoch_before);
  if (got == after) {
    auto a = (*w)->Find("a");
    ASSERT_TRUE(a.has_value());
    auto bytes = (*w)->GetData(a->objects.at(0));
    ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
    EXPECT_EQ(*bytes, new_bytes);
  }
  // Writing continues, and a later recovery agrees.
  auto s = (*w)->Commit(Upsert("z", MakeEntry("fpz")));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  auto garbage = (*w)->CollectObsolete(1);
  ASSERT_TRUE(garbage.ok()) << garbage.status().ToString();
  auto deleted = store->DeleteMany(garbage->keys);
  ASSERT_TRUE(deleted.ok() && deleted->FirstError().ok());
  LedgerState final_state = (*w)->state();
  ASSERT_TRUE((*w)->Close().ok());
  auto r = Ledger::Open(store, kNs, ReadOpts());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)->state(), final_state);
  EXPECT_TRUE((*r)->Find("z").has_value());
  if (c.mode == Mode::kCoordinator) {
    // The store's copies of the records caught up (a crash after the insert left one out):
    // a reader of the store alone sees the same state.
    auto plain = Ledger::Open(store, kNs, Options(LedgerMode::kReadOnly));
    ASSERT_TRUE(plain.ok()) << plain.status().ToString();
    EXPECT_EQ((*plain)->state(), final_state);
  }
}

INSTANTIATE_TEST_SUITE_P(Points, CrashTest, ::testing::ValuesIn(AllCases()), CaseName);

// Every "ledger:" crash point the code reaches is in AllCases().
TEST(CrashPointCoverage, EveryReachedPointIsTested) {
  TempDir dir;
  std::shared_ptr<Store> posix = OpenPosix(dir.path());
  TempDir coordinator_dir;
  for (Mode mode : {Mode::kPutIfAbsent, Mode::kSingleWriter, Mode::kCoordinator}) {
    std::shared_ptr<Store> store =
        mode == Mode::kSingleWriter ? std::make_shared<NoConditionalPutStore>(posix) : posix;
    std::string ns = mode == Mode::kSingleWriter  ? "cov-lease"
                     : mode == Mode::kCoordinator ? "cov-coordinator"
                                                  : "cov";
    LedgerOptions o = CrashOptions(1, mode, coordinator_dir.path());
    o.lease.ttl = std::chrono::milliseconds(400);
    auto* clock = static_cast<ManualClock*>(o.clock.get());
    auto w = Ledger::Open(store, ns, o);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    auto key = (*w)->DataKey("s", "f");
    ASSERT_TRUE(key.ok());
    auto obj = (*w)->PutData(*key, "x");
    ASSERT_TRUE(obj.ok());
    clock->Advance(std::chrono::milliseconds(250));  // force a lease renewal
    ASSERT_TRUE((*w)->Commit(Upsert("s", MakeEntry("f", {*obj}))).ok());
    ASSERT_TRUE((*w)->Commit(Changes()).ok());
    ASSERT_TRUE((*w)->CollectObsolete(1).ok());
    ASSERT_TRUE((*w)->Close().ok());
  }
  std::set<std::string> tested;
  for (const auto& c : AllCases()) tested.insert(c.point);
  for (const auto& p : ReachedCrashPoints()) {
    if (p.rfind("ledger:", 0) == 0) {
      EXPECT_TRUE(tested.count(p)) << "crash point " << p << " has no crash test";
      tested.erase(p);
    }
  }
  EXPECT_TRUE(tested.empty()) << "tested points never reached: " << tested.size();
  // And every "ledger:" point compiled in, reached above or not, has a case.
  std::set<std::string> cases;
  for (const auto& c : AllCases()) cases.insert(c.point);
  for (const auto& p : DeclaredCrashPoints()) {
    if (p.rfind("ledger:", 0) == 0) {
      EXPECT_TRUE(cases.count(p)) << p << " has no crash test";
    }
  }
}

// Killed at random points of a long run, re-run until done: the final state equals a clean
// run's, and no commit is lost or applied twice.
TEST(CrashLoop, RandomKillsThenResumeMatchesCleanRun) {
  constexpr int kCommits = 25;
  auto run_all = [](Ledger& l) -> Status {
    // Progress commits atomically with each part: resume starts where the ledger says.
    auto progress = l.Find("progress");
    int first = progress ? progress->meta.value("next", 0) : 0;
    for (int i = first; i < kCommits; ++i) {
      std::string name = "part-" + std::to_string(i);
      auto key = l.DataKey("stage", "fp" + std::to_string(i));
      if (!key.ok()) return key.status();
      auto o = l.PutData(*key, "rows of part " + std::to_string(i));
      if (!o.ok()) return o.status();
      Changes c = Upsert(name, MakeEntry("fp" + std::to_string(i), {*o}, {{"rows", i}}));
      if (i % 5 == 4) c.removals.insert("part-" + std::to_string(i - 4));
      c.upserts.emplace("progress", MakeEntry("progress", {}, {{"next", i + 1}}));
      auto s = l.Commit(c);
      if (!s.ok()) return s.status();
    }
    return Status::OK();
  };
  auto project = [](const LedgerState& s) {
    std::map<std::string, std::pair<std::string, std::string>> p;
    for (const auto& [n, e] : s.entries) p[n] = {e.fingerprint, e.meta.dump()};
    return p;
  };

  TempDir clean_dir;
  std::shared_ptr<Store> clean = OpenPosix(clean_dir.path());
  std::map<std::string, std::pair<std::string, std::string>> expected;
  {
    auto w = Ledger::Open(clean, kNs, CrashOptions(4));
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE(run_all(**w).ok());
    expected = project((*w)->state());
  }

  const std::vector<std::string> points = {"ledger:before-data",     "ledger:after-data",
                                           "ledger:before-publish",  "ledger:after-publish",
                                           "ledger:before-snapshot", "ledger:after-snapshot",
                                           "ledger:before-head",     "ledger:after-head"};
  TempDir dir;
  std::shared_ptr<Store> store = OpenPosix(dir.path());
  std::mt19937 rng(12345);
  int crashes = 0;
  for (int round = 0; round < 40; ++round) {
    std::string spec = points[rng() % points.size()] + "@" + std::to_string(1 + rng() % 6);
    int code = RunChild([&]() -> int {
      auto w = Ledger::Open(store, kNs, CrashOptions(4));
      if (!w.ok()) return ChildFail("open", w.status());
      ArmCrashPoint(spec);
      Status st = run_all(**w);
      if (!st.ok()) return ChildFail("run", st);
      return 0;
    });
    if (code == 0) break;
    ASSERT_EQ(code, kCrashed) << spec;
    ++crashes;
  }
  EXPECT_GT(crashes, 0);
  auto w = Ledger::Open(store, kNs, CrashOptions(4));
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  ASSERT_TRUE(run_all(**w).ok());
  EXPECT_EQ(project((*w)->state()), expected);
  for (const auto& [name, e] : (*w)->state().entries) {
    EXPECT_TRUE((*w)->VerifyData(e).ok()) << name;
  }
}

}  // namespace
}  // namespace respawn::ledger

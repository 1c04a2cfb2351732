#include "util/crash_point.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace respawn {

// Never called: its crash point is declared at program start all the same. (External linkage,
// so that the compiler emits it.)
void CrashPointTestNeverCalled() { CrashPoint<"test:declared-never-reached">(); }

namespace {

std::mutex fired_mu;
std::vector<std::string> fired;  // GUARDED_BY(fired_mu)

void RecordCrash(std::string_view name) {
  std::lock_guard<std::mutex> lock(fired_mu);
  fired.emplace_back(name);
}

std::vector<std::string> Fired() {
  std::lock_guard<std::mutex> lock(fired_mu);
  return fired;
}

class CrashPointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    DisarmAllCrashPoints();
    SetCrashHandler(&RecordCrash);
    std::lock_guard<std::mutex> lock(fired_mu);
    fired.clear();
  }
  void TearDown() override {
    DisarmAllCrashPoints();
    SetCrashHandler(nullptr);
  }
};

TEST_F(CrashPointTest, UnarmedPointsDoNothingButAreRecorded) {
  CrashPoint("test:unarmed");
  EXPECT_TRUE(Fired().empty());
  std::vector<std::string> reached = ReachedCrashPoints();
  EXPECT_NE(std::find(reached.begin(), reached.end(), "test:unarmed"), reached.end());
}

TEST_F(CrashPointTest, TemplatePointsAreDeclaredBeforeTheyAreReached) {
  std::vector<std::string> declared = DeclaredCrashPoints();
  EXPECT_NE(std::find(declared.begin(), declared.end(), "test:declared-never-reached"),
            declared.end());
  EXPECT_TRUE(std::is_sorted(declared.begin(), declared.end()));
  std::vector<std::string> reached = ReachedCrashPoints();
  EXPECT_EQ(std::find(reached.begin(), reached.end(), "test:declared-never-reached"),
            reached.end());
  EXPECT_TRUE(DeclareCrashPoint("test:declared-by-hand"));
  declared = DeclaredCrashPoints();
  EXPECT_NE(std::find(declared.begin(), declared.end(), "test:declared-by-hand"), declared.end());
}

TEST_F(CrashPointTest, TemplatePointFiresLikeThePlainOne) {
  ArmCrashPoint("test:template");
  CrashPoint<"test:template">();
  EXPECT_EQ(Fired(), std::vector<std::string>{"test:template"});
}

TEST_F(CrashPointTest, ArmedPointCallsTheHandler) {
  ArmCrashPoint("test:armed");
  CrashPoint("test:other");
  EXPECT_TRUE(Fired().empty());
  CrashPoint("test:armed");
  EXPECT_EQ(Fired(), std::vector<std::string>{"test:armed"});
  CrashPoint("test:armed");  // fires once: on the first hit only
  EXPECT_EQ(Fired().size(), 1u);
}

TEST_F(CrashPointTest, FiresOnTheNthHit) {
  ArmCrashPoint("test:nth@3");
  CrashPoint("test:nth");
  CrashPoint("test:nth");
  EXPECT_TRUE(Fired().empty());
  CrashPoint("test:nth");
  EXPECT_EQ(Fired(), std::vector<std::string>{"test:nth"});
  CrashPoint("test:nth");
  EXPECT_EQ(Fired().size(), 1u);
}

TEST_F(CrashPointTest, DisarmStopsIt) {
  ArmCrashPoint("test:disarmed");
  DisarmAllCrashPoints();
  CrashPoint("test:disarmed");
  EXPECT_TRUE(Fired().empty());
}

TEST_F(CrashPointTest, CountsHitsAcrossThreads) {
  ArmCrashPoint("test:threads@500");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([] {
      for (int i = 0; i < 250; ++i) CrashPoint("test:threads");
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(Fired(), std::vector<std::string>{"test:threads"});
}

TEST(CrashPointDeathTest, DefaultHandlerExitsWith137) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        SetCrashHandler(nullptr);
        ArmCrashPoint("test:die");
        CrashPoint("test:die");
      },
      ::testing::ExitedWithCode(137), "crash point test:die reached");
}

TEST(CrashPointDeathTest, EnvironmentArmsPoints) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  // The threadsafe style re-executes this binary, so the child reads RESPAWN_CRASH_AT afresh.
  setenv("RESPAWN_CRASH_AT", "test:env-a,test:env-b@2", 1);
  EXPECT_EXIT(
      {
        CrashPoint("test:env-b");
        CrashPoint("test:env-b");
      },
      ::testing::ExitedWithCode(137), "crash point test:env-b reached");
  unsetenv("RESPAWN_CRASH_AT");
}

// "name@N:stop" (and "name:stop@N") stops the process with SIGSTOP on the Nth hit; it carries on
// from there after SIGCONT. A child process runs the points so the test runner is never stopped.
TEST(CrashPointStopTest, StopActionPausesUntilContinued) {
  for (const char* spec : {"test:pause@2:stop", "test:pause:stop@2"}) {
    SCOPED_TRACE(spec);
    int pipe_fds[2];
    ASSERT_EQ(::pipe(pipe_fds), 0);
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(pipe_fds[0]);
      SetCrashHandler(nullptr);
      DisarmAllCrashPoints();
      ArmCrashPoint(spec);
      CrashPoint("test:pause");  // 1st hit: nothing
      CrashPoint("test:pause");  // 2nd: stops here
      ssize_t n = ::write(pipe_fds[1], "resumed", 7);
      ::_exit(n == 7 ? 0 : 3);
    }
    ::close(pipe_fds[1]);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, WUNTRACED), pid);
    ASSERT_TRUE(WIFSTOPPED(status)) << "child was not stopped, status " << status;
    EXPECT_EQ(WSTOPSIG(status), SIGSTOP);
    ASSERT_EQ(::kill(pid, SIGCONT), 0);
    char buf[16] = {};
    ssize_t got = ::read(pipe_fds[0], buf, sizeof(buf));
    ::close(pipe_fds[0]);
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status)) << status;
    EXPECT_EQ(WEXITSTATUS(status), 0);
    EXPECT_EQ(std::string(buf, got > 0 ? static_cast<size_t>(got) : 0), "resumed");
  }
}

}  // namespace
}  // namespace respawn

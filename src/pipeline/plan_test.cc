#include "pipeline/plan.h"

#include <gtest/gtest.h>

#include <map>

#include "pipeline/expect.h"
#include "pipeline/schema.h"

namespace respawn {
namespace {

// files (a file source) and gen (generated) feed a -> b -> c -> output; scratch (not
// checkpointed) reads a; lone reads gen and nothing reads it.
constexpr std::string_view kPipeline = R"toml(name = "p"
[sources.files]
path = "f.csv"
[sources.gen]
sql = "q_gen"
[stages.a]
sql = "q_a"
[stages.b]
sql = "q_b"
[stages.c]
sql = "q_c"
[stages.scratch]
sql = "q_scratch"
checkpoint = false
[stages.lone]
sql = "q_lone"
[outputs.out]
from = "c"
path = "out.csv"
)toml";

const std::map<std::string, std::vector<std::string>> kReads = {
    {"q_gen", {}},        {"q_a", {"gen"}},    {"q_b", {"a", "files"}}, {"q_c", {"b"}},
    {"q_scratch", {"a"}}, {"q_lone", {"gen"}}, {"q_c_v2", {"b"}},       {"q_b_v2", {"a", "files"}}};

struct Fixture {
  PipelineSpec spec;
  Dag dag;
  std::vector<FingerprintComponents> fps;
  ledger::LedgerState state;

  explicit Fixture(std::string_view text = kPipeline) {
    spec = ParsePipelineString(text, "pipeline.toml", "/base").value();
    dag = BuildDag(spec, [](std::string_view sql) -> Result<std::vector<std::string>> {
            return kReads.at(std::string(sql));
          }).value();
    fps = FingerprintPipeline(spec, dag, "engine", [](const SourceSpec&) {
            FingerprintComponents c;
            c.kind = FingerprintKind::kFileSource;
            return Result<FingerprintComponents>(c);
          }).value();
  }

  int Node(const std::string& name) const { return *dag.Find(name); }

  PlanInput Input() const {
    PlanInput in;
    in.spec = &spec;
    in.dag = &dag;
    in.fingerprints = &fps;
    in.state = &state;
    return in;
  }

  // Commits `name` with its current fingerprint (or `fingerprint`) and `meta`.
  void Commit(const std::string& name, std::string fingerprint = "",
              nlohmann::json meta = nullptr) {
    ledger::Entry e;
    e.fingerprint = fingerprint.empty() ? fps[Node(name)].total.Hex() : fingerprint;
    e.meta = meta.is_null() ? EncodeCheckpointMeta({10, 100, 1.5, fps[Node(name)].Serialize(), ""})
                            : meta;
    state.entries[StageEntryName(name)] = e;
  }
  void CommitAll() {
    for (const char* n : {"gen", "a", "b", "c", "lone"}) Commit(n);
  }
  // A finished run's report listing `work_tables` (entry names), committed after the stages.
  void Report(const std::string& run_id, std::vector<std::string> work_tables) {
    RunReportMeta meta;
    meta.result = "done";
    meta.work_tables = std::move(work_tables);
    ledger::Entry& e = state.entries[RunEntryName(run_id)];
    e.fingerprint = "run";
    e.sequence = state.entries.size() + 100;
    e.meta = EncodeRunReportMeta(meta);
  }
  // Commits `name` as the pipeline with `from` replaced by `to` in it would have.
  void CommitAsIf(const std::string& name, const std::string& from, const std::string& to) {
    std::string text(kPipeline);
    text.replace(text.find(from), from.size(), to);
    Fixture before(text);
    const FingerprintComponents& c = before.fps[before.Node(name)];
    Commit(name, c.total.Hex(), EncodeCheckpointMeta({1, 1, 1, c.Serialize(), ""}));
  }
};

// What the plan says about one node: action, a substring of the reason, load.
struct Expect {
  TaskAction action;
  std::string reason;
  bool load = false;
};

struct Case {
  std::string name;
  std::function<void(Fixture&, PlanInput&)> setup;
  std::map<std::string, Expect> expect;
};

const char* ActionName(TaskAction a) {
  switch (a) {
    case TaskAction::kCompute:
      return "compute";
    case TaskAction::kReuse:
      return "reuse";
    case TaskAction::kSkip:
      return "skip";
    case TaskAction::kSource:
      return "source";
  }
  return "?";
}

const Expect kSourceNode{TaskAction::kSource, ""};
const Expect kScratch{TaskAction::kCompute, "not checkpointed"};

// The table of cases: how the fixture is set up, and what the plan must say.
const std::vector<Case> kCases = {
    {"empty ledger: everything computed",
     [](Fixture&, PlanInput&) {},
     {{"files", kSourceNode},
      {"gen", {TaskAction::kCompute, "no checkpoint"}},
      {"a", {TaskAction::kCompute, "no checkpoint"}},
      {"b", {TaskAction::kCompute, "no checkpoint"}},
      {"c", {TaskAction::kCompute, "no checkpoint"}},
      {"scratch", kScratch},
      {"lone", {TaskAction::kCompute, "no checkpoint"}}}},
    {"all committed, output current: only what is not checkpointed runs",
     [](Fixture& f, PlanInput& in) {
       f.CommitAll();
       in.output_current = {true};
     },
     {{"gen", {TaskAction::kReuse, ""}},
      {"a", {TaskAction::kReuse, "", /*load=*/true}},  // scratch reads it
      {"b", {TaskAction::kReuse, ""}},
      {"c", {TaskAction::kReuse, ""}},
      {"scratch", kScratch},
      {"lone", {TaskAction::kReuse, ""}}}},
    {"all committed, output missing: the output's node is loaded",
     [](Fixture& f, PlanInput&) { f.CommitAll(); },
     {{"b", {TaskAction::kReuse, ""}}, {"c", {TaskAction::kReuse, "", true}}}},
    {"--fresh computes everything",
     [](Fixture& f, PlanInput& in) {
       f.CommitAll();
       in.fresh = true;
       in.output_current = {true};
     },
     {{"gen", {TaskAction::kCompute, "--fresh"}},
      {"c", {TaskAction::kCompute, "--fresh"}},
      {"lone", {TaskAction::kCompute, "--fresh"}}}},
    {"a changed checkpoint: computed with the change explained, inputs loaded",
     [](Fixture& f, PlanInput& in) {
       f.CommitAll();
       // Committed for other SQL: the recorded components say what changed.
       std::string v2(kPipeline);
       v2.replace(v2.find("\"q_c\""), 5, "\"q_c_v2\"");
       Fixture before(v2);
       const FingerprintComponents& c = before.fps[before.Node("c")];
       f.Commit("c", c.total.Hex(), EncodeCheckpointMeta({1, 1, 1, c.Serialize(), ""}));
       in.output_current = {true};
     },
     {{"a", {TaskAction::kReuse, "", true}},
      {"b", {TaskAction::kReuse, "", true}},
      {"c", {TaskAction::kCompute, "changed SQL"}}}},
    {"a changed checkpoint nothing needs is skipped",
     [](Fixture& f, PlanInput& in) {
       f.CommitAll();
       f.Commit("b", "0000000000000000");
       in.output_current = {true};
     },
     {{"b", {TaskAction::kSkip, "not needed"}}, {"c", {TaskAction::kReuse, ""}}}},
    {"a checkpoint verification refused is computed instead, with the reason",
     [](Fixture& f, PlanInput& in) {
       f.CommitAll();
       in.unusable[f.Node("c")] = "checkpoint missing: gone";
     },
     {{"b", {TaskAction::kReuse, "", true}},
      {"c", {TaskAction::kCompute, "checkpoint missing: gone"}},
      {"lone", {TaskAction::kReuse, ""}}}},
    {"unreadable metadata is not reused",
     [](Fixture& f, PlanInput& in) {
       f.CommitAll();
       f.Commit("lone", "", {{"rows", "many"}});
       in.output_current = {true};
     },
     {{"lone", {TaskAction::kCompute, "checkpoint unreadable"}},
      {"gen", {TaskAction::kReuse, "", true}}}},
    {"changed expectations: the stage is computed to be checked, what reads it is reused",
     [](Fixture& f, PlanInput& in) {
       f.CommitAll();
       Expectation e;
       e.text = "SELECT * FROM b WHERE false";
       f.spec.stages[f.dag.node(f.Node("b")).spec_index].expectations.push_back(e);
       in.output_current = {true};
     },
     {{"a", {TaskAction::kReuse, "", true}},
      {"b", {TaskAction::kCompute, "changed expectations"}},
      {"c", {TaskAction::kReuse, ""}},
      {"lone", {TaskAction::kReuse, ""}}}},
    {"a checkpoint committed with the current expectations is reused",
     [](Fixture& f, PlanInput& in) {
       f.CommitAll();
       StageSpec& b = f.spec.stages[f.dag.node(f.Node("b")).spec_index];
       b.expectations.push_back(Expectation{});
       b.expectations.back().text = "SELECT * FROM b WHERE false";
       f.Commit("b", "",
                EncodeCheckpointMeta({1, 1, 1, f.fps[f.Node("b")].Serialize(), ExpectationsId(b)}));
       in.output_current = {true};
     },
     {{"b", {TaskAction::kReuse, ""}}, {"c", {TaskAction::kReuse, ""}}}},
    {"a dropped work-table nothing reads now is skipped",
     [](Fixture& f, PlanInput& in) {
       f.CommitAll();
       f.state.entries.erase(StageEntryName("b"));
       in.output_current = {true};
     },
     {{"b", {TaskAction::kSkip, "not needed"}}, {"c", {TaskAction::kReuse, ""}}}},
    {"a changed input is named: its consumer says which",
     [](Fixture& f, PlanInput& in) {
       f.CommitAll();
       f.CommitAsIf("b", "\"q_b\"", "\"q_b_v2\"");
       f.CommitAsIf("c", "\"q_b\"", "\"q_b_v2\"");
       in.output_current = {true};
     },
     {{"a", {TaskAction::kReuse, "", true}},
      {"b", {TaskAction::kCompute, "changed SQL"}},
      {"c", {TaskAction::kCompute, "changed input b"}}}},
    {"work-tables GC dropped after a run: computed naming the run and what needs them",
     [](Fixture& f, PlanInput& in) {
       f.CommitAll();
       f.Report("1a2b3c4d5e6f7788", {"stage/a", "stage/b", "stage/gen"});
       f.state.entries.erase(StageEntryName("a"));
       f.state.entries.erase(StageEntryName("b"));
       f.CommitAsIf("c", "\"q_c\"", "\"q_c_v2\"");
       in.output_current = {true};
     },
     {{"gen", {TaskAction::kReuse, "", true}},
      {"a", {TaskAction::kCompute, "dropped by GC after run 1a2b3c4d (needed by b, scratch)"}},
      {"b", {TaskAction::kCompute, "dropped by GC after run 1a2b3c4d (needed by c)"}},
      {"c", {TaskAction::kCompute, "changed SQL"}}}},
    {"no checkpoint only for what no run ever left behind",
     [](Fixture& f, PlanInput& in) {
       f.Report("1a2b3c4d5e6f7788", {"stage/gen"});
       f.Commit("gen");
       in.output_current = {true};
     },
     {{"gen", {TaskAction::kReuse, "", true}},
      {"a", {TaskAction::kCompute, "no checkpoint"}},
      {"b", {TaskAction::kCompute, "no checkpoint"}}}},
};

TEST(PlanTest, DecidesEveryNodeFromTheLedgerAndWhatVerificationFound) {
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.name);
    Fixture f;
    PlanInput in = f.Input();
    c.setup(f, in);
    std::vector<Task> tasks = PlanRun(in);
    ASSERT_EQ(tasks.size(), static_cast<size_t>(f.dag.size()));
    for (const auto& [name, want] : c.expect) {
      const Task& t = tasks[f.Node(name)];
      EXPECT_EQ(t.node, f.Node(name));
      EXPECT_FALSE(t.partition.has_value());
      EXPECT_EQ(ActionName(t.action), std::string(ActionName(want.action))) << name;
      if (want.reason.empty()) {
        EXPECT_EQ(t.reason, "") << name;
      } else {
        EXPECT_NE(t.reason.find(want.reason), std::string::npos) << name << ": " << t.reason;
      }
      EXPECT_EQ(t.load, want.load) << name;
    }
  }
}

TEST(PlanTest, IsAFunctionOfItsInput) {
  Fixture f;
  f.CommitAll();
  PlanInput in = f.Input();
  EXPECT_EQ(PlanRun(in), PlanRun(in));
}

TEST(PlanTest, UnusableReasonsSayMissingOrCorrupt) {
  EXPECT_EQ(UnusableCheckpointReason(NotFound("no such key")), "checkpoint missing: no such key");
  EXPECT_EQ(UnusableCheckpointReason(DataLoss("bad xxh3")), "checkpoint corrupt: bad xxh3");
}

}  // namespace
}  // namespace respawn

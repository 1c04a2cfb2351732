#include "pipeline/plan.h"

#include <gtest/gtest.h>

#include <map>

#include "pipeline/expect.h"
#include "pipeline/schema.h"
#include "pipeline/selection.h"
#include "util/testing.h"

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
    {"q_gen", {}},     {"q_a", {"gen"}},           {"q_b", {"a", "files"}},
    {"q_c", {"b"}},    {"q_scratch", {"a"}},       {"q_lone", {"gen"}},
    {"q_c_v2", {"b"}}, {"q_b_v2", {"a", "files"}}, {"q_d", {"scratch"}}};

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

// --- Selection (--select / --exclude) ---

// The names of the nodes (then "out:" and the outputs) a selection holds, in node order.
std::string Names(const Fixture& f, const Selection& s) {
  std::string out;
  for (int v = 0; v < f.dag.size(); ++v) {
    if (s.nodes[v]) out += (out.empty() ? "" : " ") + f.dag.node(v).name;
  }
  out += out.empty() ? "|" : " |";
  for (size_t i = 0; i < f.spec.outputs.size(); ++i) {
    if (s.outputs[i]) out += " " + f.spec.outputs[i].name;
  }
  return out;
}

std::string Resolve(const Fixture& f, std::vector<std::string> select,
                    std::vector<std::string> exclude = {}) {
  Result<Selection> s = ResolveSelection(f.spec, f.dag, select, exclude);
  return s.ok() ? Names(f, *s) : "error: " + s.status().message();
}

TEST(SelectionTest, ParsesTheFourFormsCommaSeparated) {
  ASSERT_OK_AND_ASSIGN(std::vector<Selector> got, ParseSelectors(" a, b+ ,+c,+d+", "--select"));
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0], (Selector{"a", "a", false, false}));
  EXPECT_EQ(got[1], (Selector{"b+", "b", false, true}));
  EXPECT_EQ(got[2], (Selector{"+c", "c", true, false}));
  EXPECT_EQ(got[3], (Selector{"+d+", "d", true, true}));
}

TEST(SelectionTest, RejectsEmptyAndOtherForms) {
  for (std::string_view bad : {"", "a,,b", "a,", "+", "++", "a++", "2+a", "tag:x", "@a", "a b"}) {
    Result<std::vector<Selector>> got = ParseSelectors(bad, "--exclude");
    ASSERT_FALSE(got.ok()) << bad;
    EXPECT_TRUE(got.status().code() == StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(got.status().message().rfind("--exclude \"", 0), 0u) << got.status().message();
    EXPECT_NE(got.status().message().find("name, name+, +name and +name+"), std::string::npos)
        << got.status().message();
  }
}

TEST(SelectionTest, ExpandsAlongTheDag) {
  Fixture f;
  EXPECT_EQ(Resolve(f, {}), "files gen a b c scratch lone | out");
  EXPECT_EQ(Resolve(f, {"b"}), "b |");
  EXPECT_EQ(Resolve(f, {"b+"}), "b c | out");  // and the output of c
  EXPECT_EQ(Resolve(f, {"+b"}), "files gen a b |");
  EXPECT_EQ(Resolve(f, {"+B+"}), "files gen a b c | out");  // names ignore case
  EXPECT_EQ(Resolve(f, {"a+"}), "a b c scratch | out");
  EXPECT_EQ(Resolve(f, {"out"}), "| out");  // the output alone: its node is reused
  EXPECT_EQ(Resolve(f, {"+out"}), "files gen a b c | out");
  EXPECT_EQ(Resolve(f, {"out+"}), "| out");
  EXPECT_EQ(Resolve(f, {"b,lone"}), Resolve(f, {"b", "lone"}));
  EXPECT_EQ(Resolve(f, {"b,lone"}), "b lone |");
}

TEST(SelectionTest, ExcludeSubtractsNodesAndTheirOutputs) {
  Fixture f;
  EXPECT_EQ(Resolve(f, {"a+"}, {"c"}), "a b scratch |");
  EXPECT_EQ(Resolve(f, {}, {"lone"}), "files gen a b c scratch | out");
  EXPECT_EQ(Resolve(f, {}, {"out"}), "files gen a b c scratch lone |");
  EXPECT_EQ(Resolve(f, {"+c"}, {"+a"}), "files b c | out");
  EXPECT_TRUE(ResolveSelection(f.spec, f.dag, {}, {}).value().all());
  EXPECT_FALSE(ResolveSelection(f.spec, f.dag, {}, {"lone"}).value().all());
}

TEST(SelectionTest, UnknownNamesSayWhatIsMeant) {
  Fixture f;
  EXPECT_EQ(Resolve(f, {"a", "lonely+"}),
            "error: --select lonely+: no source, stage or output is named \"lonely\" (did you "
            "mean \"lone\"?)");
  EXPECT_EQ(Resolve(f, {}, {"+outt"}),
            "error: --exclude +outt: no source, stage or output is named \"outt\" (did you "
            "mean \"out\"?)");
  EXPECT_EQ(Resolve(f, {"zzz"}),
            "error: --select zzz: no source, stage or output is named \"zzz\"");
}

// A plan with `select` (and `exclude`); `*check` gets CheckSelectedPlan's verdict.
std::vector<Task> PlanSelected(Fixture& f, PlanInput& in, Selection* keep,
                               std::vector<std::string> select, Status* check,
                               std::vector<std::string> exclude = {}) {
  *keep = ResolveSelection(f.spec, f.dag, select, exclude).value();
  in.selection = keep;
  std::vector<Task> tasks = PlanRun(in);
  *check = CheckSelectedPlan(in, tasks);
  return tasks;
}

// c committed for other SQL (as after editing it).
void EditC(Fixture& f) {
  std::string v2(kPipeline);
  v2.replace(v2.find("\"q_c\""), 5, "\"q_c_v2\"");
  Fixture before(v2);
  const FingerprintComponents& c = before.fps[before.Node("c")];
  f.Commit("c", c.total.Hex(), EncodeCheckpointMeta({1, 1, 1, c.Serialize(), ""}));
}

TEST(PlanSelectionTest, OnlySelectedNodesComputeTheRestIsReused) {
  Fixture f;
  f.CommitAll();
  EditC(f);
  f.Commit("lone", "0000000000000000");  // stale, but not selected: skipped, not computed
  PlanInput in = f.Input();
  Selection sel;
  Status check;
  std::vector<Task> t = PlanSelected(f, in, &sel, {"c"}, &check);
  ASSERT_OK(check);
  EXPECT_EQ(t[f.Node("c")].action, TaskAction::kCompute);
  EXPECT_EQ(t[f.Node("c")].reason, "changed SQL");
  EXPECT_EQ(t[f.Node("b")].action, TaskAction::kReuse);
  EXPECT_TRUE(t[f.Node("b")].load);
  EXPECT_EQ(t[f.Node("lone")].action, TaskAction::kSkip);
  EXPECT_EQ(t[f.Node("lone")].reason, kNotSelectedReason);
  EXPECT_EQ(t[f.Node("scratch")].action, TaskAction::kSkip);  // a sink, not selected
  EXPECT_EQ(t[f.Node("scratch")].reason, kNotSelectedReason);
  // Without the selection, lone and scratch would be computed.
  in.selection = nullptr;
  EXPECT_EQ(PlanRun(in)[f.Node("lone")].action, TaskAction::kCompute);
}

TEST(PlanSelectionTest, SelectedNodesWithCurrentCheckpointsAreReused) {
  Fixture f;
  f.CommitAll();
  PlanInput in = f.Input();
  in.output_current = {true};
  Selection sel;
  Status check;
  std::vector<Task> t = PlanSelected(f, in, &sel, {"a+"}, &check);
  ASSERT_OK(check);
  for (const char* n : {"a", "b", "c"}) EXPECT_EQ(t[f.Node(n)].action, TaskAction::kReuse) << n;
  EXPECT_EQ(t[f.Node("scratch")].action, TaskAction::kCompute);  // selected, no checkpoint
}

TEST(PlanSelectionTest, FreshRecomputesOnlyTheSelected) {
  Fixture f;
  f.CommitAll();
  PlanInput in = f.Input();
  in.fresh = true;
  in.output_current = {true};
  Selection sel;
  Status check;
  std::vector<Task> t = PlanSelected(f, in, &sel, {"b+"}, &check);
  ASSERT_OK(check);
  EXPECT_EQ(t[f.Node("b")].action, TaskAction::kCompute);
  EXPECT_EQ(t[f.Node("b")].reason, "--fresh");
  EXPECT_EQ(t[f.Node("c")].action, TaskAction::kCompute);
  EXPECT_EQ(t[f.Node("a")].action, TaskAction::kReuse);
  EXPECT_TRUE(t[f.Node("a")].load);
  EXPECT_EQ(t[f.Node("gen")].action, TaskAction::kReuse);
  EXPECT_EQ(t[f.Node("lone")].action, TaskAction::kReuse);
}

TEST(PlanSelectionTest, RefusesWhenASelectedNodeNeedsAnUnusableUnselectedOne) {
  Fixture f;
  PlanInput in = f.Input();
  Selection sel;
  Status check;
  PlanSelected(f, in, &sel, {"c"}, &check);  // nothing committed yet
  EXPECT_TRUE(check.code() == StatusCode::kInvalidArgument);
  EXPECT_EQ(check.message(),
            "stage \"c\" reads \"b\", which is not selected and has no current checkpoint; "
            "select it too (--select +c) or run without --select");
  f.CommitAll();
  EditC(f);                           // c is computed: it needs b
  f.Commit("b", "0000000000000000");  // and b changed since its checkpoint
  PlanSelected(f, in, &sel, {"c"}, &check);
  EXPECT_TRUE(check.code() == StatusCode::kInvalidArgument);
  EXPECT_EQ(check.message().rfind("stage \"c\" reads \"b\", which is not selected and has no "
                                  "current checkpoint (",
                                  0),
            0u)
      << check.message();
  PlanSelected(f, in, &sel, {"+c"}, &check);
  EXPECT_OK(check);
  PlanSelected(f, in, &sel, {"+c"}, &check, {"b"});  // excluded again
  EXPECT_TRUE(check.code() == StatusCode::kInvalidArgument);
  f.Commit("b");
  in.unusable[f.Node("b")] = "checkpoint corrupt: bad xxh3";  // verification refused it
  PlanSelected(f, in, &sel, {"c"}, &check);
  EXPECT_NE(check.message().find("(checkpoint corrupt: bad xxh3)"), std::string::npos)
      << check.message();
}

TEST(PlanSelectionTest, OutputsAreWrittenOnlyWhenSelected) {
  Fixture f;
  f.CommitAll();
  PlanInput in = f.Input();  // the output is not current
  Selection sel;
  Status check;
  std::vector<Task> t = PlanSelected(f, in, &sel, {"lone"}, &check);
  ASSERT_OK(check);
  EXPECT_FALSE(t[f.Node("c")].load);  // the output is not selected: nothing reads c
  t = PlanSelected(f, in, &sel, {"out"}, &check);
  ASSERT_OK(check);
  EXPECT_EQ(t[f.Node("c")].action, TaskAction::kReuse);
  EXPECT_TRUE(t[f.Node("c")].load);
  f.state.entries.erase(StageEntryName("c"));
  PlanSelected(f, in, &sel, {"out"}, &check);
  EXPECT_EQ(check.message(),
            "output \"out\" reads \"c\", which is not selected and has no current checkpoint; "
            "select it too (--select +out) or run without --select");
}

TEST(PlanSelectionTest, UnselectedNodesWithoutCheckpointsAreComputedWhenNeeded) {
  constexpr std::string_view kThrough = R"toml(name = "p"
[sources.gen]
sql = "q_gen"
[stages.a]
sql = "q_a"
[stages.scratch]
sql = "q_scratch"
checkpoint = false
[stages.d]
sql = "q_d"
)toml";
  Fixture f(kThrough);
  f.Commit("gen");
  f.Commit("a");
  PlanInput in = f.Input();
  Selection sel;
  Status check;
  std::vector<Task> t = PlanSelected(f, in, &sel, {"d"}, &check);
  ASSERT_OK(check);
  EXPECT_EQ(t[f.Node("scratch")].action, TaskAction::kCompute);
  EXPECT_TRUE(t[f.Node("a")].load);
  f.state.entries.erase(StageEntryName("a"));
  PlanSelected(f, in, &sel, {"d"}, &check);
  EXPECT_EQ(check.message(),
            "stage \"d\" reads \"a\" through \"scratch\" (not checkpointed), which is not "
            "selected and has no current checkpoint; select it too (--select +d) or run "
            "without --select");
}

}  // namespace
}  // namespace respawn

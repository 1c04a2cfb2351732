// Golden bad-input cases: every directory under tests/golden/errors holds a pipeline.toml and an
// expected_error.txt whose first line is the exact first line of the error that parsing and
// building the DAG must produce. Adding a case needs no C++ (see tests/golden/README.md).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "pipeline/dag.h"
#include "pipeline/spec.h"

namespace respawn {
namespace {

namespace fs = std::filesystem;

fs::path GoldenErrorsDir() {
  return (fs::path(__FILE__).parent_path() / "../../tests/golden/errors").lexically_normal();
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string FirstLine(std::string_view text) {
  std::string line(text.substr(0, text.find('\n')));
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

// Test-only stand-in for the DuckDB resolver: the names after FROM or JOIN that are not table
// functions or CTEs. SQL with unbalanced parentheses is a syntax error.
Result<std::vector<std::string>> RegexResolver(std::string_view sql_view) {
  const std::string sql(sql_view);
  int depth = 0;
  for (char c : sql) {
    depth += c == '(' ? 1 : c == ')' ? -1 : 0;
    if (depth < 0) break;
  }
  if (depth != 0) return InvalidArgument("Parser Error: syntax error: unbalanced parentheses");
  const auto flags = std::regex::ECMAScript | std::regex::icase;
  static const std::regex cte(R"((?:\bWITH|,)\s+([A-Za-z_][A-Za-z0-9_]*)\s+AS\s*\()", flags);
  static const std::regex table(R"(\b(?:FROM|JOIN)\s+([A-Za-z_][A-Za-z0-9_]*)\b(?!\s*\())", flags);
  std::set<std::string> ctes;
  for (std::sregex_iterator it(sql.begin(), sql.end(), cte), end; it != end; ++it) {
    std::string name = (*it)[1];
    std::transform(name.begin(), name.end(), name.begin(), ::tolower);
    ctes.insert(name);
  }
  std::vector<std::string> tables;
  for (std::sregex_iterator it(sql.begin(), sql.end(), table), end; it != end; ++it) {
    std::string name = (*it)[1];
    std::string lower = name;
    std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
    if (!ctes.count(lower)) tables.push_back(name);
  }
  return tables;
}

std::vector<std::string> Cases() {
  std::vector<std::string> cases;
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(GoldenErrorsDir(), ec)) {
    if (e.is_directory()) cases.push_back(e.path().filename().string());
  }
  std::sort(cases.begin(), cases.end());
  return cases;
}

TEST(GoldenErrorsTest, CasesExist) {
  EXPECT_GE(Cases().size(), 6u) << "no golden cases under " << GoldenErrorsDir();
}

TEST(GoldenErrorsTest, RegexResolverIgnoresFunctionsAndCtes) {
  Result<std::vector<std::string>> r = RegexResolver(
      "WITH x AS (SELECT * FROM a), y AS (SELECT 1) SELECT * FROM x JOIN b ON true, "
      "range(3) JOIN read_csv('f') ON true");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, (std::vector<std::string>{"a", "b"}));
}

class GoldenErrorCase : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenErrorCase, FailsWithTheExpectedMessage) {
  const fs::path dir = GoldenErrorsDir() / GetParam();
  ASSERT_TRUE(fs::exists(dir / "pipeline.toml")) << dir;
  ASSERT_TRUE(fs::exists(dir / "expected_error.txt")) << dir;
  const std::string text = ReadFile(dir / "pipeline.toml");
  const std::string expected = FirstLine(ReadFile(dir / "expected_error.txt"));

  Status status;
  Result<PipelineSpec> spec = ParsePipelineString(text, "pipeline.toml", dir.string());
  if (!spec.ok()) {
    status = spec.status();
  } else {
    Result<Dag> dag = BuildDag(*spec, RegexResolver);
    status = dag.ok() ? Status::OK() : dag.status();
  }
  ASSERT_FALSE(status.ok()) << "case " << GetParam() << " parsed and built without error";
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << status.ToString();
  EXPECT_EQ(FirstLine(status.message()), expected) << "full message:\n" << status.message();
}

INSTANTIATE_TEST_SUITE_P(Golden, GoldenErrorCase, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param;
                           for (char& c : name) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace respawn

// `respawn show PIPELINE STAGE`: a committed checkpoint's rows (or a query over them) as a table,
// CSV or JSON, like `dbt show`.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/common.h"
#include "ledger/coordinator.h"
#include "pipeline/show.h"
#include "pipeline/spec.h"

namespace respawn::cli {
namespace {

constexpr size_t kMaxCellWidth = 40;

struct ShowCliOptions {
  std::string file;
  std::string store;
  std::string profile;
  std::vector<std::string> params;
  std::string stage;
  std::string sql;
  uint64_t limit = 20;
  std::string format = "table";
};

bool IsNumericType(const std::string& type) {
  for (const char* t :
       {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
        "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "DECIMAL"}) {
    if (type.rfind(t, 0) == 0) return true;
  }
  return false;
}

// Display width in code points (UTF-8 continuation bytes do not count).
size_t Width(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::string Clip(const std::string& s) {
  if (Width(s) <= kMaxCellWidth) return s;
  std::string out;
  size_t n = 0;
  for (size_t i = 0; i < s.size() && n < kMaxCellWidth - 1; ++i) {
    out += s[i];
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) ++n;
    while (i + 1 < s.size() && (static_cast<unsigned char>(s[i + 1]) & 0xC0) == 0x80) {
      out += s[++i];
    }
  }
  return out + "…";
}

void PrintTable(const QueryResult& r) {
  const size_t cols = r.num_columns();
  std::vector<std::vector<std::string>> cells(r.num_rows() + 2, std::vector<std::string>(cols));
  std::vector<size_t> width(cols, 1);
  std::vector<bool> right(cols);
  for (size_t c = 0; c < cols; ++c) {
    cells[0][c] = Clip(r.columns()[c].name);
    cells[1][c] = Clip(r.columns()[c].type);
    right[c] = IsNumericType(r.columns()[c].type);
    for (size_t row = 0; row < r.num_rows(); ++row)
      cells[row + 2][c] = Clip(r.at(row, c).ToString());
    for (const auto& line : cells) width[c] = std::max(width[c], Width(line[c]));
  }
  auto rule = [&] {
    std::string s = "+";
    for (size_t c = 0; c < cols; ++c) {
      for (size_t i = 0; i < width[c] + 2; ++i) s += '-';
      s += '+';
    }
    std::printf("%s\n", s.c_str());
  };
  rule();
  for (size_t line = 0; line < cells.size(); ++line) {
    std::string s = "|";
    for (size_t c = 0; c < cols; ++c) {
      const std::string& v = cells[line][c];
      std::string pad(width[c] - Width(v), ' ');
      s += " " + (right[c] && line >= 2 ? pad + v : v + pad) + " |";
    }
    std::printf("%s\n", s.c_str());
    if (line == 1) rule();
  }
  rule();
}

std::string CsvField(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

void PrintCsv(const QueryResult& r) {
  for (size_t c = 0; c < r.num_columns(); ++c) {
    std::printf("%s%s", c ? "," : "", CsvField(r.columns()[c].name).c_str());
  }
  std::printf("\n");
  for (const auto& row : r.rows()) {
    for (size_t c = 0; c < row.size(); ++c) {
      std::printf("%s%s", c ? "," : "",
                  row[c].is_null() ? "" : CsvField(row[c].ToString()).c_str());
    }
    std::printf("\n");
  }
}

nlohmann::json JsonCell(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kNull:
      return nullptr;
    case Value::Kind::kBool:
      return v.AsBool().ValueOr(false);
    case Value::Kind::kInt64:
      return v.AsInt64().ValueOr(0);
    case Value::Kind::kUInt64:
      return v.AsUInt64().ValueOr(0);
    case Value::Kind::kDouble:
      return v.AsDouble().ValueOr(0);
    default:
      return v.ToString();
  }
}

int ShowCommand(const ShowCliOptions& o, const GlobalOptions& globals) {
  SpecOverrides overrides;
  overrides.profile = o.profile;
  overrides.params = o.params;
  Result<PipelineSpec> spec = ParsePipelineFile(o.file, overrides);
  if (!spec.ok()) return Fail(spec.status(), Phase::kConfig);
  Result<OpenedStore> store =
      OpenStoreForCli(EffectiveStoreUrl(*spec, o.store), globals, /*read_only=*/true);
  if (store.status().IsNotFound()) {
    return Fail(
        NotFound("store " + EffectiveStoreUrl(*spec, o.store) +
                 " does not exist yet: run the pipeline first (respawn run " + o.file + ")"),
        Phase::kOperation);
  }
  if (!store.ok()) return Fail(store.status(), Phase::kConfig);
  ShowOptions options;
  options.stage = o.stage;
  options.sql = o.sql;
  options.limit = o.limit;
  if (std::string url = EffectiveCoordinatorUrl(*spec); !url.empty()) {
    RegisterCoordinatorSecrets(url);
    Result<std::shared_ptr<ledger::CommitCoordinator>> c = ledger::OpenCoordinator(url);
    if (c.ok()) options.coordinator = *c;
  }
  Result<ShowResult> shown = ShowCheckpoint(*spec, store->store, options);
  if (!shown.ok()) {
    return Fail(shown.status(), shown.status().code() == StatusCode::kInvalidArgument
                                    ? Phase::kConfig
                                    : Phase::kOperation);
  }
  const QueryResult& r = shown->rows;
  const std::string format = globals.json ? "json" : o.format;
  if (format == "json") {
    for (const auto& row : r.rows()) {
      nlohmann::json j = nlohmann::json::object();
      for (size_t c = 0; c < row.size(); ++c) j[r.columns()[c].name] = JsonCell(row[c]);
      std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    }
  } else if (format == "csv") {
    PrintCsv(r);
  } else {
    PrintTable(r);
    std::printf("%s of %s rows of stage %s, committed by run %s at %s\n",
                Thousands(r.num_rows()).c_str(), Thousands(shown->checkpoint_rows).c_str(),
                o.stage.c_str(), shown->run_id.substr(0, 8).c_str(),
                FormatLocalTime(shown->committed_at_ms).c_str());
  }
  if (shown->state == "stale" && !globals.quiet) {
    PrintError("note: stage " + o.stage + " changed since this checkpoint (" + shown->reason +
               "); these rows are the older version's, `respawn run " + o.file + "` recomputes it");
  }
  std::fflush(stdout);
  return kExitOk;
}

}  // namespace

void AddShowCommand(CLI::App& app, const GlobalOptions& globals, CommandFn* run) {
  auto o = std::make_shared<ShowCliOptions>();
  CLI::App* cmd = app.add_subcommand(
      "show", "Print a committed checkpoint's rows, or a query over them (verified on read)");
  cmd->add_option("pipeline", o->file, "The pipeline TOML file")->required();
  cmd->add_option("stage", o->stage, "A stage (or generated source) with a checkpoint")->required();
  cmd->add_option("--sql", o->sql,
                  "A query over the stage (by its name), e.g. \"SELECT "
                  "region, count(*) FROM daily GROUP BY 1\"");
  cmd->add_option("--limit", o->limit, "Rows at most (0: all)")->capture_default_str();
  cmd->add_option("--format", o->format, "table, csv or json (one object a line)")
      ->capture_default_str()
      ->check(CLI::IsMember({"table", "csv", "json"}));
  cmd->add_option("--store", o->store, "Store URL (default: as for run)");
  cmd->add_option("--profile", o->profile, "Apply [profiles.NAME] of the pipeline file");
  cmd->add_option("--param", o->params, "name=value: override a param (as for run)");
  cmd->callback([o, &globals, run] { *run = [o, &globals] { return ShowCommand(*o, globals); }; });
}

}  // namespace respawn::cli

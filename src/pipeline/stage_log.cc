#include "pipeline/stage_log.h"

#include <algorithm>
#include <cstdio>
#include <vector>

#include "pipeline/schema.h"
#include "util/json.h"

namespace respawn {
namespace {

constexpr int kStageLogVersion = 1;
constexpr size_t kMaxExtraInfo = 80;

// An operator's extra_info (DuckDB: an object of strings, or a string) on one line.
std::string ExtraInfo(const nlohmann::json& op) {
  const auto it = op.find("extra_info");
  if (it == op.end()) return "";
  std::string out;
  if (it->is_string()) {
    out = it->get_ref<const std::string&>();
  } else if (it->is_object()) {
    for (const auto& [k, v] : it->items()) {
      if (!out.empty()) out += "; ";
      out += k + ": " + (v.is_string() ? v.get_ref<const std::string&>() : v.dump());
    }
  }
  for (char& c : out) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  if (out.size() > kMaxExtraInfo) out = out.substr(0, kMaxExtraInfo - 3) + "...";
  return out;
}

void FormatOperator(const nlohmann::json& op, int depth, std::string* out) {
  std::string name = JsonValueOr<std::string>(op, "operator_name", "");
  if (name.empty()) name = JsonValueOr<std::string>(op, "operator_type", "?");
  while (!name.empty() && name.back() == ' ') name.pop_back();
  char line[160];
  std::snprintf(
      line, sizeof(line), "%*s%-*s %8.3f s %14llu rows", depth * 2, "", std::max(1, 28 - depth * 2),
      name.c_str(), JsonValueOr<double>(op, "operator_timing", 0),
      static_cast<unsigned long long>(JsonValueOr<uint64_t>(op, "operator_cardinality", 0)));
  *out += line;
  const std::string extra = ExtraInfo(op);
  if (!extra.empty()) *out += "  (" + extra + ")";
  *out += "\n";
  const auto children = op.find("children");
  if (children == op.end() || !children->is_array()) return;
  for (const nlohmann::json& child : *children) FormatOperator(child, depth + 1, out);
}

}  // namespace

std::string StageLogKey(const std::string& ns, const std::string& node) {
  return (ns.empty() ? "" : ns + "/") + "logs/" + node + ".json";
}

nlohmann::json EncodeStageLog(const StageLog& log) {
  return {{"v", kStageLogVersion},
          {"node", log.node},
          {"run_id", log.run_id},
          {"result", log.result},
          {"reason", log.reason},
          {"error", log.error},
          {"fingerprint", log.fingerprint},
          {"sql", log.sql},
          {"finished_at_ms", log.finished_at_ms},
          {"seconds", log.seconds},
          {"rows", log.rows},
          {"bytes", log.bytes},
          {"profile", log.profile}};
}

Result<StageLog> DecodeStageLog(const nlohmann::json& j, std::string_view what) {
  if (!j.is_object() || !JsonField<std::string>(j, "node")) {
    return DataLoss(std::string(what) + " is not a stage log");
  }
  if (JsonValueOr<int>(j, "v", 1) > kStageLogVersion) {
    return FailedPrecondition(std::string(what) +
                              " was written by a newer respawn; upgrade respawn to read it");
  }
  StageLog log;
  log.node = JsonValueOr<std::string>(j, "node", "");
  log.run_id = JsonValueOr<std::string>(j, "run_id", "");
  log.result = JsonValueOr<std::string>(j, "result", "");
  log.reason = JsonValueOr<std::string>(j, "reason", "");
  log.error = JsonValueOr<std::string>(j, "error", "");
  log.fingerprint = JsonValueOr<std::string>(j, "fingerprint", "");
  log.sql = JsonValueOr<std::string>(j, "sql", "");
  log.finished_at_ms = JsonValueOr<int64_t>(j, "finished_at_ms", 0);
  log.seconds = JsonValueOr<double>(j, "seconds", 0);
  log.rows = JsonValueOr<uint64_t>(j, "rows", 0);
  log.bytes = JsonValueOr<uint64_t>(j, "bytes", 0);
  if (const auto it = j.find("profile"); it != j.end() && it->is_object()) log.profile = *it;
  return log;
}

Status WriteStageLog(Store& store, const std::string& ns, const StageLog& log) {
  const std::string key = StageLogKey(ns, log.node);
  return store.Put(key, EncodeStageLog(log).dump()).WithContext("writing the log " + key);
}

Result<StageLog> ReadStageLog(Store& store, const std::string& ns, const std::string& node) {
  const std::string key = StageLogKey(ns, node);
  ASSIGN_OR_RETURN(std::string text, store.Get(key));
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return DataLoss("the log " + key + " in " + store.Url() + " is not JSON");
  return DecodeStageLog(j, "the log " + key);
}

Result<StageLog> FindStageLog(const PipelineSpec& spec, Store& store, const std::string& node) {
  std::vector<std::string> names;
  for (const StageSpec& s : spec.stages) names.push_back(s.name);
  for (const SourceSpec& s : spec.sources) {
    if (s.kind == SourceKind::kSql) names.push_back(s.name);
  }
  if (std::find(names.begin(), names.end(), node) == names.end()) {
    return InvalidArgument(spec.display_name + ": no stage or generated source is named \"" + node +
                           "\"" + DidYouMeanSuffix(node, names));
  }
  Result<StageLog> log = ReadStageLog(store, PipelineNamespace(spec), node);
  if (log.status().IsNotFound()) {
    return NotFound("no computation of \"" + node + "\" is logged in " + store.Url() +
                    " (a run logs each stage it computes; run the pipeline, with --fresh if "
                    "every stage is reused)");
  }
  return log;
}

std::string FormatProfile(const nlohmann::json& profile) {
  if (!profile.is_object()) return "";
  std::string out;
  const auto children = profile.find("children");
  if (children == profile.end() || !children->is_array()) return out;
  for (const nlohmann::json& op : *children) FormatOperator(op, 0, &out);
  return out;
}

}  // namespace respawn

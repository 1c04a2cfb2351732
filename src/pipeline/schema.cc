#include "pipeline/schema.h"

#include <algorithm>
#include <charconv>
#include <functional>
#include <limits>

#include "util/hash.h"

namespace respawn {
namespace {

using nlohmann::json;

constexpr std::string_view kStagePrefix = "stage/";
constexpr std::string_view kOutputPrefix = "output/";
constexpr std::string_view kRunPrefix = "run/";

// Reads the fields of one metadata object without throwing: nlohmann's value() and at() throw
// on a missing key or a wrong type, so each field is found, type-checked, then read.
class MetaReader {
 public:
  MetaReader(const json& meta, std::string_view entry) : meta_(meta), entry_(entry) {}

  // Checks the object and its version; every other read REQUIRES this returned OK.
  Status Open() const {
    if (!meta_.is_object()) return Bad("", "an object");
    uint64_t version = 1;
    RETURN_IF_ERROR(U64("v", &version));
    if (version > static_cast<uint64_t>(kMetaVersion)) {
      return FailedPrecondition("ledger entry \"" + entry_ + "\" was written by a newer respawn " +
                                "(metadata version " + std::to_string(version) +
                                "; this one reads up to " + std::to_string(kMetaVersion) +
                                "): upgrade respawn to read it");
    }
    return Status::OK();
  }

  Status U64(std::string_view key, uint64_t* out) const {
    const json* v = Find(key);
    if (v == nullptr) return Status::OK();
    if (v->is_number_unsigned()) {
      *out = v->get<uint64_t>();
    } else if (v->is_number_integer() && v->get<int64_t>() >= 0) {
      *out = static_cast<uint64_t>(v->get<int64_t>());
    } else {
      return Bad(key, "a number of at least 0");
    }
    return Status::OK();
  }

  Status Int(std::string_view key, int* out) const {
    const json* v = Find(key);
    if (v == nullptr) return Status::OK();
    if (!v->is_number_integer()) return Bad(key, "an integer");
    int64_t n = v->get<int64_t>();
    if (n < std::numeric_limits<int>::min() || n > std::numeric_limits<int>::max()) {
      return Bad(key, "a 32-bit integer");
    }
    *out = static_cast<int>(n);
    return Status::OK();
  }

  Status Double(std::string_view key, double* out) const {
    const json* v = Find(key);
    if (v == nullptr) return Status::OK();
    if (!v->is_number()) return Bad(key, "a number");
    *out = v->get<double>();
    return Status::OK();
  }

  Status String(std::string_view key, std::string* out) const {
    const json* v = Find(key);
    if (v == nullptr) return Status::OK();
    if (!v->is_string()) return Bad(key, "a string");
    *out = v->get<std::string>();
    return Status::OK();
  }

  Status Strings(std::string_view key, std::optional<std::vector<std::string>>* out) const {
    const json* v = Find(key);
    if (v == nullptr) return Status::OK();
    if (!v->is_array()) return Bad(key, "a list of strings");
    out->emplace();
    for (const json& s : *v) {
      if (!s.is_string()) return Bad(key, "a list of strings");
      (*out)->push_back(s.get<std::string>());
    }
    return Status::OK();
  }

  // The object or list at `key`, or null when absent; DataLoss when it is another type.
  Result<const json*> Child(std::string_view key, bool list) const {
    const json* v = Find(key);
    if (v == nullptr) return v;
    if (list ? !v->is_array() : !v->is_object()) return Bad(key, list ? "a list" : "an object");
    return v;
  }

  const std::string& entry() const { return entry_; }

 private:
  const json* Find(std::string_view key) const {
    auto it = meta_.find(std::string(key));
    return it == meta_.end() ? nullptr : &*it;
  }

  Status Bad(std::string_view key, std::string_view expected) const {
    std::string what = key.empty() ? "its metadata" : "field \"" + std::string(key) + "\"";
    return DataLoss("ledger entry \"" + entry_ + "\": " + what + " is not " +
                    std::string(expected) + "; it was not written by respawn as this version " +
                    "knows it");
  }

  const json& meta_;
  std::string entry_;
};

json Versioned(json meta) {
  meta["v"] = kMetaVersion;
  return meta;
}

// "p0007" -> 7; nullopt unless 'p' and at least 4 decimal digits.
std::optional<uint32_t> ParsePartition(std::string_view s) {
  if (s.size() < 5 || s.front() != 'p') return std::nullopt;
  uint32_t n = 0;
  auto [end, ec] = std::from_chars(s.data() + 1, s.data() + s.size(), n);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return n;
}

Result<RunNodeMeta> DecodeRunNode(const json& j, std::string_view entry) {
  MetaReader r(j, std::string(entry) + " (a node)");
  if (!j.is_object())
    return DataLoss("ledger entry \"" + std::string(entry) +
                    "\": a node of the report is not an object");
  RunNodeMeta node;
  RETURN_IF_ERROR(r.String("name", &node.name));
  RETURN_IF_ERROR(r.String("action", &node.action));
  RETURN_IF_ERROR(r.String("reason", &node.reason));
  RETURN_IF_ERROR(r.Double("seconds", &node.seconds));
  std::optional<std::vector<std::string>> warnings;
  RETURN_IF_ERROR(r.Strings("warnings", &warnings));
  if (warnings) node.warnings = std::move(*warnings);
  return node;
}

Result<RequestCounts> DecodeRequests(const json& j, std::string_view entry) {
  MetaReader r(j, std::string(entry) + " (requests)");
  RequestCounts q;
  RETURN_IF_ERROR(r.U64("put", &q.puts));
  RETURN_IF_ERROR(r.U64("get", &q.gets));
  RETURN_IF_ERROR(r.U64("stat", &q.stats));
  RETURN_IF_ERROR(r.U64("list", &q.lists));
  RETURN_IF_ERROR(r.U64("delete", &q.deletes));
  RETURN_IF_ERROR(r.U64("bytes_written", &q.bytes_written));
  RETURN_IF_ERROR(r.U64("bytes_read", &q.bytes_read));
  return q;
}

json EncodeRunOutput(const RunOutputMeta& o) {
  json objects = json::array();
  for (const ledger::DataObject& d : o.objects) {
    objects.push_back({{"key", d.key}, {"size", d.size}, {"xxh3", HexU64(d.xxh3)}});
  }
  return {{"output", o.output},
          {"stage", o.stage},
          {"rows", o.rows},
          {"bytes", o.bytes},
          {"objects", std::move(objects)}};
}

Result<ledger::DataObject> DecodeDataObject(const json& j, const std::string& entry) {
  MetaReader r(j, entry + " (a data object)");
  if (!j.is_object())
    return DataLoss("ledger entry \"" + entry + "\": a data object is not an object");
  ledger::DataObject d;
  std::string xxh3;
  RETURN_IF_ERROR(r.String("key", &d.key));
  RETURN_IF_ERROR(r.U64("size", &d.size));
  RETURN_IF_ERROR(r.String("xxh3", &xxh3));
  Result<uint64_t> parsed = ParseHexU64(xxh3);
  if (!parsed.ok()) {
    return DataLoss("ledger entry \"" + entry +
                    "\": a data object's \"xxh3\" is not 16 hex digits");
  }
  d.xxh3 = *parsed;
  return d;
}

Result<RunOutputMeta> DecodeRunOutput(const json& j, std::string_view entry) {
  const std::string where = std::string(entry) + " (an output)";
  MetaReader r(j, where);
  if (!j.is_object()) {
    return DataLoss("ledger entry \"" + std::string(entry) + "\": an output is not an object");
  }
  RunOutputMeta o;
  RETURN_IF_ERROR(r.String("output", &o.output));
  RETURN_IF_ERROR(r.String("stage", &o.stage));
  RETURN_IF_ERROR(r.U64("rows", &o.rows));
  RETURN_IF_ERROR(r.U64("bytes", &o.bytes));
  ASSIGN_OR_RETURN(const json* objects, r.Child("objects", /*list=*/true));
  if (objects != nullptr) {
    for (const json& d : *objects) {
      ASSIGN_OR_RETURN(ledger::DataObject object, DecodeDataObject(d, std::string(entry)));
      o.objects.push_back(std::move(object));
    }
  }
  return o;
}

}  // namespace

std::string PipelineNamespace(const PipelineSpec& spec) { return "pipelines/" + spec.name; }

std::string StageEntryName(std::string_view node) {
  return std::string(kStagePrefix) + std::string(node);
}

std::string PartitionEntryName(std::string_view node, uint32_t partition) {
  std::string digits = std::to_string(partition);
  if (digits.size() < 4) digits.insert(0, 4 - digits.size(), '0');
  return StageEntryName(node) + "/p" + digits;
}

std::string OutputEntryName(std::string_view output) {
  return std::string(kOutputPrefix) + std::string(output);
}

std::string RunEntryName(std::string_view run_id) {
  return std::string(kRunPrefix) + std::string(run_id);
}

std::string EntryName::Format() const {
  switch (kind) {
    case EntryKind::kStage:
      return partition ? PartitionEntryName(name, *partition) : StageEntryName(name);
    case EntryKind::kOutput:
      return OutputEntryName(name);
    case EntryKind::kRun:
      return RunEntryName(name);
    case EntryKind::kOwner:
      return std::string(kOwnerEntry);
  }
  return std::string();
}

std::optional<EntryName> EntryName::Parse(std::string_view entry) {
  EntryName out;
  if (entry == kOwnerEntry) {
    out.kind = EntryKind::kOwner;
    return out;
  }
  auto rest_after = [&entry](std::string_view prefix) -> std::optional<std::string_view> {
    if (entry.substr(0, prefix.size()) != prefix || entry.size() == prefix.size()) {
      return std::nullopt;
    }
    return entry.substr(prefix.size());
  };
  if (std::optional<std::string_view> run = rest_after(kRunPrefix)) {
    out.kind = EntryKind::kRun;
    out.name = std::string(*run);
    return out;
  }
  std::optional<std::string_view> rest = rest_after(kOutputPrefix);
  out.kind = EntryKind::kOutput;
  if (!rest) {
    rest = rest_after(kStagePrefix);
    out.kind = EntryKind::kStage;
  }
  if (!rest) return std::nullopt;
  size_t slash = rest->find('/');
  out.name = std::string(rest->substr(0, slash));
  if (slash == std::string_view::npos) return out;
  if (out.kind != EntryKind::kStage || out.name.empty()) return std::nullopt;
  out.partition = ParsePartition(rest->substr(slash + 1));
  if (!out.partition) return std::nullopt;
  return out;
}

json EncodeCheckpointMeta(const CheckpointMeta& meta) {
  json j = {{"rows", meta.rows},
            {"bytes", meta.bytes},
            {"compute_seconds", meta.compute_seconds},
            {"components", meta.components}};
  if (!meta.expectations.empty()) j["expectations"] = meta.expectations;
  return Versioned(std::move(j));
}

Result<CheckpointMeta> DecodeCheckpointMeta(const json& meta, std::string_view entry) {
  MetaReader r(meta, entry);
  RETURN_IF_ERROR(r.Open());
  CheckpointMeta out;
  RETURN_IF_ERROR(r.U64("rows", &out.rows));
  RETURN_IF_ERROR(r.U64("bytes", &out.bytes));
  RETURN_IF_ERROR(r.Double("compute_seconds", &out.compute_seconds));
  RETURN_IF_ERROR(r.String("components", &out.components));
  RETURN_IF_ERROR(r.String("expectations", &out.expectations));
  return out;
}

json EncodeOutputMeta(const OutputMeta& meta) {
  json j = {{"path", meta.path}, {"size", meta.size}, {"xxh3", HexU64(meta.xxh3)}};
  if (!meta.etag.empty()) j["etag"] = meta.etag;
  return Versioned(std::move(j));
}

Result<OutputMeta> DecodeOutputMeta(const json& meta, std::string_view entry) {
  MetaReader r(meta, entry);
  RETURN_IF_ERROR(r.Open());
  OutputMeta out;
  std::string xxh3;
  RETURN_IF_ERROR(r.String("path", &out.path));
  RETURN_IF_ERROR(r.U64("size", &out.size));
  RETURN_IF_ERROR(r.String("xxh3", &xxh3));
  RETURN_IF_ERROR(r.String("etag", &out.etag));
  Result<uint64_t> parsed = ParseHexU64(xxh3);
  if (!parsed.ok()) {
    return DataLoss("ledger entry \"" + std::string(entry) +
                    "\": field \"xxh3\" is not 16 hex digits");
  }
  out.xxh3 = *parsed;
  return out;
}

json EncodeRunReportMeta(const RunReportMeta& meta) {
  json nodes = json::array();
  for (const RunNodeMeta& n : meta.nodes) {
    json node = {
        {"name", n.name}, {"action", n.action}, {"reason", n.reason}, {"seconds", n.seconds}};
    if (!n.warnings.empty()) node["warnings"] = n.warnings;
    nodes.push_back(std::move(node));
  }
  json j = {
      {"result", meta.result},     {"seconds", meta.seconds}, {"saved_seconds", meta.saved_seconds},
      {"computed", meta.computed}, {"reused", meta.reused},   {"error", meta.error},
      {"nodes", std::move(nodes)}};
  if (meta.requests) {
    const RequestCounts& q = *meta.requests;
    j["requests"] = {{"put", q.puts},
                     {"get", q.gets},
                     {"stat", q.stats},
                     {"list", q.lists},
                     {"delete", q.deletes},
                     {"bytes_written", q.bytes_written},
                     {"bytes_read", q.bytes_read}};
  }
  if (meta.results) j["results"] = *meta.results;
  if (!meta.outputs.empty()) {
    json outputs = json::array();
    for (const RunOutputMeta& o : meta.outputs) outputs.push_back(EncodeRunOutput(o));
    j["outputs"] = std::move(outputs);
  }
  if (meta.work_tables) j["work_tables"] = *meta.work_tables;
  return Versioned(std::move(j));
}

Result<RunReportMeta> DecodeRunReportMeta(const json& meta, std::string_view entry) {
  MetaReader r(meta, entry);
  RETURN_IF_ERROR(r.Open());
  RunReportMeta out;
  RETURN_IF_ERROR(r.String("result", &out.result));
  RETURN_IF_ERROR(r.Double("seconds", &out.seconds));
  RETURN_IF_ERROR(r.Double("saved_seconds", &out.saved_seconds));
  RETURN_IF_ERROR(r.Int("computed", &out.computed));
  RETURN_IF_ERROR(r.Int("reused", &out.reused));
  RETURN_IF_ERROR(r.String("error", &out.error));
  RETURN_IF_ERROR(r.Strings("results", &out.results));
  RETURN_IF_ERROR(r.Strings("work_tables", &out.work_tables));
  ASSIGN_OR_RETURN(const json* nodes, r.Child("nodes", /*list=*/true));
  if (nodes != nullptr) {
    for (const json& n : *nodes) {
      ASSIGN_OR_RETURN(RunNodeMeta node, DecodeRunNode(n, entry));
      out.nodes.push_back(std::move(node));
    }
  }
  ASSIGN_OR_RETURN(const json* requests, r.Child("requests", /*list=*/false));
  if (requests != nullptr) {
    ASSIGN_OR_RETURN(out.requests, DecodeRequests(*requests, entry));
  }
  ASSIGN_OR_RETURN(const json* outputs, r.Child("outputs", /*list=*/true));
  if (outputs != nullptr) {
    for (const json& o : *outputs) {
      ASSIGN_OR_RETURN(RunOutputMeta output, DecodeRunOutput(o, entry));
      out.outputs.push_back(std::move(output));
    }
  }
  return out;
}

json EncodeOwnerMeta(const OwnerMeta& meta) {
  return Versioned({{"path", meta.path}, {"id", meta.id}});
}

Result<OwnerMeta> DecodeOwnerMeta(const json& meta, std::string_view entry) {
  MetaReader r(meta, entry);
  RETURN_IF_ERROR(r.Open());
  OwnerMeta out;
  RETURN_IF_ERROR(r.String("path", &out.path));
  RETURN_IF_ERROR(r.String("id", &out.id));
  return out;
}

Result<std::vector<RunReportEntry>> ReadRunReports(const ledger::LedgerState& state) {
  std::vector<RunReportEntry> out;
  for (const auto& [name, entry] : state.entries) {
    std::optional<EntryName> parsed = EntryName::Parse(name);
    if (!parsed || parsed->kind != EntryKind::kRun) continue;
    ASSIGN_OR_RETURN(RunReportMeta meta, DecodeRunReportMeta(entry.meta, name));
    out.push_back({parsed->name, &entry, std::move(meta)});
  }
  std::sort(out.begin(), out.end(), [](const RunReportEntry& a, const RunReportEntry& b) {
    return a.entry->sequence < b.entry->sequence;
  });
  return out;
}

std::map<std::string, std::string> DroppedWorkTables(const ledger::LedgerState& state) {
  // Newest report first: the first that lists an entry names the run it was dropped after.
  std::vector<std::pair<uint64_t, const std::string*>> reports;
  for (const auto& [name, entry] : state.entries) {
    std::optional<EntryName> parsed = EntryName::Parse(name);
    if (parsed && parsed->kind == EntryKind::kRun) reports.emplace_back(entry.sequence, &name);
  }
  std::sort(reports.begin(), reports.end(), std::greater<>());
  std::map<std::string, std::string> dropped;
  for (const auto& [sequence, name] : reports) {
    Result<RunReportMeta> meta = DecodeRunReportMeta(state.entries.at(*name).meta, *name);
    if (!meta.ok() || !meta->work_tables) continue;
    const std::string run_id = EntryName::Parse(*name)->name;
    for (const std::string& table : *meta->work_tables) {
      if (!state.entries.count(table)) dropped.emplace(table, run_id);
    }
  }
  return dropped;
}

}  // namespace respawn

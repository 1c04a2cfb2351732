#include "sql/table_refs.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>

#include "util/strings.h"

namespace respawn {
namespace {

using Json = nlohmann::json;

std::string StringField(const Json& node, const char* name) {
  auto it = node.find(name);
  return it != node.end() && it->is_string() ? it->get<std::string>() : std::string();
}

size_t QueryLocation(const Json& node) {
  auto loc = node.find("query_location");
  if (loc == node.end() || !loc->is_number_unsigned()) return SIZE_MAX;
  uint64_t v = loc->get<uint64_t>();
  return v == UINT64_MAX ? SIZE_MAX : static_cast<size_t>(v);
}

// A table name DuckDB can only read as a file (replacement scan): pipeline tables are plain
// identifiers, so a name with a '.' or '/' in it is a path.
bool IsFileName(const TableReference& ref) {
  return ref.catalog.empty() && ref.schema.empty() &&
         ref.table.find_first_of("./") != std::string::npos;
}

// "line L, column C" (1-based; columns count bytes) of byte `offset` of `sql`.
std::string LineColumn(std::string_view sql, size_t offset) {
  offset = std::min(offset, sql.size());
  size_t line = 1 + static_cast<size_t>(std::count(sql.begin(), sql.begin() + offset, '\n'));
  size_t line_start = sql.rfind('\n', offset == 0 ? std::string_view::npos : offset - 1);
  size_t column = line_start == std::string_view::npos ? offset + 1 : offset - line_start;
  return "line " + std::to_string(line) + ", column " + std::to_string(column);
}

// The string of a VARCHAR constant expression, if `node` is one.
std::optional<std::string> StringConstant(const Json& node) {
  if (StringField(node, "class") != "CONSTANT") return std::nullopt;
  auto value = node.find("value");
  if (value == node.end() || !value->is_object()) return std::nullopt;
  auto is_null = value->find("is_null");
  if (is_null != value->end() && is_null->is_boolean() && is_null->get<bool>()) return std::nullopt;
  auto type = value->find("type");
  if (type == value->end() || !type->is_object() || StringField(*type, "id") != "VARCHAR") {
    return std::nullopt;
  }
  auto text = value->find("value");
  if (text == value->end() || !text->is_string()) return std::nullopt;
  return text->get<std::string>();
}

// Collects base-table references (and files read by name) from DuckDB's serialized parse tree.
class TableCollector {
 public:
  // `scope`: lower-cased names of the CTEs visible at `node`.
  void Walk(const Json& node, const std::vector<std::string>& scope) {
    if (node.is_array()) {
      for (const Json& child : node) Walk(child, scope);
      return;
    }
    if (!node.is_object()) return;

    std::vector<std::string> local = scope;
    std::string type = StringField(node, "type");
    if (type == "RECURSIVE_CTE_NODE") {
      std::string self = StringField(node, "cte_name");
      if (!self.empty()) local.push_back(Lower(self));
    }
    auto cte_map = node.find("cte_map");
    if (cte_map != node.end() && cte_map->is_object()) {
      auto entries = cte_map->find("map");
      if (entries != cte_map->end() && entries->is_array()) {
        for (const Json& entry : *entries) {
          if (!entry.is_object()) continue;
          auto body = entry.find("value");
          // A CTE's body sees the CTEs before it; itself only when recursive (above).
          if (body != entry.end()) Walk(*body, local);
          std::string name = StringField(entry, "key");
          if (!name.empty()) local.push_back(Lower(name));
        }
      }
    }
    if (type == "BASE_TABLE" && node.contains("table_name")) Record(node, local);
    if (type == "TABLE_FUNCTION") RecordFunction(node);
    for (auto it = node.begin(); it != node.end(); ++it) {
      if (it.key() == "cte_map") continue;
      Walk(it.value(), local);
    }
  }

  std::vector<TableReference> Take() {
    std::sort(found_.begin(), found_.end(),
              [](const TableReference& a, const TableReference& b) { return a.offset < b.offset; });
    return std::move(found_);
  }

  std::vector<FileReference> TakeFiles() {
    std::stable_sort(
        files_.begin(), files_.end(),
        [](const FileReference& a, const FileReference& b) { return a.offset < b.offset; });
    return std::move(files_);
  }

  /// The first file-reading function whose files cannot be known: its offset and what it got.
  const std::optional<std::pair<size_t, std::string>>& unknown_files() const {
    return unknown_files_;
  }

 private:
  void RecordFunction(const Json& node) {
    auto function = node.find("function");
    if (function == node.end() || !function->is_object()) return;
    std::string name = Lower(StringField(*function, "function_name"));
    if (!IsFileReadingFunction(name)) return;
    const size_t at = QueryLocation(*function);
    // The first positional argument; named parameters (header = true) are comparisons.
    const Json* first = nullptr;
    auto children = function->find("children");
    if (children != function->end() && children->is_array()) {
      for (const Json& child : *children) {
        if (StringField(child, "class") == "COMPARISON" && child.contains("left") &&
            StringField(child["left"], "class") == "COLUMN_REF") {
          continue;
        }
        first = &child;
        break;
      }
    }
    auto unknown = [&](const std::string& what) {
      if (!unknown_files_) unknown_files_.emplace(at, name + "(" + what + ")");
    };
    if (first == nullptr) return unknown("no path");
    if (std::optional<std::string> path = StringConstant(*first)) {
      files_.push_back({name, *path, QueryLocation(*first)});
      return;
    }
    if (StringField(*first, "class") == "FUNCTION" &&
        Lower(StringField(*first, "function_name")) == "list_value") {
      auto items = first->find("children");
      if (items == first->end() || !items->is_array()) return unknown("a list");
      std::vector<FileReference> listed;
      for (const Json& item : *items) {
        std::optional<std::string> path = StringConstant(item);
        if (!path) return unknown("a list with a " + Lower(StringField(item, "class")) + " in it");
        listed.push_back({name, *path, QueryLocation(item)});
      }
      files_.insert(files_.end(), listed.begin(), listed.end());
      return;
    }
    unknown("a " + Lower(StringField(*first, "class")));
  }

  void Record(const Json& node, const std::vector<std::string>& scope) {
    TableReference ref;
    ref.catalog = StringField(node, "catalog_name");
    ref.schema = StringField(node, "schema_name");
    ref.table = StringField(node, "table_name");
    if (ref.table.empty()) return;
    if (ref.catalog.empty() && ref.schema.empty() &&
        std::find(scope.begin(), scope.end(), Lower(ref.table)) != scope.end()) {
      return;  // a CTE
    }
    ref.offset = QueryLocation(node);
    if (IsFileName(ref)) {
      files_.push_back({"", ref.table, ref.offset});
      return;
    }
    std::string key = Lower(ref.QualifiedName());
    auto [it, inserted] = index_.emplace(key, found_.size());
    if (inserted) {
      found_.push_back(std::move(ref));
    } else if (ref.offset < found_[it->second].offset) {
      found_[it->second] = std::move(ref);
    }
  }

  std::vector<TableReference> found_;
  std::map<std::string, size_t> index_;  // lower-cased qualified name -> found_ index
  std::vector<FileReference> files_;
  std::optional<std::pair<size_t, std::string>> unknown_files_;
};

// Parses `sql` with DuckDB and walks its tree (FindTablesRead's errors).
Result<TableCollector> Collect(Connection& conn, std::string_view sql,
                               std::optional<size_t>* error_offset) {
  if (error_offset != nullptr) error_offset->reset();
  ASSIGN_OR_RETURN(Value serialized,
                   conn.QueryScalar("SELECT json_serialize_sql($1::VARCHAR)", {std::string(sql)}));
  Json tree = Json::parse(serialized.string_value(), nullptr, /*allow_exceptions=*/false);
  if (tree.is_discarded() || !tree.is_object()) {
    return Internal("json_serialize_sql returned something that is not a JSON object");
  }
  auto error = tree.find("error");
  if (error != tree.end() && error->is_boolean() && error->get<bool>()) {
    std::string type = StringField(tree, "error_type");
    std::string message = StringField(tree, "error_message");
    std::string position = StringField(tree, "position");
    if (type == "not implemented") {
      return InvalidArgument(
          "cannot find the tables this SQL reads (DuckDB: " + message +
          "); a PIVOT needs an explicit IN list (PIVOT t ON c IN ('a', 'b') USING sum(x)), and "
          "only one SELECT can be analyzed");
    }
    std::string text = (type == "parser" ? std::string("Parser") : type) + " Error: " + message;
    size_t offset = 0;
    auto [ptr, ec] = std::from_chars(position.data(), position.data() + position.size(), offset);
    if (!position.empty() && ec == std::errc() && ptr == position.data() + position.size()) {
      if (error_offset != nullptr) *error_offset = offset;
      text += " (" + LineColumn(sql, offset) + ")";
    }
    return InvalidArgument(std::move(text));
  }
  TableCollector collector;
  auto statements = tree.find("statements");
  if (statements != tree.end()) collector.Walk(*statements, {});
  return collector;
}

}  // namespace

std::string TableReference::QualifiedName() const {
  std::string out;
  for (const std::string* part : {&catalog, &schema, &table}) {
    if (part->empty()) continue;
    if (!out.empty()) out += '.';
    out += *part;
  }
  return out;
}

Result<std::vector<TableReference>> FindTablesRead(Connection& conn, std::string_view sql,
                                                   std::optional<size_t>* error_offset) {
  ASSIGN_OR_RETURN(TableCollector collector, Collect(conn, sql, error_offset));
  return collector.Take();
}

Result<std::vector<std::string>> FindTableNamesRead(Connection& conn, std::string_view sql) {
  ASSIGN_OR_RETURN(std::vector<TableReference> refs, FindTablesRead(conn, sql));
  std::vector<std::string> names;
  names.reserve(refs.size());
  for (const TableReference& r : refs) names.push_back(r.QualifiedName());
  return names;
}

bool IsFileReadingFunction(std::string_view name) {
  static const std::set<std::string, std::less<>> kFunctions = {"read_csv",
                                                                "read_csv_auto",
                                                                "sniff_csv",
                                                                "read_parquet",
                                                                "parquet_scan",
                                                                "parquet_metadata",
                                                                "parquet_schema",
                                                                "parquet_file_metadata",
                                                                "parquet_kv_metadata",
                                                                "parquet_bloom_probe",
                                                                "read_json",
                                                                "read_json_auto",
                                                                "read_json_objects",
                                                                "read_json_objects_auto",
                                                                "read_ndjson",
                                                                "read_ndjson_auto",
                                                                "read_ndjson_objects",
                                                                "read_text",
                                                                "read_blob",
                                                                "glob"};
  return kFunctions.count(Lower(name)) > 0;
}

Result<std::vector<FileReference>> FindFilesRead(Connection& conn, std::string_view sql) {
  ASSIGN_OR_RETURN(TableCollector collector, Collect(conn, sql, nullptr));
  if (const auto& unknown = collector.unknown_files()) {
    std::string where =
        unknown->first == SIZE_MAX ? "" : " (" + LineColumn(sql, unknown->first) + ")";
    return InvalidArgument(unknown->second + where +
                           ": the files it reads are not named by a string literal or a list of "
                           "them, so they cannot be fingerprinted before the stage runs; write "
                           "the path, or declare a [sources.<name>] and read that table");
  }
  return collector.TakeFiles();
}

}  // namespace respawn

#include "sql/sql_type.h"

#include <nlohmann/json.hpp>

#include "sql/engine.h"
#include "sql/engine_internal.h"

namespace respawn {
namespace {

using Json = nlohmann::json;

bool IsNested(const std::string& id) {
  return id == "LIST" || id == "ARRAY" || id == "STRUCT" || id == "MAP" || id == "UNION";
}

Json ToJson(const SqlType& t) {
  Json j = {{"id", t.id}};
  if (!t.alias.empty()) j["alias"] = t.alias;
  if (t.id == "DECIMAL") {
    j["width"] = t.width;
    j["scale"] = t.scale;
  }
  if (t.id == "ARRAY") j["size"] = t.array_size;
  if (t.id == "ENUM") j["labels"] = t.labels;
  if (IsNested(t.id)) {
    Json children = Json::array();
    for (const auto& [name, child] : t.children) {
      children.push_back({{"name", name}, {"type", ToJson(child)}});
    }
    j["children"] = std::move(children);
  }
  return j;
}

// Non-throwing accessors: nlohmann's get<>() throws on a type mismatch.
Status Bad(std::string_view what) {
  return InvalidArgument("bad column type record: " + std::string(what));
}

Result<std::string> StringField(const Json& j, const char* key, bool required) {
  auto it = j.find(key);
  if (it == j.end()) {
    if (required) return Bad(std::string("no \"") + key + "\"");
    return std::string();
  }
  if (!it->is_string()) return Bad(std::string("\"") + key + "\" is not a string");
  return it->get<std::string>();
}

Result<uint64_t> NumberField(const Json& j, const char* key, uint64_t max) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_unsigned() || it->get<uint64_t>() > max) {
    return Bad(std::string("\"") + key + "\" is missing or out of range");
  }
  return it->get<uint64_t>();
}

Result<SqlType> FromJson(const Json& j, int depth) {
  if (depth > 100) return Bad("nested too deeply");
  if (!j.is_object()) return Bad("a type is not an object");
  SqlType t;
  ASSIGN_OR_RETURN(t.id, StringField(j, "id", true));
  ASSIGN_OR_RETURN(t.alias, StringField(j, "alias", false));
  if (t.id == "DECIMAL") {
    ASSIGN_OR_RETURN(uint64_t width, NumberField(j, "width", 38));
    ASSIGN_OR_RETURN(uint64_t scale, NumberField(j, "scale", 38));
    t.width = static_cast<uint8_t>(width);
    t.scale = static_cast<uint8_t>(scale);
  }
  if (t.id == "ARRAY") {
    ASSIGN_OR_RETURN(t.array_size, NumberField(j, "size", UINT32_MAX));
  }
  if (t.id == "ENUM") {
    auto it = j.find("labels");
    if (it == j.end() || !it->is_array()) return Bad("an ENUM without \"labels\"");
    for (const Json& label : *it) {
      if (!label.is_string()) return Bad("an ENUM label is not a string");
      t.labels.push_back(label.get<std::string>());
    }
  }
  if (IsNested(t.id)) {
    auto it = j.find("children");
    if (it == j.end() || !it->is_array()) return Bad(t.id + " without \"children\"");
    for (const Json& c : *it) {
      if (!c.is_object() || !c.contains("type")) return Bad("a child without a type");
      ASSIGN_OR_RETURN(std::string name, StringField(c, "name", true));
      ASSIGN_OR_RETURN(SqlType child, FromJson(c["type"], depth + 1));
      t.children.emplace_back(std::move(name), std::move(child));
    }
    size_t want = t.id == "LIST" || t.id == "ARRAY" ? 1 : t.id == "MAP" ? 2 : 0;
    if (want != 0 ? t.children.size() != want : t.children.empty()) {
      return Bad(t.id + " with " + std::to_string(t.children.size()) + " children");
    }
  }
  return t;
}

// Owns a duckdb_logical_type.
class TypeRef {
 public:
  explicit TypeRef(duckdb_logical_type type) : type_(type) {}
  ~TypeRef() {
    if (type_ != nullptr) duckdb_destroy_logical_type(&type_);
  }
  TypeRef(const TypeRef&) = delete;
  TypeRef& operator=(const TypeRef&) = delete;
  duckdb_logical_type get() const { return type_; }

 private:
  duckdb_logical_type type_;
};

const char* SimpleTypeName(duckdb_type id) {
  switch (id) {
    case DUCKDB_TYPE_BOOLEAN:
      return "BOOLEAN";
    case DUCKDB_TYPE_TINYINT:
      return "TINYINT";
    case DUCKDB_TYPE_SMALLINT:
      return "SMALLINT";
    case DUCKDB_TYPE_INTEGER:
      return "INTEGER";
    case DUCKDB_TYPE_BIGINT:
      return "BIGINT";
    case DUCKDB_TYPE_HUGEINT:
      return "HUGEINT";
    case DUCKDB_TYPE_UTINYINT:
      return "UTINYINT";
    case DUCKDB_TYPE_USMALLINT:
      return "USMALLINT";
    case DUCKDB_TYPE_UINTEGER:
      return "UINTEGER";
    case DUCKDB_TYPE_UBIGINT:
      return "UBIGINT";
    case DUCKDB_TYPE_UHUGEINT:
      return "UHUGEINT";
    case DUCKDB_TYPE_FLOAT:
      return "FLOAT";
    case DUCKDB_TYPE_DOUBLE:
      return "DOUBLE";
    case DUCKDB_TYPE_DATE:
      return "DATE";
    case DUCKDB_TYPE_TIME:
      return "TIME";
    case DUCKDB_TYPE_TIME_NS:
      return "TIME_NS";
    case DUCKDB_TYPE_TIME_TZ:
      return "TIME WITH TIME ZONE";
    case DUCKDB_TYPE_TIMESTAMP:
      return "TIMESTAMP";
    case DUCKDB_TYPE_TIMESTAMP_S:
      return "TIMESTAMP_S";
    case DUCKDB_TYPE_TIMESTAMP_MS:
      return "TIMESTAMP_MS";
    case DUCKDB_TYPE_TIMESTAMP_NS:
      return "TIMESTAMP_NS";
    case DUCKDB_TYPE_TIMESTAMP_TZ:
      return "TIMESTAMP WITH TIME ZONE";
    case DUCKDB_TYPE_INTERVAL:
      return "INTERVAL";
    case DUCKDB_TYPE_VARCHAR:
      return "VARCHAR";
    case DUCKDB_TYPE_BLOB:
      return "BLOB";
    case DUCKDB_TYPE_BIT:
      return "BIT";
    case DUCKDB_TYPE_BIGNUM:
      return "BIGNUM";
    case DUCKDB_TYPE_UUID:
      return "UUID";
    case DUCKDB_TYPE_SQLNULL:
      return "NULL";
    default:
      return nullptr;
  }
}

}  // namespace

std::string SqlType::ToSql() const {
  if (!alias.empty()) return alias;
  if (id == "DECIMAL") {
    return "DECIMAL(" + std::to_string(width) + "," + std::to_string(scale) + ")";
  }
  if (id == "ENUM") {
    std::string out = "ENUM(";
    for (size_t i = 0; i < labels.size(); ++i) out += (i ? ", " : "") + QuoteLiteral(labels[i]);
    return out + ")";
  }
  if (id == "LIST") return child().ToSql() + "[]";
  if (id == "ARRAY") return child().ToSql() + "[" + std::to_string(array_size) + "]";
  if (id == "MAP") return "MAP(" + child(0).ToSql() + ", " + child(1).ToSql() + ")";
  if (id == "STRUCT" || id == "UNION") {
    std::string out = id + "(";
    for (size_t i = 0; i < children.size(); ++i) {
      if (i) out += ", ";
      if (!children[i].first.empty()) out += QuoteIdentifier(children[i].first) + " ";
      out += children[i].second.ToSql();
    }
    return out + ")";
  }
  return id;
}

bool SqlType::IsSpellable() const {
  for (const auto& [name, child] : children) {
    if ((id == "STRUCT" && name.empty()) || !child.IsSpellable()) return false;
  }
  return true;
}

bool SqlType::IsDescribed() const {
  if (id.empty()) return false;
  for (const auto& [name, child] : children) {
    if (!child.IsDescribed()) return false;
  }
  return true;
}

std::string EncodeColumns(const std::vector<TypedColumn>& columns) {
  Json j = Json::array();
  for (const TypedColumn& c : columns) j.push_back({{"name", c.name}, {"type", ToJson(c.type)}});
  // DuckDB strings are valid UTF-8, so nothing is replaced; the handler only keeps dump() from
  // throwing.
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

Result<std::vector<TypedColumn>> DecodeColumns(std::string_view json) {
  Json j = Json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Bad("not JSON");
  if (!j.is_array()) return Bad("not a list of columns");
  std::vector<TypedColumn> out;
  for (const Json& c : j) {
    if (!c.is_object() || !c.contains("type")) return Bad("a column without a type");
    TypedColumn col;
    ASSIGN_OR_RETURN(col.name, StringField(c, "name", true));
    ASSIGN_OR_RETURN(col.type, FromJson(c["type"], 0));
    out.push_back(std::move(col));
  }
  return out;
}

namespace sql_internal {

Result<SqlType> SqlTypeOf(duckdb_logical_type type) {
  SqlType t;
  t.alias = TakeString(duckdb_logical_type_get_alias(type));
  duckdb_type id = duckdb_get_type_id(type);
  if (const char* name = SimpleTypeName(id)) {
    t.id = name;
    return t;
  }
  switch (id) {
    case DUCKDB_TYPE_DECIMAL:
      t.id = "DECIMAL";
      t.width = duckdb_decimal_width(type);
      t.scale = duckdb_decimal_scale(type);
      return t;
    case DUCKDB_TYPE_ENUM: {
      t.id = "ENUM";
      uint32_t n = duckdb_enum_dictionary_size(type);
      t.labels.reserve(n);
      for (uint32_t i = 0; i < n; ++i) {
        t.labels.push_back(TakeString(duckdb_enum_dictionary_value(type, i)));
      }
      return t;
    }
    case DUCKDB_TYPE_LIST:
    case DUCKDB_TYPE_ARRAY: {
      bool list = id == DUCKDB_TYPE_LIST;
      t.id = list ? "LIST" : "ARRAY";
      if (!list) t.array_size = duckdb_array_type_array_size(type);
      TypeRef child(list ? duckdb_list_type_child_type(type) : duckdb_array_type_child_type(type));
      ASSIGN_OR_RETURN(SqlType c, SqlTypeOf(child.get()));
      t.children.emplace_back("", std::move(c));
      return t;
    }
    case DUCKDB_TYPE_MAP: {
      t.id = "MAP";
      TypeRef key(duckdb_map_type_key_type(type));
      TypeRef value(duckdb_map_type_value_type(type));
      ASSIGN_OR_RETURN(SqlType k, SqlTypeOf(key.get()));
      ASSIGN_OR_RETURN(SqlType v, SqlTypeOf(value.get()));
      t.children.emplace_back("key", std::move(k));
      t.children.emplace_back("value", std::move(v));
      return t;
    }
    case DUCKDB_TYPE_STRUCT: {
      t.id = "STRUCT";
      idx_t n = duckdb_struct_type_child_count(type);
      for (idx_t i = 0; i < n; ++i) {
        TypeRef child(duckdb_struct_type_child_type(type, i));
        ASSIGN_OR_RETURN(SqlType c, SqlTypeOf(child.get()));
        t.children.emplace_back(TakeString(duckdb_struct_type_child_name(type, i)), std::move(c));
      }
      return t;
    }
    case DUCKDB_TYPE_UNION: {
      t.id = "UNION";
      idx_t n = duckdb_union_type_member_count(type);
      for (idx_t i = 0; i < n; ++i) {
        TypeRef member(duckdb_union_type_member_type(type, i));
        ASSIGN_OR_RETURN(SqlType c, SqlTypeOf(member.get()));
        t.children.emplace_back(TakeString(duckdb_union_type_member_name(type, i)), std::move(c));
      }
      return t;
    }
    case DUCKDB_TYPE_INVALID:
      return t;  // id "": TIME_NS, which the C API of DuckDB 1.4 does not name
    default:
      return Unimplemented("DuckDB type #" + std::to_string(static_cast<int>(id)) +
                           " is not supported here (cast the column to a standard type)");
  }
}

}  // namespace sql_internal
}  // namespace respawn

#include "sql/parquet_types.h"

#include "sql/engine.h"
#include "util/strings.h"

namespace respawn {
namespace {

// Types whose values DuckDB's Parquet writer changes or refuses (see the header).
bool IsLossyLeaf(const std::string& id) {
  return id == "HUGEINT" || id == "UHUGEINT" || id == "INTERVAL" || id == "TIME WITH TIME ZONE" ||
         id == "UNION" || id == "TIMESTAMP_S" || id == "TIMESTAMP_MS";
}

// Types the writer keeps exactly but read_parquet returns as another type.
bool IsRetypedLeaf(const std::string& id) {
  return id == "ENUM" || id == "BIT" || id == "BIGNUM" || id == "TIME_NS" || id == "ARRAY";
}

// True when the type holds a lossy type anywhere: its values need another form in Parquet.
bool NeedsConversion(const SqlType& t) {
  if (IsLossyLeaf(t.id)) return true;
  for (const auto& [name, child] : t.children) {
    if (NeedsConversion(child)) return true;
  }
  return false;
}

// True when read_parquet returns the type as it was written (nothing lossy, nothing retyped).
bool ReadsBackAsIs(const SqlType& t) {
  if (IsLossyLeaf(t.id) || IsRetypedLeaf(t.id)) return false;
  if (!t.alias.empty() && t.alias != "JSON") return false;
  for (const auto& [name, child] : t.children) {
    if (!ReadsBackAsIs(child)) return false;
  }
  return true;
}

bool IsUnnamedStruct(const SqlType& t) {
  return t.id == "STRUCT" && !t.children.empty() && t.children[0].first.empty();
}

// The lambda parameter for nesting depth `depth` (unique per depth, unlikely as a column name).
std::string LambdaVar(int depth) { return "__respawn_x" + std::to_string(depth); }

// Field `i` of the STRUCT `expr` of type `t`.
std::string FieldOf(const SqlType& t, const std::string& expr, size_t i) {
  if (IsUnnamedStruct(t)) return "struct_extract(" + expr + ", " + std::to_string(i + 1) + ")";
  return "struct_extract(" + expr + ", " + QuoteLiteral(t.children[i].first) + ")";
}

std::string Field(const std::string& expr, std::string_view name) {
  return "struct_extract(" + expr + ", " + QuoteLiteral(name) + ")";
}

// A STRUCT value built from (name, expression) pairs: struct_pack, or row() for unnamed fields.
std::string Pack(const std::vector<std::pair<std::string, std::string>>& fields, bool unnamed) {
  std::string out = unnamed ? "row(" : "struct_pack(";
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i) out += ", ";
    if (!unnamed) out += QuoteIdentifier(fields[i].first) + " := ";
    out += fields[i].second;
  }
  return out + ")";
}

std::string NullOr(const std::string& expr, const std::string& value) {
  return "CASE WHEN " + expr + " IS NULL THEN NULL ELSE " + value + " END";
}

// The INTERVAL parts as DuckDB stores them (datepart normalizes nothing: 'year' and 'month' split
// the months, 'hour', 'minute' and 'microseconds' split the microseconds, truncating toward 0, so
// the sums are exact and never overflow).
std::string IntervalMonths(const std::string& e) {
  return "(datepart('year', " + e + ") * 12 + datepart('month', " + e + "))";
}
std::string IntervalDays(const std::string& e) { return "datepart('day', " + e + ")"; }
std::string IntervalMicros(const std::string& e) {
  return "(datepart('hour', " + e + ") * 3600000000 + datepart('minute', " + e +
         ") * 60000000 + datepart('microseconds', " + e + "))";
}

constexpr const char* kTwoTo63 = "CAST('9223372036854775808' AS HUGEINT)";

// ---- checkpoint form ----

std::string Store(const SqlType& t, const std::string& e, int depth);

std::string StoreOrSame(const SqlType& t, const std::string& e, int depth) {
  return NeedsConversion(t) ? Store(t, e, depth) : e;
}

// REQUIRES: NeedsConversion(t).
std::string Store(const SqlType& t, const std::string& e, int depth) {
  if (t.id == "HUGEINT" || t.id == "UHUGEINT") {
    // The two's complement halves: >> is arithmetic, & keeps the low 64 bits.
    std::string hi = t.id == "HUGEINT" ? "BIGINT" : "UBIGINT";
    return "struct_pack(\"hi\" := CAST(" + e + " >> 64 AS " + hi + "), \"lo\" := CAST(" + e +
           " & CAST('18446744073709551615' AS " + t.id + ") AS UBIGINT))";
  }
  if (t.id == "INTERVAL") {
    return "struct_pack(\"months\" := CAST(" + IntervalMonths(e) +
           " AS INTEGER), \"days\" := CAST(" + IntervalDays(e) +
           " AS INTEGER), \"micros\" := " + IntervalMicros(e) + ")";
  }
  if (t.id == "TIME WITH TIME ZONE") return "CAST(" + e + " AS VARCHAR)";
  // The writer's own conversion fails on infinity; CAST does not.
  if (t.id == "TIMESTAMP_S" || t.id == "TIMESTAMP_MS") return "CAST(" + e + " AS TIMESTAMP)";
  if (t.id == "UNION") {
    std::vector<std::pair<std::string, std::string>> fields = {
        {"tag", "CAST(union_tag(" + e + ") AS VARCHAR)"}};
    for (size_t i = 0; i < t.children.size(); ++i) {
      std::string member = "union_extract(" + e + ", " + QuoteLiteral(t.children[i].first) + ")";
      fields.emplace_back("m" + std::to_string(i), StoreOrSame(t.child(i), member, depth));
    }
    return Pack(fields, false);
  }
  if (t.id == "LIST" || t.id == "ARRAY") {
    std::string x = LambdaVar(depth);
    return "list_transform(" + e + ", lambda " + x + ": " + Store(t.child(), x, depth + 1) + ")";
  }
  if (t.id == "STRUCT") {
    std::vector<std::pair<std::string, std::string>> fields;
    for (size_t i = 0; i < t.children.size(); ++i) {
      fields.emplace_back(t.children[i].first, StoreOrSame(t.child(i), FieldOf(t, e, i), depth));
    }
    return NullOr(e, Pack(fields, IsUnnamedStruct(t)));
  }
  // MAP: a list of its entries (Parquet MAP keys must be primitive; a converted key is a STRUCT).
  std::string x = LambdaVar(depth);
  return "list_transform(map_entries(" + e + "), lambda " + x + ": " +
         Pack({{"key", StoreOrSame(t.child(0), Field(x, "key"), depth + 1)},
               {"value", StoreOrSame(t.child(1), Field(x, "value"), depth + 1)}},
              false) +
         ")";
}

// ---- reading the checkpoint form back ----

Result<std::string> Restore(const SqlType& t, const std::string& s, int depth);

Result<std::string> RestoreOrSame(const SqlType& t, const std::string& s, int depth) {
  if (ReadsBackAsIs(t)) return s;
  return Restore(t, s, depth);
}

Result<std::string> CastTo(const SqlType& t, const std::string& s) {
  if (!t.IsSpellable()) {
    return Unimplemented("a checkpoint cannot restore the type " + t.ToSql() +
                         " (an unnamed STRUCT, from row(), holding types Parquet cannot store): "
                         "name its fields with struct_pack(name := ...) or {'name': ...}");
  }
  return "CAST(" + s + " AS " + t.ToSql() + ")";
}

// REQUIRES: !ReadsBackAsIs(t). The result has exactly the type t.
Result<std::string> Restore(const SqlType& t, const std::string& s, int depth) {
  if (!NeedsConversion(t)) return CastTo(t, s);  // retyped only: the values are exact
  if (t.id == "HUGEINT") {
    // hi * 2^64 as hi * 2^63 twice: DuckDB's overflow check rejects -2^63 * 2^64 = INT128_MIN.
    std::string hi = "CAST(" + Field(s, "hi") + " AS HUGEINT) * " + kTwoTo63;
    return "(" + hi + " + " + hi + " + CAST(" + Field(s, "lo") + " AS HUGEINT))";
  }
  if (t.id == "UHUGEINT") {
    return "(CAST(" + Field(s, "hi") +
           " AS UHUGEINT) * CAST('18446744073709551616' AS UHUGEINT) + CAST(" + Field(s, "lo") +
           " AS UHUGEINT))";
  }
  if (t.id == "INTERVAL") {
    return "(to_months(" + Field(s, "months") + ") + to_days(" + Field(s, "days") +
           ") + to_microseconds(" + Field(s, "micros") + "))";
  }
  if (t.id == "TIME WITH TIME ZONE" || t.id == "TIMESTAMP_S" || t.id == "TIMESTAMP_MS") {
    return "CAST(" + s + " AS " + t.id + ")";
  }
  if (t.id == "UNION") {
    std::string out = "CASE " + Field(s, "tag");
    for (size_t i = 0; i < t.children.size(); ++i) {
      ASSIGN_OR_RETURN(std::string member,
                       RestoreOrSame(t.child(i), Field(s, "m" + std::to_string(i)), depth));
      ASSIGN_OR_RETURN(
          std::string value,
          CastTo(t, "union_value(" + QuoteIdentifier(t.children[i].first) + " := " + member + ")"));
      out += " WHEN " + QuoteLiteral(t.children[i].first) + " THEN " + value;
    }
    return out + " END";
  }
  if (t.id == "LIST" || t.id == "ARRAY") {
    std::string x = LambdaVar(depth);
    ASSIGN_OR_RETURN(std::string child, RestoreOrSame(t.child(), x, depth + 1));
    std::string list = "list_transform(" + s + ", lambda " + x + ": " + child + ")";
    return t.id == "LIST" ? list : CastTo(t, list);
  }
  if (t.id == "STRUCT") {
    std::vector<std::pair<std::string, std::string>> fields;
    for (size_t i = 0; i < t.children.size(); ++i) {
      ASSIGN_OR_RETURN(std::string field, RestoreOrSame(t.child(i), FieldOf(t, s, i), depth));
      fields.emplace_back(t.children[i].first, std::move(field));
    }
    return NullOr(s, Pack(fields, IsUnnamedStruct(t)));
  }
  // MAP, stored as the list of its entries.
  std::string x = LambdaVar(depth);
  ASSIGN_OR_RETURN(std::string key, RestoreOrSame(t.child(0), Field(x, "key"), depth + 1));
  ASSIGN_OR_RETURN(std::string value, RestoreOrSame(t.child(1), Field(x, "value"), depth + 1));
  return "map_from_entries(list_transform(" + s + ", lambda " + x + ": " +
         Pack({{"key", key}, {"value", value}}, false) + "))";
}

// ---- output form ----

std::string Output(const SqlType& t, const std::string& e, std::string_view column, int depth);

std::string OutputOrSame(const SqlType& t, const std::string& e, std::string_view column,
                         int depth) {
  return NeedsConversion(t) ? Output(t, e, column, depth) : e;
}

// CASE: NULL stays NULL, `ok` keeps `value`, anything else fails with `problem` (text before the
// value) and `fix`.
std::string CheckedOrError(const std::string& e, const std::string& ok, const std::string& value,
                           std::string_view column, const std::string& problem,
                           const std::string& fix) {
  std::string head = "output column \"" + std::string(column) + "\": " + problem + " ";
  return "CASE WHEN " + e + " IS NULL THEN NULL WHEN " + ok + " THEN " + value + " ELSE error(" +
         QuoteLiteral(head) + " || CAST(" + e + " AS VARCHAR) || " + QuoteLiteral(" " + fix) +
         ") END";
}

// REQUIRES: NeedsConversion(t).
std::string Output(const SqlType& t, const std::string& e, std::string_view column, int depth) {
  if (t.id == "HUGEINT" || t.id == "UHUGEINT") {
    std::string max = "CAST('99999999999999999999999999999999999999' AS " + t.id + ")";
    std::string ok = t.id == "HUGEINT" ? e + " BETWEEN -" + max + " AND " + max : e + " <= " + max;
    return CheckedOrError(
        e, ok, "CAST(" + e + " AS DECIMAL(38,0))", column,
        "Parquet holds " + t.id + " as DECIMAL(38,0), which has no room for",
        "(more than 38 digits): cast the column in the stage SQL, to VARCHAR to keep every digit "
        "or to DOUBLE");
  }
  if (t.id == "INTERVAL") {
    std::string micros = IntervalMicros(e);
    std::string ok = IntervalMonths(e) + " >= 0 AND " + IntervalDays(e) + " >= 0 AND " + micros +
                     " >= 0 AND " + micros + " % 1000 = 0 AND " + micros + " <= 4294967295000";
    return CheckedOrError(
        e, ok, e, column, "Parquet's INTERVAL (months, days, milliseconds) cannot hold",
        "(it holds no negative part, no microseconds and no time part of 49.7 days or more): "
        "cast the column in the stage SQL, e.g. to VARCHAR, or to seconds with epoch()");
  }
  if (t.id == "TIME WITH TIME ZONE") return "timezone('UTC', " + e + ")";
  if (t.id == "TIMESTAMP_S" || t.id == "TIMESTAMP_MS") return "CAST(" + e + " AS TIMESTAMP)";
  if (t.id == "UNION") {
    // The tag field is "tag", or "_tag", "__tag" ... when a member has that name.
    std::string tag = "tag";
    for (bool taken = true; taken;) {
      taken = false;
      for (const auto& [name, member] : t.children) {
        if (Lower(name) == Lower(tag)) taken = true;
      }
      if (taken) tag = "_" + tag;
    }
    std::vector<std::pair<std::string, std::string>> fields = {
        {tag, "CAST(union_tag(" + e + ") AS VARCHAR)"}};
    for (size_t i = 0; i < t.children.size(); ++i) {
      std::string member = "union_extract(" + e + ", " + QuoteLiteral(t.children[i].first) + ")";
      fields.emplace_back(t.children[i].first, OutputOrSame(t.child(i), member, column, depth));
    }
    return NullOr(e, Pack(fields, false));
  }
  if (t.id == "LIST" || t.id == "ARRAY") {
    std::string x = LambdaVar(depth);
    return "list_transform(" + e + ", lambda " + x + ": " +
           Output(t.child(), x, column, depth + 1) + ")";
  }
  if (t.id == "STRUCT") {
    std::vector<std::pair<std::string, std::string>> fields;
    for (size_t i = 0; i < t.children.size(); ++i) {
      fields.emplace_back(t.children[i].first,
                          OutputOrSame(t.child(i), FieldOf(t, e, i), column, depth));
    }
    return NullOr(e, Pack(fields, IsUnnamedStruct(t)));
  }
  std::string x = LambdaVar(depth);  // MAP
  return "map_from_entries(list_transform(map_entries(" + e + "), lambda " + x + ": " +
         Pack({{"key", OutputOrSame(t.child(0), Field(x, "key"), column, depth + 1)},
               {"value", OutputOrSame(t.child(1), Field(x, "value"), column, depth + 1)}},
              false) +
         "))";
}

}  // namespace

bool NeedsParquetConversion(const SqlType& type) { return NeedsConversion(type); }

std::optional<std::string> CheckpointStoreExpr(const SqlType& type, const std::string& expr) {
  if (!NeedsConversion(type)) return std::nullopt;
  return Store(type, expr, 0);
}

Result<std::optional<std::string>> CheckpointRestoreExpr(const SqlType& type,
                                                         const std::string& stored) {
  if (ReadsBackAsIs(type)) return std::optional<std::string>();
  ASSIGN_OR_RETURN(std::string expr, Restore(type, stored, 0));
  return std::optional<std::string>(std::move(expr));
}

std::optional<std::string> ParquetOutputExpr(const SqlType& type, const std::string& expr,
                                             std::string_view column) {
  if (!NeedsConversion(type)) return std::nullopt;
  return Output(type, expr, column, 0);
}

}  // namespace respawn

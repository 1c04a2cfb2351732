// Values and materialized query results of the embedded engine (sql/engine.h).
//
// A QueryResult holds every row in memory: it is meant for status queries, small lookups and
// tests. Bulk data moves through Parquet (sql/parquet_transfer.h), never through QueryResult.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "util/status.h"

namespace respawn {

/// One SQL value: a query parameter or a cell of a result.
///
/// Cells map DuckDB types as follows: BOOLEAN -> kBool; signed integers and UTINYINT..UINTEGER
/// -> kInt64; UBIGINT -> kUInt64; FLOAT, DOUBLE -> kDouble; everything else -> kString in a
/// text form: VARCHAR and BLOB as their bytes, HUGEINT/UHUGEINT and DECIMAL as exact decimal
/// digits ("12.340"), DATE "2024-01-31", TIME "13:45:00.5", TIMESTAMP "2024-01-31 13:45:00"
/// (TIMESTAMPTZ in UTC, with "+00"), UUID, ENUM labels, INTERVAL, and nested types (LIST, ARRAY,
/// STRUCT, MAP, UNION) in a DuckDB-like literal form ("[1, 2]", "{'a': 1}"). Cast to VARCHAR in
/// SQL where DuckDB's own rendering matters.
class Value {
 public:
  enum class Kind { kNull, kBool, kInt64, kUInt64, kDouble, kString };

  Value() = default;  // NULL
  template <std::integral T>
  Value(T v) {  // NOLINT: implicit by design
    if constexpr (std::same_as<T, bool>) {
      data_ = v;
    } else if constexpr (std::is_signed_v<T>) {
      data_ = static_cast<int64_t>(v);
    } else {
      data_ = static_cast<uint64_t>(v);
    }
  }
  Value(double v) : data_(v) {}                      // NOLINT
  Value(std::string v) : data_(std::move(v)) {}      // NOLINT
  Value(std::string_view v) : data_(std::string(v)) {}  // NOLINT
  Value(const char* v) : data_(std::string(v)) {}    // NOLINT

  static Value Null() { return Value(); }

  Kind kind() const { return static_cast<Kind>(data_.index()); }
  bool is_null() const { return kind() == Kind::kNull; }

  /// Integers (and unsigned ones up to INT64_MAX), and strings holding a base-10 integer (e.g.
  /// a HUGEINT or a DECIMAL with scale 0) within range. InvalidArgument otherwise (NULL too).
  Result<int64_t> AsInt64() const;
  /// Non-negative integers, and strings holding one within range. InvalidArgument otherwise.
  Result<uint64_t> AsUInt64() const;
  /// Any number, and strings holding one (DECIMAL). InvalidArgument otherwise (NULL too).
  Result<double> AsDouble() const;
  /// kBool only. InvalidArgument otherwise.
  Result<bool> AsBool() const;
  /// The text form: "NULL" for NULL, "true"/"false", integers in base 10, doubles with the
  /// shortest round-trip representation, strings as they are.
  std::string ToString() const;

  /// The string held by a kString value (empty for other kinds).
  const std::string& string_value() const;

  friend bool operator==(const Value& a, const Value& b) { return a.data_ == b.data_; }

 private:
  std::variant<std::monostate, bool, int64_t, uint64_t, double, std::string> data_;
};

/// A result column: its name and its DuckDB type as SQL spells it ("BIGINT", "DECIMAL(18,3)",
/// "VARCHAR[]", "STRUCT(a INTEGER, b VARCHAR)").
struct Column {
  std::string name;
  std::string type;
};

/// The rows of a finished query, in DuckDB's order.
class QueryResult {
 public:
  QueryResult() = default;
  QueryResult(std::vector<Column> columns, std::vector<std::vector<Value>> rows,
              uint64_t rows_changed)
      : columns_(std::move(columns)), rows_(std::move(rows)), rows_changed_(rows_changed) {}

  const std::vector<Column>& columns() const { return columns_; }
  size_t num_columns() const { return columns_.size(); }
  size_t num_rows() const { return rows_.size(); }
  const std::vector<std::vector<Value>>& rows() const { return rows_; }
  /// REQUIRES: row < num_rows(), column < num_columns().
  const Value& at(size_t row, size_t column) const { return rows_[row][column]; }

  /// Index of the column named `name` (case-insensitive, as DuckDB resolves names); NotFound
  /// naming the columns there are otherwise.
  Result<size_t> ColumnIndex(std::string_view name) const;

  /// Rows inserted, updated or deleted by the statement (DuckDB's duckdb_rows_changed); 0 for
  /// queries.
  uint64_t rows_changed() const { return rows_changed_; }

  /// Every row as its cells' ToString() joined by '|', one row a line (for logs and tests).
  std::string ToText() const;

 private:
  std::vector<Column> columns_;
  std::vector<std::vector<Value>> rows_;
  uint64_t rows_changed_ = 0;
};

}  // namespace respawn

// DuckDB column types as values: what Connection::Describe reports for a query, written back as
// SQL for a CAST, and encoded as JSON (the type record of a checkpoint, parquet_transfer.h).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/status.h"

namespace respawn {

/// One DuckDB logical type, nested types with their children.
struct SqlType {
  /// The base type as SQL names it: "BOOLEAN", "TINYINT" ... "UHUGEINT", "FLOAT", "DOUBLE",
  /// "DECIMAL", "DATE", "TIME", "TIME_NS", "TIME WITH TIME ZONE", "TIMESTAMP", "TIMESTAMP_S",
  /// "TIMESTAMP_MS", "TIMESTAMP_NS", "TIMESTAMP WITH TIME ZONE", "INTERVAL", "VARCHAR", "BLOB",
  /// "BIT", "BIGNUM", "UUID", "ENUM", "LIST", "ARRAY", "STRUCT", "MAP", "UNION", "NULL";
  /// "OTHER" for a type known only by its SQL spelling (in `alias`); "" for a type DuckDB's C
  /// API does not describe (TIME_NS in DuckDB 1.4 reads as DUCKDB_TYPE_INVALID).
  std::string id;
  /// Another name DuckDB gives the type (e.g. "JSON" for a VARCHAR), else empty.
  std::string alias;
  uint8_t width = 0;                // DECIMAL
  uint8_t scale = 0;                // DECIMAL
  uint64_t array_size = 0;          // ARRAY
  std::vector<std::string> labels;  // ENUM: the dictionary, in order
  /// LIST and ARRAY: one child (name ""); MAP: "key" and "value"; STRUCT: its fields (names
  /// empty in an unnamed STRUCT, made by row()); UNION: its members.
  std::vector<std::pair<std::string, SqlType>> children;

  /// The type as SQL writes it, e.g. DECIMAL(18,3), ENUM('a', 'b'), STRUCT("a" INTEGER[]),
  /// MAP(VARCHAR, UNION("n" INTEGER, "s" VARCHAR)), INTEGER[3]. Identifiers and labels are quoted,
  /// so the text parses back to the same type, except for an unnamed STRUCT (DuckDB has no
  /// syntax for one: IsSpellable() is false).
  std::string ToSql() const;
  /// False when ToSql() does not parse back: an unnamed STRUCT anywhere in the type.
  bool IsSpellable() const;
  /// False when the type or a child has the id "" (not described by the C API).
  bool IsDescribed() const;

  const SqlType& child(size_t i = 0) const { return children[i].second; }

  friend bool operator==(const SqlType&, const SqlType&) = default;
};

/// A result column: its name and its exact type.
struct TypedColumn {
  std::string name;
  SqlType type;

  friend bool operator==(const TypedColumn&, const TypedColumn&) = default;
};

/// `columns` as one line of JSON: [{"name": ..., "type": {"id": "DECIMAL", "width": 18, ...}}].
std::string EncodeColumns(const std::vector<TypedColumn>& columns);
/// The inverse of EncodeColumns. InvalidArgument naming what is wrong when `json` is not such a
/// list.
Result<std::vector<TypedColumn>> DecodeColumns(std::string_view json);

}  // namespace respawn

// How DuckDB values go through Parquet, which cannot hold every DuckDB type.
//
// DuckDB 1.4's Parquet writer converts silently: HUGEINT and UHUGEINT become DOUBLE (digits are
// lost), INTERVAL becomes Parquet's (months, days, milliseconds) (microseconds are lost, a time
// part over 49 days wraps, negative intervals are refused), TIME WITH TIME ZONE becomes a UTC
// TIME without being converted (the offset is lost and the instant shifts), UNION becomes a
// STRUCT whose tag field has no name, ENUM, BIT, BIGNUM and TIME_NS become VARCHAR, TIMESTAMP_S
// and TIMESTAMP_MS become TIMESTAMP (their infinities fail the COPY), ARRAY becomes LIST. Every
// other type (integers, FLOAT and DOUBLE with NaN and -0.0, DECIMAL of any width, DATE, TIME,
// TIMESTAMP, TIMESTAMP_NS, TIMESTAMPTZ, UUID, VARCHAR, JSON, BLOB, LIST/STRUCT/MAP of those) reads
// back exactly.
//
// Checkpoints (read back by respawn only) are lossless. Only columns holding a type from the
// first group anywhere are rewritten; the others are written as they are, at no cost.
//
//   type                    stored as                                 read back as the type by
//   HUGEINT                 STRUCT(hi BIGINT, lo UBIGINT)             hi * 2^64 + lo
//   UHUGEINT                STRUCT(hi UBIGINT, lo UBIGINT)            hi * 2^64 + lo
//   INTERVAL                STRUCT(months INTEGER, days INTEGER,      to_months + to_days +
//                                  micros BIGINT)                     to_microseconds
//   TIME WITH TIME ZONE     VARCHAR ('12:00:00+05:30')                CAST
//   UNION                   STRUCT(tag VARCHAR, m0, m1, ...)          union_value of the tag
//   TIMESTAMP_S, _MS        TIMESTAMP (exact, infinities too)        CAST
//   MAP with one of these   LIST of STRUCT(key, value)                map_from_entries
//   LIST, ARRAY, STRUCT     their children converted (list_transform, struct_pack)
//   ENUM, BIT, BIGNUM,      what the writer makes of them (VARCHAR,   CAST to the recorded type
//   TIME_NS, ARRAY          LIST): exact values                       (an ENUM with its labels,
//                                                                     TIME_NS by its spelling)
//
// Outputs (files for other readers) keep each type where Parquet has it and otherwise take the
// nearest Parquet type that holds the value exactly, or fail naming the column:
//   HUGEINT, UHUGEINT       DECIMAL(38,0); a value of more than 38 digits is an error
//   INTERVAL                Parquet INTERVAL; a negative or sub-millisecond value, or a time
//                           part of 2^32 ms (49.7 days) or more, is an error
//   TIME WITH TIME ZONE     converted to UTC (Parquet's TIME is UTC-adjusted)
//   UNION                   STRUCT(tag VARCHAR, <one field per member>)
//   TIMESTAMP_S, _MS        TIMESTAMP
//   others                  as DuckDB writes them (ENUM/BIT/BIGNUM/TIME_NS as text, ARRAY as
//                           LIST: all exact)
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sql/sql_type.h"
#include "util/status.h"

namespace respawn {

/// True when Parquet cannot hold the values of `type` as they are (it holds HUGEINT, UHUGEINT,
/// INTERVAL, TIME WITH TIME ZONE, UNION, TIMESTAMP_S or TIMESTAMP_MS anywhere).
bool NeedsParquetConversion(const SqlType& type);

/// The SQL expression turning `expr` (of type `type`) into its checkpoint form, or nullopt when
/// the column is written as it is.
std::optional<std::string> CheckpointStoreExpr(const SqlType& type, const std::string& expr);

/// The SQL expression of type exactly `type` that reads back `stored`, what read_parquet returns
/// for the checkpoint form of `type`; nullopt when read_parquet returns `type` already.
/// Unimplemented when DuckDB could not spell the needed CAST (an unnamed STRUCT, from row(),
/// holding a converted type).
Result<std::optional<std::string>> CheckpointRestoreExpr(const SqlType& type,
                                                         const std::string& stored);

/// The SQL expression giving `expr` (of type `type`, in the output column `column`) the form an
/// output Parquet file holds (see above), or nullopt when DuckDB's writer keeps it exactly. The
/// expression fails with InvalidArgument naming `column` on a value the file cannot hold.
std::optional<std::string> ParquetOutputExpr(const SqlType& type, const std::string& expr,
                                             std::string_view column);

}  // namespace respawn

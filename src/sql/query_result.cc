#include "sql/query_result.h"

#include <charconv>
#include <cctype>
#include <cinttypes>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>

#include "sql/engine_internal.h"

namespace respawn {

// ---------------------------------------------------------------------------------------------
// Value

namespace {

bool ParseInt64(const std::string& s, int64_t* out) {
  const char* end = s.data() + s.size();
  auto [ptr, ec] = std::from_chars(s.data(), end, *out);
  return ec == std::errc() && ptr == end;
}

bool ParseUInt64(const std::string& s, uint64_t* out) {
  const char* end = s.data() + s.size();
  auto [ptr, ec] = std::from_chars(s.data(), end, *out);
  return ec == std::errc() && ptr == end;
}

bool ParseDouble(const std::string& s, double* out) {
  const char* end = s.data() + s.size();
  auto [ptr, ec] = std::from_chars(s.data(), end, *out);
  return ec == std::errc() && ptr == end && !s.empty();
}

std::string KindName(Value::Kind kind) {
  switch (kind) {
    case Value::Kind::kNull:
      return "NULL";
    case Value::Kind::kBool:
      return "a boolean";
    case Value::Kind::kInt64:
    case Value::Kind::kUInt64:
      return "an integer";
    case Value::Kind::kDouble:
      return "a double";
    case Value::Kind::kString:
      return "a string";
  }
  return "?";
}

Status NotA(const Value& v, std::string_view what) {
  std::string shown = v.ToString();
  if (shown.size() > 64) shown = shown.substr(0, 64) + "...";
  return InvalidArgument("value " + shown + " (" + KindName(v.kind()) + ") is not " +
                         std::string(what));
}

std::string DoubleToString(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  char buf[64];
  auto [ptr, ec] = std::to_chars(buf, buf + sizeof(buf), d);
  if (ec != std::errc()) return std::to_string(d);
  return std::string(buf, ptr);
}

}  // namespace

Result<int64_t> Value::AsInt64() const {
  switch (kind()) {
    case Kind::kInt64:
      return std::get<int64_t>(data_);
    case Kind::kUInt64: {
      uint64_t u = std::get<uint64_t>(data_);
      if (u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return static_cast<int64_t>(u);
      }
      return NotA(*this, "within the range of a 64-bit signed integer");
    }
    case Kind::kString: {
      int64_t v = 0;
      if (ParseInt64(std::get<std::string>(data_), &v)) return v;
      return NotA(*this, "a 64-bit integer");
    }
    default:
      return NotA(*this, "a 64-bit integer");
  }
}

Result<uint64_t> Value::AsUInt64() const {
  switch (kind()) {
    case Kind::kUInt64:
      return std::get<uint64_t>(data_);
    case Kind::kInt64: {
      int64_t v = std::get<int64_t>(data_);
      if (v >= 0) return static_cast<uint64_t>(v);
      return NotA(*this, "a non-negative integer");
    }
    case Kind::kString: {
      uint64_t v = 0;
      if (ParseUInt64(std::get<std::string>(data_), &v)) return v;
      return NotA(*this, "a 64-bit unsigned integer");
    }
    default:
      return NotA(*this, "a 64-bit unsigned integer");
  }
}

Result<double> Value::AsDouble() const {
  switch (kind()) {
    case Kind::kDouble:
      return std::get<double>(data_);
    case Kind::kInt64:
      return static_cast<double>(std::get<int64_t>(data_));
    case Kind::kUInt64:
      return static_cast<double>(std::get<uint64_t>(data_));
    case Kind::kString: {
      double d = 0;
      if (ParseDouble(std::get<std::string>(data_), &d)) return d;
      return NotA(*this, "a number");
    }
    default:
      return NotA(*this, "a number");
  }
}

Result<bool> Value::AsBool() const {
  if (kind() == Kind::kBool) return std::get<bool>(data_);
  return NotA(*this, "a boolean");
}

std::string Value::ToString() const {
  switch (kind()) {
    case Kind::kNull:
      return "NULL";
    case Kind::kBool:
      return std::get<bool>(data_) ? "true" : "false";
    case Kind::kInt64:
      return std::to_string(std::get<int64_t>(data_));
    case Kind::kUInt64:
      return std::to_string(std::get<uint64_t>(data_));
    case Kind::kDouble:
      return DoubleToString(std::get<double>(data_));
    case Kind::kString:
      return std::get<std::string>(data_);
  }
  return "";
}

const std::string& Value::string_value() const {
  static const std::string kEmpty;
  return kind() == Kind::kString ? std::get<std::string>(data_) : kEmpty;
}

// ---------------------------------------------------------------------------------------------
// QueryResult

Result<size_t> QueryResult::ColumnIndex(std::string_view name) const {
  auto lower = [](std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
  };
  std::string want = lower(name);
  std::string names;
  for (size_t i = 0; i < columns_.size(); ++i) {
    if (lower(columns_[i].name) == want) return i;
    names += (i ? ", " : "") + columns_[i].name;
  }
  return NotFound("the result has no column \"" + std::string(name) + "\" (columns: " + names +
                  ")");
}

std::string QueryResult::ToText() const {
  std::string out;
  for (const auto& row : rows_) {
    for (size_t c = 0; c < row.size(); ++c) {
      if (c) out += '|';
      out += row[c].ToString();
    }
    out += '\n';
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Reading a duckdb_result

namespace sql_internal {
namespace {

class TypeHandle {
 public:
  explicit TypeHandle(duckdb_logical_type type) : type_(type) {}
  ~TypeHandle() {
    if (type_ != nullptr) duckdb_destroy_logical_type(&type_);
  }
  TypeHandle(TypeHandle&& other) noexcept : type_(other.type_) { other.type_ = nullptr; }
  TypeHandle(const TypeHandle&) = delete;
  TypeHandle& operator=(const TypeHandle&) = delete;
  TypeHandle& operator=(TypeHandle&&) = delete;
  duckdb_logical_type get() const { return type_; }

 private:
  duckdb_logical_type type_;
};

std::string TypeName(duckdb_logical_type type) {
  duckdb_type id = duckdb_get_type_id(type);
  switch (id) {
    case DUCKDB_TYPE_BOOLEAN: return "BOOLEAN";
    case DUCKDB_TYPE_TINYINT: return "TINYINT";
    case DUCKDB_TYPE_SMALLINT: return "SMALLINT";
    case DUCKDB_TYPE_INTEGER: return "INTEGER";
    case DUCKDB_TYPE_BIGINT: return "BIGINT";
    case DUCKDB_TYPE_UTINYINT: return "UTINYINT";
    case DUCKDB_TYPE_USMALLINT: return "USMALLINT";
    case DUCKDB_TYPE_UINTEGER: return "UINTEGER";
    case DUCKDB_TYPE_UBIGINT: return "UBIGINT";
    case DUCKDB_TYPE_FLOAT: return "FLOAT";
    case DUCKDB_TYPE_DOUBLE: return "DOUBLE";
    case DUCKDB_TYPE_TIMESTAMP: return "TIMESTAMP";
    case DUCKDB_TYPE_DATE: return "DATE";
    case DUCKDB_TYPE_TIME: return "TIME";
    case DUCKDB_TYPE_INTERVAL: return "INTERVAL";
    case DUCKDB_TYPE_HUGEINT: return "HUGEINT";
    case DUCKDB_TYPE_UHUGEINT: return "UHUGEINT";
    case DUCKDB_TYPE_VARCHAR: return "VARCHAR";
    case DUCKDB_TYPE_BLOB: return "BLOB";
    case DUCKDB_TYPE_DECIMAL:
      return "DECIMAL(" + std::to_string(duckdb_decimal_width(type)) + "," +
             std::to_string(duckdb_decimal_scale(type)) + ")";
    case DUCKDB_TYPE_TIMESTAMP_S: return "TIMESTAMP_S";
    case DUCKDB_TYPE_TIMESTAMP_MS: return "TIMESTAMP_MS";
    case DUCKDB_TYPE_TIMESTAMP_NS: return "TIMESTAMP_NS";
    case DUCKDB_TYPE_ENUM: return "ENUM";
    case DUCKDB_TYPE_LIST: {
      TypeHandle child(duckdb_list_type_child_type(type));
      return TypeName(child.get()) + "[]";
    }
    case DUCKDB_TYPE_ARRAY: {
      TypeHandle child(duckdb_array_type_child_type(type));
      return TypeName(child.get()) + "[" + std::to_string(duckdb_array_type_array_size(type)) +
             "]";
    }
    case DUCKDB_TYPE_STRUCT: {
      std::string out = "STRUCT(";
      idx_t n = duckdb_struct_type_child_count(type);
      for (idx_t i = 0; i < n; ++i) {
        TypeHandle child(duckdb_struct_type_child_type(type, i));
        if (i) out += ", ";
        out += TakeString(duckdb_struct_type_child_name(type, i)) + " " + TypeName(child.get());
      }
      return out + ")";
    }
    case DUCKDB_TYPE_MAP: {
      TypeHandle key(duckdb_map_type_key_type(type));
      TypeHandle value(duckdb_map_type_value_type(type));
      return "MAP(" + TypeName(key.get()) + ", " + TypeName(value.get()) + ")";
    }
    case DUCKDB_TYPE_UNION: {
      std::string out = "UNION(";
      idx_t n = duckdb_union_type_member_count(type);
      for (idx_t i = 0; i < n; ++i) {
        TypeHandle member(duckdb_union_type_member_type(type, i));
        if (i) out += ", ";
        out += TakeString(duckdb_union_type_member_name(type, i)) + " " + TypeName(member.get());
      }
      return out + ")";
    }
    case DUCKDB_TYPE_UUID: return "UUID";
    case DUCKDB_TYPE_BIT: return "BIT";
    case DUCKDB_TYPE_TIME_TZ: return "TIME WITH TIME ZONE";
    case DUCKDB_TYPE_TIMESTAMP_TZ: return "TIMESTAMP WITH TIME ZONE";
    case DUCKDB_TYPE_BIGNUM: return "BIGNUM";
    case DUCKDB_TYPE_SQLNULL: return "NULL";
    case DUCKDB_TYPE_TIME_NS: return "TIME_NS";
    default: return "TYPE#" + std::to_string(static_cast<int>(id));
  }
}

using Int128 = __int128;
using UInt128 = unsigned __int128;

std::string UInt128ToString(UInt128 v) {
  if (v == 0) return "0";
  char buf[48];
  int pos = sizeof(buf);
  while (v != 0) {
    buf[--pos] = static_cast<char>('0' + static_cast<int>(v % 10));
    v /= 10;
  }
  return std::string(buf + pos, sizeof(buf) - pos);
}

std::string Int128ToString(Int128 v) {
  if (v < 0) return "-" + UInt128ToString(static_cast<UInt128>(0) - static_cast<UInt128>(v));
  return UInt128ToString(static_cast<UInt128>(v));
}

Int128 HugeintValue(const duckdb_hugeint& h) {
  return static_cast<Int128>((static_cast<UInt128>(static_cast<uint64_t>(h.upper)) << 64) |
                             h.lower);
}

std::string DecimalToString(Int128 v, int scale) {
  bool negative = v < 0;
  UInt128 mag = negative ? static_cast<UInt128>(0) - static_cast<UInt128>(v)
                         : static_cast<UInt128>(v);
  std::string digits = UInt128ToString(mag);
  if (scale > 0) {
    if (static_cast<int>(digits.size()) <= scale) {
      digits.insert(0, static_cast<size_t>(scale) + 1 - digits.size(), '0');
    }
    digits.insert(digits.size() - static_cast<size_t>(scale), ".");
  }
  return negative ? "-" + digits : digits;
}

std::string Pad(int64_t v, int width) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%0*" PRId64, width, v);
  return buf;
}

std::string DateToString(int32_t days) {
  if (days == std::numeric_limits<int32_t>::max()) return "infinity";
  if (days == -std::numeric_limits<int32_t>::max()) return "-infinity";
  duckdb_date_struct d = duckdb_from_date(duckdb_date{days});
  if (d.year <= 0) {
    return Pad(1 - d.year, 4) + "-" + Pad(d.month, 2) + "-" + Pad(d.day, 2) + " (BC)";
  }
  return Pad(d.year, 4) + "-" + Pad(d.month, 2) + "-" + Pad(d.day, 2);
}

// "HH:MM:SS[.fraction]" of `units` (of 10^-digits seconds) since midnight, trailing zeros of
// the fraction dropped.
std::string TimeOfDayToString(int64_t units, int digits) {
  int64_t per_second = 1;
  for (int i = 0; i < digits; ++i) per_second *= 10;
  int64_t seconds = units / per_second;
  int64_t fraction = units % per_second;
  std::string out = Pad(seconds / 3600, 2) + ":" + Pad(seconds / 60 % 60, 2) + ":" +
                    Pad(seconds % 60, 2);
  if (fraction != 0) {
    std::string f = Pad(fraction, digits);
    while (!f.empty() && f.back() == '0') f.pop_back();
    out += "." + f;
  }
  return out;
}

// A timestamp of `value` units of 10^-digits seconds since the epoch.
std::string TimestampToString(int64_t value, int digits) {
  if (value == std::numeric_limits<int64_t>::max()) return "infinity";
  if (value == -std::numeric_limits<int64_t>::max()) return "-infinity";
  int64_t per_day = 86400;
  for (int i = 0; i < digits; ++i) per_day *= 10;
  int64_t days = value / per_day;
  int64_t rest = value % per_day;
  if (rest < 0) {
    rest += per_day;
    days -= 1;
  }
  std::string date = DateToString(static_cast<int32_t>(days));
  std::string bc;
  if (date.ends_with(" (BC)")) {
    bc = " (BC)";
    date.resize(date.size() - bc.size());
  }
  return date + " " + TimeOfDayToString(rest, digits) + bc;
}

std::string IntervalToString(const duckdb_interval& iv) {
  std::string out;
  auto part = [&out](int64_t n, const char* unit) {
    if (n == 0) return;
    if (!out.empty()) out += ' ';
    out += std::to_string(n) + " " + unit + (n == 1 || n == -1 ? "" : "s");
  };
  part(iv.months / 12, "year");
  part(iv.months % 12, "month");
  part(iv.days, "day");
  if (iv.micros != 0 || out.empty()) {
    if (!out.empty()) out += ' ';
    int64_t micros = iv.micros;
    if (micros < 0) {
      out += '-';
      micros = -micros;
    }
    out += TimeOfDayToString(micros, 6);
  }
  return out;
}

std::string UuidToString(const duckdb_hugeint& h) {
  uint64_t upper = static_cast<uint64_t>(h.upper) ^ (uint64_t{1} << 63);
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%08" PRIx64 "-%04" PRIx64 "-%04" PRIx64 "-%04" PRIx64
                "-%012" PRIx64,
                upper >> 32, (upper >> 16) & 0xffff, upper & 0xffff, h.lower >> 48,
                h.lower & uint64_t{0xffffffffffff});
  return buf;
}

std::string QuoteNested(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

bool IsValid(duckdb_vector vec, idx_t row) {
  uint64_t* validity = duckdb_vector_get_validity(vec);
  return validity == nullptr || duckdb_validity_row_is_valid(validity, row);
}

template <typename T>
const T& At(duckdb_vector vec, idx_t row) {
  return static_cast<const T*>(duckdb_vector_get_data(vec))[row];
}

Status Decode(duckdb_logical_type type, duckdb_vector vec, idx_t row, Value* out);

// The text of a value inside a nested one: strings quoted, NULL as NULL.
Status RenderNested(duckdb_logical_type type, duckdb_vector vec, idx_t row, std::string* out) {
  Value v;
  RETURN_IF_ERROR(Decode(type, vec, row, &v));
  duckdb_type id = duckdb_get_type_id(type);
  bool quote = v.kind() == Value::Kind::kString &&
               (id == DUCKDB_TYPE_VARCHAR || id == DUCKDB_TYPE_BLOB || id == DUCKDB_TYPE_ENUM ||
                id == DUCKDB_TYPE_UUID || id == DUCKDB_TYPE_DATE || id == DUCKDB_TYPE_TIME ||
                id == DUCKDB_TYPE_TIMESTAMP || id == DUCKDB_TYPE_TIMESTAMP_S ||
                id == DUCKDB_TYPE_TIMESTAMP_MS || id == DUCKDB_TYPE_TIMESTAMP_NS ||
                id == DUCKDB_TYPE_TIMESTAMP_TZ || id == DUCKDB_TYPE_TIME_TZ ||
                id == DUCKDB_TYPE_INTERVAL || id == DUCKDB_TYPE_TIME_NS);
  *out += quote ? QuoteNested(v.string_value()) : v.ToString();
  return Status::OK();
}

Status RenderElements(duckdb_logical_type child_type, duckdb_vector child, uint64_t offset,
                      uint64_t length, std::string* out) {
  *out += '[';
  for (uint64_t i = 0; i < length; ++i) {
    if (i) *out += ", ";
    RETURN_IF_ERROR(RenderNested(child_type, child, offset + i, out));
  }
  *out += ']';
  return Status::OK();
}

// Decodes the cell `row` of `vec` (of `type`) into `out`.
Status Decode(duckdb_logical_type type, duckdb_vector vec, idx_t row, Value* out) {
  duckdb_type id = duckdb_get_type_id(type);
  if (id == DUCKDB_TYPE_SQLNULL || !IsValid(vec, row)) {
    *out = Value();
    return Status::OK();
  }
  switch (id) {
    case DUCKDB_TYPE_BOOLEAN: *out = At<bool>(vec, row); break;
    case DUCKDB_TYPE_TINYINT: *out = At<int8_t>(vec, row); break;
    case DUCKDB_TYPE_SMALLINT: *out = At<int16_t>(vec, row); break;
    case DUCKDB_TYPE_INTEGER: *out = At<int32_t>(vec, row); break;
    case DUCKDB_TYPE_BIGINT: *out = At<int64_t>(vec, row); break;
    case DUCKDB_TYPE_UTINYINT: *out = static_cast<int64_t>(At<uint8_t>(vec, row)); break;
    case DUCKDB_TYPE_USMALLINT: *out = static_cast<int64_t>(At<uint16_t>(vec, row)); break;
    case DUCKDB_TYPE_UINTEGER: *out = static_cast<int64_t>(At<uint32_t>(vec, row)); break;
    case DUCKDB_TYPE_UBIGINT: *out = At<uint64_t>(vec, row); break;
    case DUCKDB_TYPE_FLOAT: *out = static_cast<double>(At<float>(vec, row)); break;
    case DUCKDB_TYPE_DOUBLE: *out = At<double>(vec, row); break;
    case DUCKDB_TYPE_HUGEINT:
      *out = Int128ToString(HugeintValue(At<duckdb_hugeint>(vec, row)));
      break;
    case DUCKDB_TYPE_UHUGEINT: {
      const duckdb_uhugeint& u = At<duckdb_uhugeint>(vec, row);
      *out = UInt128ToString((static_cast<UInt128>(u.upper) << 64) | u.lower);
      break;
    }
    case DUCKDB_TYPE_DECIMAL: {
      int scale = duckdb_decimal_scale(type);
      Int128 v = 0;
      switch (duckdb_decimal_internal_type(type)) {
        case DUCKDB_TYPE_SMALLINT: v = At<int16_t>(vec, row); break;
        case DUCKDB_TYPE_INTEGER: v = At<int32_t>(vec, row); break;
        case DUCKDB_TYPE_BIGINT: v = At<int64_t>(vec, row); break;
        default: v = HugeintValue(At<duckdb_hugeint>(vec, row)); break;
      }
      *out = DecimalToString(v, scale);
      break;
    }
    case DUCKDB_TYPE_VARCHAR:
    case DUCKDB_TYPE_BLOB: {
      // duckdb_string_t_data takes a non-const pointer but does not modify the string.
      auto* s = const_cast<duckdb_string_t*>(&At<duckdb_string_t>(vec, row));
      *out = std::string(duckdb_string_t_data(s), duckdb_string_t_length(*s));
      break;
    }
    case DUCKDB_TYPE_DATE: *out = DateToString(At<duckdb_date>(vec, row).days); break;
    case DUCKDB_TYPE_TIME: *out = TimeOfDayToString(At<duckdb_time>(vec, row).micros, 6); break;
    case DUCKDB_TYPE_TIME_NS: *out = TimeOfDayToString(At<int64_t>(vec, row), 9); break;
    case DUCKDB_TYPE_TIME_TZ: {
      duckdb_time_tz_struct t = duckdb_from_time_tz(At<duckdb_time_tz>(vec, row));
      int64_t micros = ((int64_t{t.time.hour} * 60 + t.time.min) * 60 + t.time.sec) * 1000000 +
                       t.time.micros;
      int32_t off = t.offset;
      std::string sign = off < 0 ? "-" : "+";
      if (off < 0) off = -off;
      std::string zone = sign + Pad(off / 3600, 2);
      if (off % 3600 != 0) zone += ":" + Pad(off / 60 % 60, 2);
      *out = TimeOfDayToString(micros, 6) + zone;
      break;
    }
    case DUCKDB_TYPE_TIMESTAMP: *out = TimestampToString(At<int64_t>(vec, row), 6); break;
    case DUCKDB_TYPE_TIMESTAMP_S: *out = TimestampToString(At<int64_t>(vec, row), 0); break;
    case DUCKDB_TYPE_TIMESTAMP_MS: *out = TimestampToString(At<int64_t>(vec, row), 3); break;
    case DUCKDB_TYPE_TIMESTAMP_NS: *out = TimestampToString(At<int64_t>(vec, row), 9); break;
    case DUCKDB_TYPE_TIMESTAMP_TZ:
      *out = TimestampToString(At<int64_t>(vec, row), 6) + "+00";
      break;
    case DUCKDB_TYPE_INTERVAL: *out = IntervalToString(At<duckdb_interval>(vec, row)); break;
    case DUCKDB_TYPE_UUID: *out = UuidToString(At<duckdb_hugeint>(vec, row)); break;
    case DUCKDB_TYPE_ENUM: {
      uint64_t index = 0;
      switch (duckdb_enum_internal_type(type)) {
        case DUCKDB_TYPE_UTINYINT: index = At<uint8_t>(vec, row); break;
        case DUCKDB_TYPE_USMALLINT: index = At<uint16_t>(vec, row); break;
        default: index = At<uint32_t>(vec, row); break;
      }
      *out = TakeString(duckdb_enum_dictionary_value(type, index));
      break;
    }
    case DUCKDB_TYPE_LIST: {
      const duckdb_list_entry& e = At<duckdb_list_entry>(vec, row);
      TypeHandle child_type(duckdb_list_type_child_type(type));
      std::string text;
      RETURN_IF_ERROR(RenderElements(child_type.get(), duckdb_list_vector_get_child(vec),
                                     e.offset, e.length, &text));
      *out = std::move(text);
      break;
    }
    case DUCKDB_TYPE_ARRAY: {
      uint64_t size = duckdb_array_type_array_size(type);
      TypeHandle child_type(duckdb_array_type_child_type(type));
      std::string text;
      RETURN_IF_ERROR(RenderElements(child_type.get(), duckdb_array_vector_get_child(vec),
                                     row * size, size, &text));
      *out = std::move(text);
      break;
    }
    case DUCKDB_TYPE_STRUCT: {
      std::string text = "{";
      idx_t n = duckdb_struct_type_child_count(type);
      for (idx_t i = 0; i < n; ++i) {
        TypeHandle child_type(duckdb_struct_type_child_type(type, i));
        if (i) text += ", ";
        text += QuoteNested(TakeString(duckdb_struct_type_child_name(type, i))) + ": ";
        RETURN_IF_ERROR(RenderNested(child_type.get(), duckdb_struct_vector_get_child(vec, i),
                                     row, &text));
      }
      *out = text + "}";
      break;
    }
    case DUCKDB_TYPE_MAP: {
      // A MAP is a LIST of STRUCT(key, value).
      const duckdb_list_entry& e = At<duckdb_list_entry>(vec, row);
      duckdb_vector entries = duckdb_list_vector_get_child(vec);
      duckdb_vector keys = duckdb_struct_vector_get_child(entries, 0);
      duckdb_vector values = duckdb_struct_vector_get_child(entries, 1);
      TypeHandle key_type(duckdb_map_type_key_type(type));
      TypeHandle value_type(duckdb_map_type_value_type(type));
      std::string text = "{";
      for (uint64_t i = 0; i < e.length; ++i) {
        if (i) text += ", ";
        RETURN_IF_ERROR(RenderNested(key_type.get(), keys, e.offset + i, &text));
        text += '=';
        RETURN_IF_ERROR(RenderNested(value_type.get(), values, e.offset + i, &text));
      }
      *out = text + "}";
      break;
    }
    case DUCKDB_TYPE_UNION: {
      // A UNION is a STRUCT whose child 0 is the tag and child 1 + tag the active member.
      uint8_t tag = At<uint8_t>(duckdb_struct_vector_get_child(vec, 0), row);
      TypeHandle member(duckdb_union_type_member_type(type, tag));
      std::string text;
      RETURN_IF_ERROR(RenderNested(member.get(), duckdb_struct_vector_get_child(vec, tag + 1),
                                   row, &text));
      *out = std::move(text);
      break;
    }
    default:
      return Unimplemented("cannot read values of type " + TypeName(type) +
                           " into a QueryResult: cast the column to VARCHAR in SQL");
  }
  return Status::OK();
}

class ChunkHandle {
 public:
  explicit ChunkHandle(duckdb_data_chunk chunk) : chunk_(chunk) {}
  ~ChunkHandle() {
    if (chunk_ != nullptr) duckdb_destroy_data_chunk(&chunk_);
  }
  ChunkHandle(const ChunkHandle&) = delete;
  ChunkHandle& operator=(const ChunkHandle&) = delete;
  duckdb_data_chunk get() const { return chunk_; }

 private:
  duckdb_data_chunk chunk_;
};

}  // namespace

Result<QueryResult> MaterializeResult(duckdb_result* result) {
  idx_t ncols = duckdb_column_count(result);
  std::vector<Column> columns;
  std::vector<TypeHandle> types;
  columns.reserve(ncols);
  types.reserve(ncols);
  for (idx_t c = 0; c < ncols; ++c) {
    const char* name = duckdb_column_name(result, c);
    types.emplace_back(duckdb_column_logical_type(result, c));
    columns.push_back(Column{name != nullptr ? name : "", TypeName(types.back().get())});
  }
  uint64_t rows_changed = duckdb_rows_changed(result);
  std::vector<std::vector<Value>> rows;
  while (true) {
    ChunkHandle chunk(duckdb_fetch_chunk(*result));
    if (chunk.get() == nullptr) break;
    idx_t n = duckdb_data_chunk_get_size(chunk.get());
    if (n == 0) break;
    std::vector<duckdb_vector> vectors(ncols);
    for (idx_t c = 0; c < ncols; ++c) vectors[c] = duckdb_data_chunk_get_vector(chunk.get(), c);
    rows.reserve(rows.size() + n);
    for (idx_t r = 0; r < n; ++r) {
      std::vector<Value> row(ncols);
      for (idx_t c = 0; c < ncols; ++c) {
        Status st = Decode(types[c].get(), vectors[c], r, &row[c]);
        if (!st.ok()) return st.WithContext("column \"" + columns[c].name + "\"");
      }
      rows.push_back(std::move(row));
    }
  }
  return QueryResult(std::move(columns), std::move(rows), rows_changed);
}

}  // namespace sql_internal
}  // namespace respawn

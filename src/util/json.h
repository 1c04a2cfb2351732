// Non-throwing reads of JSON fields. nlohmann::json's value() and get<>() throw on a type
// mismatch (a field that holds a string where a number was written, a damaged or future
// record), and no exception may cross this project's C++ API: read fields through these.
// Hand-written because nlohmann::json has no non-throwing field accessor.
#pragma once

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

namespace respawn {

/// `j[key]` as a T when `j` is an object holding `key` with a value of T's JSON type that T can
/// represent exactly (std::string: a string; bool: a boolean; an integer type: an integer in
/// its range; double: any number); nullopt otherwise (not an object, missing, wrong type, out
/// of range). Throws nothing but std::bad_alloc.
template <typename T>
std::optional<T> JsonField(const nlohmann::json& j, std::string_view key) {
  if (!j.is_object()) return std::nullopt;
  const auto it = j.find(key);
  if (it == j.end()) return std::nullopt;
  const nlohmann::json& v = *it;
  if constexpr (std::is_same_v<T, std::string>) {
    if (v.is_string()) return v.get_ref<const std::string&>();
  } else if constexpr (std::is_same_v<T, bool>) {
    if (v.is_boolean()) return v.get<bool>();
  } else if constexpr (std::is_integral_v<T>) {
    if (v.is_number_unsigned()) {
      const auto n = v.get<uint64_t>();
      if (n <= static_cast<uint64_t>(std::numeric_limits<T>::max())) return static_cast<T>(n);
    } else if (v.is_number_integer()) {
      const auto n = v.get<int64_t>();
      if constexpr (std::is_signed_v<T>) {
        if (n >= std::numeric_limits<T>::min() && n <= std::numeric_limits<T>::max()) {
          return static_cast<T>(n);
        }
      } else if (n >= 0 && static_cast<uint64_t>(n) <= std::numeric_limits<T>::max()) {
        return static_cast<T>(n);
      }
    }
  } else if constexpr (std::is_floating_point_v<T>) {
    if (v.is_number()) return static_cast<T>(v.get<double>());
  } else {
    static_assert(sizeof(T) == 0, "JsonField: unsupported type");
  }
  return std::nullopt;
}

/// JsonField(j, key), or `fallback` when it is nullopt: the non-throwing json::value(key, d).
template <typename T>
T JsonValueOr(const nlohmann::json& j, std::string_view key, T fallback) {
  std::optional<T> v = JsonField<T>(j, key);
  return v ? std::move(*v) : std::move(fallback);
}

}  // namespace respawn

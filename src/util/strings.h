// Small string helpers shared across layers (messages, case-insensitive names, key ranges).
// ASCII only: names, keys and schemes are compared byte-wise, never by locale.
#pragma once

#include <string>
#include <string_view>

namespace respawn {

/// `s` between double quotes, for messages: Quoted("a/b") is "\"a/b\"". Nothing is escaped.
std::string Quoted(std::string_view s);

/// `s` without one pair of surrounding double quotes, when it has them (an S3 ETag as sent).
std::string StripQuotes(std::string_view s);

/// `s` with ASCII 'A'-'Z' lowered; other bytes unchanged.
std::string Lower(std::string_view s);

/// `s` without leading and trailing ASCII whitespace (space, \t, \n, \v, \f, \r).
std::string_view Trim(std::string_view s);

/// The smallest string greater than every string that starts with `prefix` ("ab" -> "ac",
/// "a\xff" -> "b"); "" when there is none (`prefix` is empty or all 0xff bytes). Used as the
/// exclusive end of a key range.
std::string PrefixSuccessor(std::string_view prefix);

}  // namespace respawn

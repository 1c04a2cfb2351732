// Globs over '/'-separated paths and store keys, as sources and files read in SQL name them:
// '*' and '?' match within one path component, '**' across components, [abc] / [a-z] / [!a]
// are classes, '\' makes the next character literal.
#pragma once

#include <string_view>

namespace respawn {

/// True when `path` has a glob character ('*', '?' or '[').
bool HasGlob(std::string_view path);

/// A glob cut at the last '/' before its first glob character (at the last '/' when it has no
/// glob character): "s3://b/in/2024-*/x.csv" is dir "s3://b/in/" + pattern "2024-*/x.csv".
/// Both are views into the argument.
struct GlobParts {
  std::string_view dir;  // the fixed directory prefix, ending in '/'; empty when there is no '/'
  std::string_view pattern;  // the rest, for GlobMatch against paths relative to `dir`
};
GlobParts SplitGlob(std::string_view glob);

/// The part of `glob` before its first glob character ("in/2024-*/x.csv" -> "in/2024-"), all of
/// it when there is none: every match starts with it, so it is the narrowest listing prefix.
std::string_view GlobLiteralPrefix(std::string_view glob);

/// Matches a glob against a '/'-separated path: '*' and '?' do not cross '/', '**' does (as a
/// whole component it also matches no directory at all), [abc] / [a-z] / [!a] are classes.
bool GlobMatch(std::string_view pattern, std::string_view path);

}  // namespace respawn

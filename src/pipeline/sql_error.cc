#include "pipeline/sql_error.h"

#include <charconv>
#include <vector>

namespace respawn {

namespace {

constexpr std::string_view kIndent = "  ";

// The non-negative integer at `text[*pos]`, advancing `*pos` past it.
bool ReadNumber(std::string_view text, size_t* pos, long* out) {
  const char* begin = text.data() + *pos;
  auto [ptr, ec] = std::from_chars(begin, text.data() + text.size(), *out);
  if (ec != std::errc() || ptr == begin || *out < 0) return false;
  *pos += static_cast<size_t>(ptr - begin);
  return true;
}

std::vector<std::string> SplitLines(std::string_view text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string line(text.substr(start, end - start));
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(std::move(line));
    start = end + 1;
  }
  return lines;
}

void ReplaceAll(std::string* text, std::string_view from, std::string_view to) {
  for (size_t at = text->find(from); at != std::string::npos; at = text->find(from, at)) {
    text->replace(at, from.size(), to);
    at += to.size();
  }
}

// "(line l, column c)" of the SQL as the file's line and column; returns the file's line or 0.
int PlaceParserPosition(std::string* line, const SqlPlacement& where) {
  constexpr std::string_view kOpen = "(line ";
  size_t at = line->rfind(kOpen);
  if (at == std::string::npos || where.line <= 0) return 0;
  size_t pos = at + kOpen.size();
  long l = 0;
  long c = 0;
  if (!ReadNumber(*line, &pos, &l) || line->compare(pos, 9, ", column ") != 0) return 0;
  pos += 9;
  if (!ReadNumber(*line, &pos, &c) || pos >= line->size() || (*line)[pos] != ')') return 0;
  l -= where.lines_before;
  if (l < 1 || c < 1) return 0;
  const long file_line = where.line + l - 1;
  const long file_column = l == 1 ? c + where.column - 1 : c;
  line->replace(
      at, pos + 1 - at,
      "(line " + std::to_string(file_line) + ", column " + std::to_string(file_column) + ")");
  return static_cast<int>(file_line);
}

// "LINE n: ..." at the start of `line`, renumbered to the file's line; `*shift` is how many
// characters the prefix grew (the caret line below moves by as many). Returns the file's line
// or 0.
int PlaceLineBlock(std::string* line, const SqlPlacement& where, long* shift) {
  constexpr std::string_view kLine = "LINE ";
  *shift = 0;
  if (line->rfind(kLine, 0) != 0) return 0;
  size_t pos = kLine.size();
  long n = 0;
  if (!ReadNumber(*line, &pos, &n) || pos >= line->size() || (*line)[pos] != ':') return 0;
  if (where.line <= 0 || n <= where.lines_before) return 0;
  const long file_line = where.line + (n - where.lines_before - 1);
  const std::string number = std::to_string(file_line);
  *shift = static_cast<long>(number.size()) - static_cast<long>(pos - kLine.size());
  line->replace(kLine.size(), pos - kLine.size(), number);
  return static_cast<int>(file_line);
}

}  // namespace

PlacedSqlError PlaceSqlError(std::string_view message, const SqlPlacement& where) {
  PlacedSqlError out;
  out.line = where.line;
  std::vector<std::string> lines = SplitLines(message);
  long shift = 0;
  bool after_line_block = false;
  bool first = true;
  for (std::string& line : lines) {
    ReplaceAll(&line, "Values list \"", "table \"");
    if (after_line_block && line.find_first_not_of(' ') != std::string::npos &&
        line.find_first_not_of(" ^") == std::string::npos) {
      // The caret under the LINE text: keep it under the same character.
      if (shift > 0) line.insert(0, static_cast<size_t>(shift), ' ');
      if (shift < 0) line.erase(0, std::min(line.find('^'), static_cast<size_t>(-shift)));
    }
    after_line_block = false;
    if (int l = PlaceLineBlock(&line, where, &shift); l > 0) {
      out.line = l;
      after_line_block = true;
    } else if (line.rfind("LINE ", 0) == 0) {
      after_line_block = true;  // a line we could not place: keep its caret as it is
      shift = 0;
    }
    if (int l = PlaceParserPosition(&line, where); l > 0) out.line = l;
    if (line.find_first_not_of(" \t") == std::string::npos) continue;  // blank lines
    if (!first) out.message += "\n" + std::string(kIndent);
    out.message += line;
    first = false;
  }
  return out;
}

}  // namespace respawn

#include "pipeline/expect.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <optional>

#include "pipeline/sql_error.h"
#include "sql/table_refs.h"
#include "util/hash.h"
#include "util/strings.h"

namespace respawn {
namespace {

constexpr size_t kShownRows = 10;
constexpr size_t kMaxCellWidth = 40;

const std::vector<std::string>& KindNames() {
  static const std::vector<std::string> names = {"unique", "not_null", "accepted_values", "rows"};
  return names;
}

constexpr std::string_view kForms =
    "write unique(col, ...), not_null(col, ...), accepted_values(col, ['a', 'b']) or rows > N, "
    "or the query returning the violating rows in expect_sql";

// A cursor over an expectation's text. The grammar is five forms of a few tokens each, so it is
// read by hand here: no Debian library parses it, and DuckDB's parser would accept far more
// than these forms (and needs a connection, which spec parsing has not).
class Cursor {
 public:
  explicit Cursor(std::string_view text) : text_(text) {}

  bool AtEnd() {
    SkipSpace();
    return pos_ == text_.size();
  }
  bool Eat(char c) {
    SkipSpace();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  // [A-Za-z_][A-Za-z0-9_]*, or a "double quoted" name ("" for a quote inside).
  std::optional<std::string> Identifier() {
    SkipSpace();
    if (pos_ < text_.size() && text_[pos_] == '"') return Quoted('"');
    size_t end = pos_;
    while (end < text_.size() &&
           (std::isalnum(static_cast<unsigned char>(text_[end])) || text_[end] == '_')) {
      ++end;
    }
    if (end == pos_ || std::isdigit(static_cast<unsigned char>(text_[pos_]))) return std::nullopt;
    std::string out(text_.substr(pos_, end - pos_));
    pos_ = end;
    return out;
  }
  // 'text' ('' for a quote inside), a number, true or false: as a SQL literal.
  std::optional<std::string> Literal() {
    SkipSpace();
    if (pos_ < text_.size() && text_[pos_] == '\'') {
      std::optional<std::string> s = Quoted('\'');
      if (!s) return std::nullopt;
      return QuoteLiteral(*s);
    }
    size_t end = pos_;
    while (end < text_.size() && (std::isalnum(static_cast<unsigned char>(text_[end])) ||
                                  text_[end] == '.' || text_[end] == '-' || text_[end] == '+')) {
      ++end;
    }
    std::string word = Lower(text_.substr(pos_, end - pos_));
    double number = 0;
    auto [ptr, ec] = std::from_chars(word.data(), word.data() + word.size(), number);
    const bool is_number = !word.empty() && ec == std::errc() && ptr == word.data() + word.size();
    if (!is_number && word != "true" && word != "false") return std::nullopt;
    pos_ = end;
    return word;
  }
  // >, >=, <, <=, =, ==, !=, <> (== as =, <> as !=).
  std::optional<std::string> Operator() {
    SkipSpace();
    for (std::string_view op : {">=", "<=", "==", "!=", "<>", ">", "<", "="}) {
      if (text_.substr(pos_).starts_with(op)) {
        pos_ += op.size();
        if (op == "==") return "=";
        if (op == "<>") return "!=";
        return std::string(op);
      }
    }
    return std::nullopt;
  }
  std::optional<uint64_t> Count() {
    SkipSpace();
    uint64_t v = 0;
    auto [ptr, ec] = std::from_chars(text_.data() + pos_, text_.data() + text_.size(), v);
    if (ec != std::errc()) return std::nullopt;
    pos_ = ptr - text_.data();
    return v;
  }

 private:
  void SkipSpace() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  std::optional<std::string> Quoted(char q) {
    std::string out;
    for (size_t i = pos_ + 1; i < text_.size(); ++i) {
      if (text_[i] != q) {
        out += text_[i];
      } else if (i + 1 < text_.size() && text_[i + 1] == q) {
        out += q;
        ++i;
      } else {
        pos_ = i + 1;
        return out;
      }
    }
    return std::nullopt;
  }

  std::string_view text_;
  size_t pos_ = 0;
};

Result<Expectation> ParseRowCount(Cursor& c, Expectation e) {
  e.kind = Expectation::Kind::kRowCount;
  std::optional<std::string> op = c.Operator();
  std::optional<uint64_t> n = op ? c.Count() : std::nullopt;
  if (!op || !n || !c.AtEnd()) {
    return InvalidArgument(
        "write the row count as rows followed by >, >=, <, <=, = or != and a whole number "
        "(e.g. rows > 0)");
  }
  e.op = *op;
  e.count = *n;
  return e;
}

// The columns of unique(...) or not_null(...), after its "(".
Result<Expectation> ParseColumns(Cursor& c, Expectation e, std::string_view kind) {
  do {
    std::optional<std::string> column = c.Identifier();
    if (!column) break;
    e.columns.push_back(*column);
  } while (c.Eat(','));
  if (e.columns.empty() || !c.Eat(')') || !c.AtEnd()) {
    return InvalidArgument("write " + std::string(kind) + "(col) or with several columns " +
                           std::string(kind) +
                           "(col1, col2), the columns as identifiers or \"quoted\"");
  }
  return e;
}

// accepted_values(col, [v, ...]), after its "(".
Result<Expectation> ParseAcceptedValues(Cursor& c, Expectation e) {
  e.kind = Expectation::Kind::kAcceptedValues;
  std::optional<std::string> column = c.Identifier();
  bool ok = column && c.Eat(',') && c.Eat('[');
  if (ok) e.columns.push_back(*column);
  while (ok) {
    std::optional<std::string> value = c.Literal();
    if (!value) break;
    e.values.push_back(*value);
    if (!c.Eat(',')) break;
  }
  ok = ok && !e.values.empty() && c.Eat(']') && c.Eat(')') && c.AtEnd();
  if (!ok) {
    return InvalidArgument(
        "write accepted_values(col, ['a', 'b']): a column, then a list of 'strings', numbers, "
        "true or false");
  }
  return e;
}

std::string JoinQuoted(const std::vector<std::string>& columns, std::string_view separator) {
  std::string out;
  for (size_t i = 0; i < columns.size(); ++i) {
    if (i > 0) out += separator;
    out += QuoteIdentifier(columns[i]);
  }
  return out;
}

// "1 row", "2 rows".
std::string Plural(uint64_t n, std::string_view one, std::string_view many) {
  return std::to_string(n) + " " + std::string(n == 1 ? one : many);
}

// Display width in code points (UTF-8 continuation bytes do not count).
size_t Width(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::string Cell(const Value& v) {
  std::string s = v.ToString();
  for (char& c : s) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  if (Width(s) <= kMaxCellWidth) return s;
  std::string out;
  size_t n = 0;
  for (size_t i = 0; i < s.size() && n < kMaxCellWidth - 3; ++i) {
    out += s[i];
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) ++n;
    while (i + 1 < s.size() && (static_cast<unsigned char>(s[i + 1]) & 0xC0) == 0x80) {
      out += s[++i];
    }
  }
  return out + "...";
}

// `rows` as a small table, one line each, indented by two blanks (a message's continuation):
//   order_id | status
//   ---------+-------
//   1        | new
std::string FormatRows(const QueryResult& rows) {
  const size_t cols = rows.num_columns();
  std::vector<std::vector<std::string>> cells(rows.num_rows() + 1, std::vector<std::string>(cols));
  std::vector<size_t> width(cols, 1);
  for (size_t c = 0; c < cols; ++c) {
    cells[0][c] = rows.columns()[c].name;
    for (size_t r = 0; r < rows.num_rows(); ++r) cells[r + 1][c] = Cell(rows.at(r, c));
    for (const auto& line : cells) width[c] = std::max(width[c], Width(line[c]));
  }
  std::string out;
  for (size_t line = 0; line < cells.size(); ++line) {
    std::string s = "\n  ";
    for (size_t c = 0; c < cols; ++c) {
      if (c > 0) s += " | ";
      s += cells[line][c];
      if (c + 1 < cols) s += std::string(width[c] - Width(cells[line][c]), ' ');
    }
    out += s;
    if (line == 0) {
      out += "\n  ";
      for (size_t c = 0; c < cols; ++c) {
        if (c > 0) out += "-+-";
        out += std::string(width[c], '-');
      }
    }
  }
  return out;
}

// "expect \"unique(order_id)\"" or "expect_sql": names an expectation in messages.
std::string ExpectationName(const Expectation& e) {
  return e.kind == Expectation::Kind::kSql ? "expect_sql" : "expect " + Quoted(e.text);
}

std::string StagePrefix(const PipelineSpec& spec, const StageSpec& stage, const Expectation& e) {
  return spec.Where(e.line) + ": stage " + Quoted(stage.name) + ": " + ExpectationName(e);
}

// A DuckDB error in expectation `e`'s query, which was sent with `lines_before` lines before
// it: an expect_sql's is placed at its lines in the file; a generated query's own text (its
// "LINE n:" block) is dropped, the expectation as written names it.
Status ExpectationSqlError(const PipelineSpec& spec, const StageSpec& stage, const Expectation& e,
                           const Status& error, int lines_before) {
  if (e.kind == Expectation::Kind::kSql) {
    PlacedSqlError placed = PlaceSqlError(
        error.message(), {.line = e.line, .column = e.sql_column, .lines_before = lines_before});
    return Status(error.code(), spec.Where(placed.line) + ": stage " + Quoted(stage.name) +
                                    ": expect_sql: " + placed.message);
  }
  std::string message = error.message();
  if (size_t at = message.find("\nLINE "); at != std::string::npos) message.resize(at);
  while (!message.empty() && message.back() == '\n') message.pop_back();
  PlacedSqlError placed = PlaceSqlError(message, {});
  return Status(error.code(), StagePrefix(spec, stage, e) + ": " + placed.message);
}

// Runs expectation `e` of `stage` on `conn`; a violation when it returned rows.
Result<std::optional<ExpectationViolation>> CheckOne(const PipelineSpec& spec,
                                                     const StageSpec& stage, const Expectation& e,
                                                     Connection& conn) {
  // The query on lines of its own, so that an expect_sql's error lines map to the file's.
  const std::string violations = "(\n" + ViolationsSql(e, stage.name) + "\n)";
  Result<Value> count = conn.QueryScalar("SELECT count(*) FROM " + violations);
  if (!count.ok()) return ExpectationSqlError(spec, stage, e, count.status(), 1);
  const uint64_t n = count->AsUInt64().ValueOr(0);
  if (n == 0) return std::optional<ExpectationViolation>();
  ExpectationViolation out;
  out.expectation = e.kind == Expectation::Kind::kSql ? "expect_sql" : e.text;
  out.line = e.line;
  out.rows = n;
  out.message = StagePrefix(spec, stage, e) + " failed: ";
  if (e.kind == Expectation::Kind::kRowCount) {
    ASSIGN_OR_RETURN(Value rows,
                     conn.QueryScalar("SELECT count(*) FROM " + QuoteIdentifier(stage.name)));
    out.message += "the stage has " + Plural(rows.AsUInt64().ValueOr(0), "row", "rows");
    return std::optional<ExpectationViolation>(std::move(out));
  }
  Result<QueryResult> shown =
      conn.Query("SELECT * FROM " + violations + " LIMIT " + std::to_string(kShownRows));
  if (!shown.ok()) return ExpectationSqlError(spec, stage, e, shown.status(), 1);
  out.message += Plural(n, "row violates", "rows violate") + " it" +
                 (n > kShownRows ? " (the first " + std::to_string(kShownRows) + " shown)" : "") +
                 ":" + FormatRows(*shown);
  return std::optional<ExpectationViolation>(std::move(out));
}

}  // namespace

Result<Expectation> ParseExpectation(std::string_view text) {
  Expectation e;
  e.text = std::string(text);
  Cursor c(text);
  std::optional<std::string> word = c.Identifier();
  if (!word) return InvalidArgument("not an expectation; " + std::string(kForms));
  const std::string kind = Lower(*word);
  if (kind == "rows") return ParseRowCount(c, std::move(e));
  const std::vector<std::string>& known = KindNames();
  if (std::find(known.begin(), known.end(), kind) == known.end()) {
    return InvalidArgument("unknown expectation " + Quoted(*word) + DidYouMeanSuffix(*word, known) +
                           "; " + std::string(kForms));
  }
  if (!c.Eat('(')) {
    return InvalidArgument(kind + " needs its arguments in parentheses (e.g. " +
                           (kind == "accepted_values" ? "accepted_values(status, ['new', 'paid'])"
                                                      : kind + "(order_id)") +
                           ")");
  }
  if (kind == "accepted_values") return ParseAcceptedValues(c, std::move(e));
  e.kind = kind == "unique" ? Expectation::Kind::kUnique : Expectation::Kind::kNotNull;
  return ParseColumns(c, std::move(e), kind);
}

std::string CanonicalExpectation(const Expectation& e) {
  auto columns = [&e] {
    std::string out;
    for (size_t i = 0; i < e.columns.size(); ++i) out += (i ? ", " : "") + e.columns[i];
    return out;
  };
  switch (e.kind) {
    case Expectation::Kind::kUnique:
      return "unique(" + columns() + ")";
    case Expectation::Kind::kNotNull:
      return "not_null(" + columns() + ")";
    case Expectation::Kind::kRowCount:
      return "rows " + e.op + " " + std::to_string(e.count);
    case Expectation::Kind::kAcceptedValues: {
      std::string values;
      for (size_t i = 0; i < e.values.size(); ++i) values += (i ? ", " : "") + e.values[i];
      return "accepted_values(" + columns() + ", [" + values + "])";
    }
    case Expectation::Kind::kSql:
      break;
  }
  return e.text;
}

std::string ExpectationsId(const StageSpec& stage) {
  if (stage.expectations.empty()) return std::string();
  std::string all = stage.severity == Severity::kWarn ? "warn" : "error";
  for (const Expectation& e : stage.expectations) {
    all += '\0';
    all += e.kind == Expectation::Kind::kSql ? "sql:" : "expect:";
    all += CanonicalExpectation(e);
  }
  return HexU64(Xxh3(all));
}

std::string ViolationsSql(const Expectation& e, std::string_view table) {
  const std::string from = " FROM " + QuoteIdentifier(table);
  switch (e.kind) {
    case Expectation::Kind::kUnique:
      // Every row whose key occurs more than once (rows with a NULL in the key are not
      // compared, as in SQL's UNIQUE; not_null covers them).
      return "SELECT *" + from + " WHERE " + JoinQuoted(e.columns, " IS NOT NULL AND ") +
             " IS NOT NULL QUALIFY count(*) OVER (PARTITION BY " + JoinQuoted(e.columns, ", ") +
             ") > 1 ORDER BY ALL";
    case Expectation::Kind::kNotNull:
      return "SELECT *" + from + " WHERE " + JoinQuoted(e.columns, " IS NULL OR ") + " IS NULL";
    case Expectation::Kind::kRowCount:
      return "SELECT count(*) AS \"rows\"" + from + " HAVING NOT (count(*) " + e.op + " " +
             std::to_string(e.count) + ")";
    case Expectation::Kind::kAcceptedValues: {
      std::string values;
      for (size_t i = 0; i < e.values.size(); ++i) values += (i ? ", " : "") + e.values[i];
      const std::string column = QuoteIdentifier(e.columns.at(0));
      return "SELECT *" + from + " WHERE " + column + " IS NOT NULL AND " + column + " NOT IN (" +
             values + ")";
    }
    case Expectation::Kind::kSql:
      break;
  }
  return e.text;
}

Result<std::vector<ExpectationViolation>> CheckExpectations(const PipelineSpec& spec,
                                                            const Dag& dag, int v,
                                                            Connection& conn) {
  std::vector<ExpectationViolation> out;
  const DagNode& node = dag.node(v);
  if (node.kind != NodeKind::kStage) return out;
  const StageSpec& stage = spec.stages[node.spec_index];
  for (const Expectation& e : stage.expectations) {
    ASSIGN_OR_RETURN(std::optional<ExpectationViolation> violation, CheckOne(spec, stage, e, conn));
    if (violation) out.push_back(std::move(*violation));
  }
  return out;
}

Status CheckExpectationSql(const PipelineSpec& spec, const Dag& dag, int v, Connection& conn) {
  const DagNode& node = dag.node(v);
  if (node.kind != NodeKind::kStage) return Status::OK();
  const StageSpec& stage = spec.stages[node.spec_index];
  std::vector<std::string> readable = {node.name};
  for (const DagEdge& edge : node.inputs) readable.push_back(dag.node(edge.from).name);
  for (const Expectation& e : stage.expectations) {
    Result<std::vector<TypedColumn>> bound =
        conn.Describe("SELECT * FROM (\n" + ViolationsSql(e, stage.name) + "\n)");
    if (!bound.ok()) {
      if (bound.status().code() != StatusCode::kInvalidArgument) continue;  // at run time
      return ExpectationSqlError(spec, stage, e, bound.status(), 1);
    }
    if (e.kind != Expectation::Kind::kSql) continue;
    ASSIGN_OR_RETURN(std::vector<std::string> tables, FindTableNamesRead(conn, e.text));
    for (const std::string& table : tables) {
      auto same = [&table](const std::string& name) { return Lower(name) == Lower(table); };
      if (std::any_of(readable.begin(), readable.end(), same)) continue;
      std::string names;
      for (size_t i = 0; i < readable.size(); ++i) names += (i ? ", " : "") + readable[i];
      return InvalidArgument(StagePrefix(spec, stage, e) + " reads table " + Quoted(table) +
                             "; an expectation may read only the stage and what it reads (" +
                             names + ")");
    }
  }
  return Status::OK();
}

}  // namespace respawn

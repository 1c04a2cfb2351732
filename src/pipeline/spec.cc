#include "pipeline/spec.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <system_error>

#include "ledger/coordinator.h"
#include "pipeline/expect.h"
#include "sql/engine.h"
#include "storage/store_url.h"
#include "util/glob.h"
#include "util/hash.h"
#include "util/paths.h"
#include "util/strings.h"

namespace respawn {
namespace {

namespace fs = std::filesystem;

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

// Optimal string alignment distance (Levenshtein plus adjacent transpositions).
size_t OsaDistance(std::string_view a, std::string_view b) {
  const size_t n = a.size(), m = b.size();
  std::vector<std::vector<size_t>> d(n + 1, std::vector<size_t>(m + 1));
  for (size_t i = 0; i <= n; ++i) d[i][0] = i;
  for (size_t j = 0; j <= m; ++j) d[0][j] = j;
  for (size_t i = 1; i <= n; ++i) {
    for (size_t j = 1; j <= m; ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[n][m];
}

std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += ", ";
    out += names[i];
  }
  return out;
}

std::string_view TypeNameWithArticle(toml::node_type type) {
  switch (type) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

std::string FormatDouble(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  std::string out(buf, ec == std::errc() ? end : buf);
  if (out.find_first_of(".eE") == std::string::npos) out += ".0";
  return out;
}

template <typename T>
std::string Streamed(const T& v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

std::optional<SpecValue> ToSpecValue(const toml::node& node) {
  SpecValue v;
  if (auto* b = node.as_boolean()) {
    v.type = SpecValue::Type::kBool;
    v.text = b->get() ? "true" : "false";
  } else if (auto* i = node.as_integer()) {
    v.type = SpecValue::Type::kInteger;
    v.text = std::to_string(i->get());
  } else if (auto* f = node.as_floating_point()) {
    v.type = SpecValue::Type::kFloat;
    v.text = FormatDouble(f->get());
  } else if (auto* s = node.as_string()) {
    v.type = SpecValue::Type::kString;
    v.text = s->get();
  } else if (auto* d = node.as_date()) {
    v.type = SpecValue::Type::kDate;
    v.text = Streamed(d->get());
  } else if (auto* t = node.as_time()) {
    v.type = SpecValue::Type::kTime;
    v.text = Streamed(t->get());
  } else if (auto* dt = node.as_date_time()) {
    v.type = SpecValue::Type::kDateTime;
    v.text = Streamed(dt->get());
  } else {
    return std::nullopt;
  }
  return v;
}

// An identifier suggestion for a bad name: invalid characters become '_', a leading digit gets
// a '_' prefix.
std::string IdentifierFor(std::string_view name) {
  std::string out;
  for (char c : name) {
    out += (std::isalnum(static_cast<unsigned char>(c)) || c == '_') ? c : '_';
  }
  if (out.empty() || std::isdigit(static_cast<unsigned char>(out[0]))) out = "_" + out;
  return out;
}

std::optional<DataFormat> FormatFromName(std::string_view name) {
  std::string n = Lower(name);
  if (n == "csv" || n == "tsv") return DataFormat::kCsv;
  if (n == "parquet" || n == "pq") return DataFormat::kParquet;
  if (n == "json" || n == "jsonl" || n == "ndjson") return DataFormat::kJson;
  return std::nullopt;
}

// The format implied by a path's extension, looking through a compression suffix.
std::optional<DataFormat> FormatFromPath(std::string_view path) {
  std::string p = Lower(path);
  for (std::string_view comp : {".gz", ".zst", ".bz2", ".xz"}) {
    if (p.size() > comp.size() && p.ends_with(comp)) {
      p.resize(p.size() - comp.size());
      break;
    }
  }
  size_t slash = p.find_last_of('/');
  size_t dot = p.find_last_of('.');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return std::nullopt;
  return FormatFromName(std::string_view(p).substr(dot + 1));
}

struct Diagnostic {
  int line = 0;
  int column = 0;  // 0: not shown
  std::string message;
};

// One parse of one document. Collects every problem it finds, then reports them all.
class SpecParser {
 public:
  SpecParser(std::string_view text, std::string display_name, std::string base_dir,
             SpecOverrides overrides = {})
      : text_(text), overrides_(std::move(overrides)) {
    spec_.display_name = std::move(display_name);
    spec_.base_dir = std::move(base_dir);
    size_t start = 0;
    while (start <= text_.size()) {
      size_t nl = text_.find('\n', start);
      if (nl == std::string_view::npos) {
        lines_.push_back(text_.substr(start));
        break;
      }
      lines_.push_back(text_.substr(start, nl - start));
      start = nl + 1;
    }
  }

  Result<PipelineSpec> Parse() {
    toml::table root;
    try {
      root = toml::parse(text_, std::string_view(spec_.display_name));
    } catch (const toml::parse_error& e) {
      const auto& begin = e.source().begin;
      std::string what = DescribeTomlError(e.description());
      if (e.description().find("control characters") != std::string_view::npos &&
          AtEndOfLine(static_cast<int>(begin.line), static_cast<int>(begin.column))) {
        // toml++ reports a string left open at the end of its line as a forbidden newline.
        what =
            "the string is not closed on its line; end it with the quote it starts with, or "
            "use \"\"\"...\"\"\" for text over several lines";
      }
      return InvalidArgument(spec_.display_name + ":" + std::to_string(begin.line) + ":" +
                             std::to_string(begin.column) + ": invalid TOML: " + what);
    } catch (const std::exception& e) {
      return Internal(spec_.display_name + ": TOML parser failed: " + e.what());
    }
    ParseProfile(root);
    ParseParamOverrides();
    ParseRoot(root);
    CheckOverridesUsed();
    CheckNames();
    CheckReferences();
    if (!diagnostics_.empty()) return Failure();
    return std::move(spec_);
  }

 private:
  static std::string DescribeTomlError(std::string_view description) {
    // "Error while parsing value: could not determine value type"
    //   -> "could not determine value type (while parsing value)"
    constexpr std::string_view kPrefix = "Error while ";
    if (description.starts_with(kPrefix)) {
      size_t colon = description.find(": ");
      if (colon != std::string_view::npos) {
        std::string what(description.substr(kPrefix.size(), colon - kPrefix.size()));
        return std::string(description.substr(colon + 2)) + " (while " + what + ")";
      }
    }
    return std::string(description);
  }

  // Whether (line, column) (1-based, columns in code points) is past the line's last character.
  bool AtEndOfLine(int line, int column) const {
    if (line < 1 || static_cast<size_t>(line) > lines_.size()) return false;
    std::string_view l = lines_[line - 1];
    if (l.ends_with('\r')) l.remove_suffix(1);
    int code_points = 0;
    for (char c : l) {
      if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++code_points;
    }
    return column > code_points;
  }

  void Error(int line, std::string message) {
    diagnostics_.push_back({line, 0, std::move(message)});
  }

  Status Failure() {
    std::stable_sort(diagnostics_.begin(), diagnostics_.end(),
                     [](const Diagnostic& a, const Diagnostic& b) { return a.line < b.line; });
    std::string message;
    for (const Diagnostic& d : diagnostics_) {
      if (!message.empty()) message += "\n";
      message += spec_.Where(d.line) + ": " + d.message;
    }
    return InvalidArgument(std::move(message));
  }

  static int LineOf(const toml::node& node) { return static_cast<int>(node.source().begin.line); }
  static int LineOf(const toml::key& key) { return static_cast<int>(key.source().begin.line); }

  // Reports keys of `table` not in `valid`. `owner` is e.g. `stage "daily"`.
  void CheckKeys(const toml::table& table, std::string_view owner,
                 const std::vector<std::string>& valid) {
    for (auto&& [key, value] : table) {
      if (std::find(valid.begin(), valid.end(), key.str()) != valid.end()) continue;
      Error(LineOf(key), std::string(owner) + ": unknown key " + Quoted(key.str()) +
                             DidYouMeanSuffix(key.str(), valid) + "; valid keys are " +
                             JoinNames(valid));
    }
  }

  // The string at `node`, or an error naming `what` and an example.
  std::optional<std::string> ExpectString(const toml::node& node, std::string_view owner,
                                          std::string_view key, std::string_view example) {
    if (auto* s = node.as_string()) return s->get();
    Error(LineOf(node), std::string(owner) + ": " + std::string(key) + " must be a string, not " +
                            std::string(TypeNameWithArticle(node.type())) + " (e.g. " +
                            std::string(key) + " = " + std::string(example) + ")");
    return std::nullopt;
  }

  // The line the text of the string at `node` starts on: a multi-line string whose opening
  // delimiter ends its line starts on the next one (TOML trims that newline). `*column` is set
  // to the column of the text's first character on that line.
  int TextStartLine(const toml::node& node, int* column) const {
    const auto& begin = node.source().begin;
    int line = static_cast<int>(begin.line);
    *column = static_cast<int>(begin.column) + 1;  // past a one-character delimiter
    if (line < 1 || static_cast<size_t>(line) > lines_.size()) return line;
    std::string_view l = lines_[line - 1];
    // Columns count code points; walk UTF-8 to the byte offset.
    size_t byte = 0;
    for (size_t col = 1; col < begin.column && byte < l.size();) {
      ++byte;
      while (byte < l.size() && (static_cast<unsigned char>(l[byte]) & 0xC0) == 0x80) ++byte;
      ++col;
    }
    std::string_view rest = l.substr(std::min(byte, l.size()));
    if (rest.starts_with("\"\"\"") || rest.starts_with("'''")) {
      *column = static_cast<int>(begin.column) + 3;
      std::string_view after = rest.substr(3);
      if (after.empty() || after == "\r") {
        *column = 1;
        return line + 1;
      }
    }
    return line;
  }

  std::vector<NamedValue> ParseValueTable(const toml::node& node, std::string_view owner,
                                          std::string_view key, std::string_view example) {
    std::vector<NamedValue> out;
    const toml::table* table = node.as_table();
    if (table == nullptr) {
      Error(LineOf(node), std::string(owner) + ": " + std::string(key) + " must be a table, not " +
                              std::string(TypeNameWithArticle(node.type())) + " (e.g. " +
                              std::string(key) + " = " + std::string(example) + ")");
      return out;
    }
    for (auto&& [k, v] : *table) {
      if (!IsSqlIdentifier(k.str())) {
        Error(LineOf(k), std::string(owner) + ": " + std::string(key) + " name " + Quoted(k.str()) +
                             " is not an identifier; use letters, digits and _, not starting "
                             "with a digit (e.g. " +
                             Quoted(IdentifierFor(k.str())) + ")");
        continue;
      }
      std::optional<SpecValue> value = ToSpecValue(v);
      if (!value) {
        Error(LineOf(v), std::string(owner) + ": " + std::string(key) + "." + std::string(k.str()) +
                             " must be a string, number, boolean, date or time, not " +
                             std::string(TypeNameWithArticle(v.type())));
        continue;
      }
      out.push_back({std::string(k.str()), std::move(*value), LineOf(k)});
    }
    std::sort(out.begin(), out.end(),
              [](const NamedValue& a, const NamedValue& b) { return a.name < b.name; });
    return out;
  }

  // Replaces each ${name} in `raw` with the text of param `name`.
  std::string Substitute(std::string_view raw, int sql_line, const std::vector<NamedValue>& params,
                         std::string_view owner) {
    std::vector<std::string> names;
    for (const NamedValue& p : params) names.push_back(p.name);
    std::string out;
    size_t i = 0;
    while (i < raw.size()) {
      size_t open = raw.find("${", i);
      if (open == std::string_view::npos) {
        out += raw.substr(i);
        break;
      }
      out += raw.substr(i, open - i);
      int line = LineInSql(raw, sql_line, open);
      size_t close = raw.find('}', open + 2);
      std::string_view name = close == std::string_view::npos
                                  ? std::string_view()
                                  : raw.substr(open + 2, close - open - 2);
      if (close != std::string_view::npos && name.starts_with("env:") &&
          IsSqlIdentifier(name.substr(4))) {
        // ${env:NAME}: the environment's value (part of the fingerprint, as params are).
        const std::string var(name.substr(4));
        if (const char* value = std::getenv(var.c_str()); value != nullptr) {
          out += value;
        } else {
          Error(line, std::string(owner) + ": sql uses ${env:" + var + "}, but " + var +
                          " is not set in the environment");
        }
        i = close + 1;
        continue;
      }
      if (close == std::string_view::npos || !IsSqlIdentifier(name)) {
        std::string shown(raw.substr(
            open, std::min<size_t>(close == std::string_view::npos ? 12 : close - open + 1,
                                   raw.size() - open)));
        Error(line, std::string(owner) + ": malformed parameter reference " + Quoted(shown) +
                        " in sql; write ${name} where name is a key of params");
        out += "${";
        i = open + 2;
        continue;
      }
      auto it = std::find_if(params.begin(), params.end(),
                             [&](const NamedValue& p) { return p.name == name; });
      if (it == params.end()) {
        if (params.empty()) {
          Error(line, std::string(owner) + ": sql uses ${" + std::string(name) +
                          "}, but no params are defined; add params = { " + std::string(name) +
                          " = ... }");
        } else {
          Error(line, std::string(owner) + ": sql uses ${" + std::string(name) +
                          "}, which params does not define" + DidYouMeanSuffix(name, names) +
                          "; defined params are " + JoinNames(names));
        }
      } else {
        out += it->value.text;
      }
      i = close + 1;
    }
    return out;
  }

  DataLocation ResolveLocation(std::string written, int line, std::string_view owner,
                               std::string_view key) {
    DataLocation loc;
    loc.written = written;
    loc.line = line;
    if (std::string near_miss = StoreUrlNearMiss(written); !near_miss.empty()) {
      Error(line, std::string(owner) + ": " + std::string(key) + ": " + near_miss);
      return loc;
    }
    // `~` and $VARS as a shell would expand them (the pipeline file is not seen by one).
    Result<std::string> expanded = ExpandShellPath(written);
    if (!expanded.ok()) {
      Error(line,
            std::string(owner) + ": " + std::string(key) + ": " + expanded.status().message());
      return loc;
    }
    std::string path = *expanded;
    if (path.starts_with("file://")) {
      path = path.substr(7);
    } else if (size_t scheme = path.find("://"); scheme != std::string::npos) {
      std::string s = Lower(std::string_view(path).substr(0, scheme));
      if (s != "s3" && s != "memory") {
        Error(line, std::string(owner) + ": " + std::string(key) + " " + Quoted(written) +
                        " uses an unsupported scheme \"" + s +
                        "://\"; use a local path or s3://bucket/key");
      }
      loc.resolved = path;
      loc.is_url = true;
      return loc;
    }
    fs::path p(path);
    if (p.is_relative()) p = fs::path(spec_.base_dir) / p;
    loc.resolved = p.lexically_normal().string();
    return loc;
  }

  void ParseGc(const toml::table& root) {
    const toml::node* node = root.get("gc");
    if (node == nullptr) return;
    const toml::table* t = node->as_table();
    if (t == nullptr) {
      Error(LineOf(*node), "gc must be a table: [gc] with keep_runs = 1, orphan_grace = \"1h\"");
      return;
    }
    spec_.gc.line = LineOf(*node);
    CheckKeys(*t, "[gc]", {"keep_runs", "orphan_grace", "keep_run_reports", "work_tables_ttl"});
    if (const toml::node* reports = t->get("keep_run_reports")) {
      auto* i = reports->as_integer();
      if (i == nullptr || i->get() < 1 || i->get() > 100000) {
        Error(LineOf(*reports),
              "[gc]: keep_run_reports must be a whole number of run reports, "
              "at least 1 (e.g. keep_run_reports = 30)");
      } else {
        spec_.gc.keep_run_reports = static_cast<int>(i->get());
      }
    }
    if (const toml::node* keep = t->get("keep_runs")) {
      auto* i = keep->as_integer();
      if (i == nullptr || i->get() < 1 || i->get() > 1000000) {
        Error(LineOf(*keep),
              "[gc]: keep_runs must be a whole number of runs, at least 1 (e.g. "
              "keep_runs = 3)");
      } else {
        spec_.gc.keep_runs = static_cast<int>(i->get());
      }
    }
    GcDuration(*t, "orphan_grace", "\"1h\"", &spec_.gc.orphan_grace_ms);
    GcDuration(*t, "work_tables_ttl", "\"6h\"", &spec_.gc.work_tables_ttl_ms);
  }

  // [gc] `key` = a duration (ParseDuration, or "0"), into `*ms` when present and valid.
  void GcDuration(const toml::table& gc, std::string_view key, std::string_view example,
                  int64_t* ms) {
    const toml::node* node = gc.get(key);
    if (node == nullptr) return;
    std::optional<std::string> s = ExpectString(*node, "[gc]", key, example);
    if (!s) return;
    Result<int64_t> parsed = *s == "0" ? Result<int64_t>(0) : ParseDuration(*s);
    if (!parsed.ok()) {
      Error(LineOf(*node), "[gc]: " + std::string(key) + ": " + parsed.status().message());
    } else {
      *ms = *parsed;
    }
  }

  // [profiles.NAME] chosen by --profile: its params (and, after the root is parsed, its store).
  void ParseProfile(const toml::table& root) {
    const toml::node* node = root.get("profiles");
    const toml::table* profiles = node != nullptr ? node->as_table() : nullptr;
    if (node != nullptr && profiles == nullptr) {
      Error(LineOf(*node),
            "profiles must be a table of profiles (e.g. [profiles.dev] with "
            "store = \"...\" and params = { ... })");
      return;
    }
    if (overrides_.profile.empty()) return;
    std::vector<std::string> names;
    const toml::table* chosen = nullptr;
    if (profiles != nullptr) {
      for (auto&& [k, v] : *profiles) {
        names.emplace_back(k.str());
        if (k.str() == overrides_.profile) chosen = v.as_table();
      }
    }
    if (chosen == nullptr) {
      Error(node != nullptr ? LineOf(*node) : 1,
            "--profile " + Quoted(overrides_.profile) + ": the file defines no [profiles." +
                overrides_.profile + "]" + DidYouMeanSuffix(overrides_.profile, names) +
                (names.empty() ? "" : "; profiles are " + JoinNames(names)));
      return;
    }
    const std::string owner = "profile " + Quoted(overrides_.profile);
    CheckKeys(*chosen, owner, {"store", "params"});
    if (const toml::node* params = chosen->get("params")) {
      for (NamedValue& v : ParseValueTable(*params, owner, "params", "{ rows = 1000 }")) {
        overrides_by_name_[v.name] = {v.value, owner, false, true};
      }
    }
    profile_store_ = chosen->get("store");
  }

  // --param name=value (after the profile, so they win).
  void ParseParamOverrides() {
    for (const std::string& p : overrides_.params) {
      size_t eq = p.find('=');
      std::string name = eq == std::string::npos ? p : p.substr(0, eq);
      if (eq == std::string::npos || !IsSqlIdentifier(name)) {
        Error(1,
              "--param " + Quoted(p) + ": write --param name=value (e.g. --param min_amount=20)");
        continue;
      }
      SpecValue value;
      value.text = p.substr(eq + 1);
      overrides_by_name_[name] = {value, "--param " + p, true, false};
    }
  }

  struct Override {
    SpecValue value;
    std::string from;    // "--param x=1" or "profile \"dev\"" (for messages)
    bool typed_by_file;  // --param: text only, takes the type of the param it replaces
    bool used = false;
  };

  // Params of a source or stage, with the profile's and --param's values in place.
  void ApplyParamOverrides(std::vector<NamedValue>* params, std::string_view owner) {
    for (NamedValue& p : *params) {
      auto it = overrides_by_name_.find(p.name);
      if (it == overrides_by_name_.end()) continue;
      Override& o = it->second;
      o.used = true;
      if (!o.typed_by_file) {
        p.value = o.value;
        continue;
      }
      std::string why;
      SpecValue v = p.value;
      v.text = o.value.text;
      if (!ParamTextFits(v, &why)) {
        Error(p.line, std::string(owner) + ": " + o.from + ": " + why);
        continue;
      }
      p.value = v;
    }
  }

  // Whether `v.text` is a valid value of `v.type`; canonicalizes booleans.
  static bool ParamTextFits(SpecValue& v, std::string* why) {
    const std::string& t = v.text;
    switch (v.type) {
      case SpecValue::Type::kInteger: {
        int64_t n = 0;
        auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), n);
        if (ec == std::errc() && end == t.data() + t.size() && !t.empty()) return true;
        *why = Quoted(t) + " is not a whole number, as the param is in the file";
        return false;
      }
      case SpecValue::Type::kFloat: {
        char* end = nullptr;
        std::strtod(t.c_str(), &end);
        if (!t.empty() && end == t.c_str() + t.size()) return true;
        *why = Quoted(t) + " is not a number, as the param is in the file";
        return false;
      }
      case SpecValue::Type::kBool:
        if (t == "true" || t == "false") return true;
        *why = Quoted(t) + " is not true or false, as the param is in the file";
        return false;
      default:
        return true;
    }
  }

  void CheckOverridesUsed() {
    std::vector<std::string> defined(all_param_names_.begin(), all_param_names_.end());
    for (const auto& [name, o] : overrides_by_name_) {
      if (o.used) continue;
      Error(1, o.from + ": no source or stage defines the param " + Quoted(name) +
                   DidYouMeanSuffix(name, defined) +
                   (defined.empty() ? "" : "; params are " + JoinNames(defined)));
    }
  }

  void ParseRoot(const toml::table& root) {
    CheckKeys(root, "pipeline",
              {"name", "store", "coordinator", "sources", "stages", "outputs", "gc", "profiles"});
    ParseGc(root);
    ParseName(root);
    ParseStoreAndCoordinator(root);
    ForEachEntry(root, "sources", "source", [&](std::string name, int line, const toml::table& t) {
      ParseSource(std::move(name), line, t);
    });
    ForEachEntry(root, "stages", "stage", [&](std::string name, int line, const toml::table& t) {
      ParseStage(std::move(name), line, t);
    });
    ForEachEntry(root, "outputs", "output", [&](std::string name, int line, const toml::table& t) {
      ParseOutput(std::move(name), line, t);
    });
    auto by_line = [](const auto& a, const auto& b) { return a.line < b.line; };
    std::stable_sort(spec_.sources.begin(), spec_.sources.end(), by_line);
    std::stable_sort(spec_.stages.begin(), spec_.stages.end(), by_line);
    std::stable_sort(spec_.outputs.begin(), spec_.outputs.end(), by_line);
  }

  void ParseName(const toml::table& root) {
    if (const toml::node* name = root.get("name")) {
      if (auto s = ExpectString(*name, "pipeline", "name", "\"sales\"")) {
        bool valid = !s->empty();
        for (char c : *s) {
          if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.') {
            valid = false;
          }
        }
        if (!valid) {
          Error(LineOf(*name), "pipeline name " + Quoted(*s) +
                                   " may contain only letters, digits, '_', '-' and '.' (it "
                                   "names the pipeline's checkpoints in the store)");
        }
        spec_.name = *s;
      }
    } else {
      Error(1,
            "missing name = \"...\" at the top of the file (it names the pipeline's "
            "checkpoints in the store)");
    }
  }

  // The store (the file's, then the profile's) and the coordinator.
  void ParseStoreAndCoordinator(const toml::table& root) {
    if (const toml::node* store = root.get("store")) {
      if (auto s = ExpectString(*store, "pipeline", "store", "\"s3://bucket/prefix\"")) {
        if (s->empty()) {
          Error(LineOf(*store),
                "store is empty; remove it to use a local .respawn/ store "
                "next to this file, or name one (e.g. \"s3://bucket/prefix\")");
        } else {
          spec_.store = ResolveLocation(*s, LineOf(*store), "pipeline", "store").resolved;
          spec_.store_line = LineOf(*store);
        }
      }
    }
    if (profile_store_ != nullptr) {
      const std::string owner = "profile " + Quoted(overrides_.profile);
      if (auto s = ExpectString(*profile_store_, owner, "store", "\"s3://bucket/prefix\"")) {
        spec_.store = ResolveLocation(*s, LineOf(*profile_store_), owner, "store").resolved;
        spec_.store_line = LineOf(*profile_store_);
      }
    }
    if (const toml::node* coordinator = root.get("coordinator")) {
      if (auto s = ExpectString(*coordinator, "pipeline", "coordinator",
                                "\"postgresql://user@host:5432/db\"")) {
        Status valid = ledger::ValidateCoordinatorUrl(*s);
        if (!valid.ok()) {
          Error(LineOf(*coordinator), valid.message());
        } else {
          spec_.coordinator = *s;
          spec_.coordinator_line = LineOf(*coordinator);
        }
      }
    }
  }

  template <typename Fn>
  void ForEachEntry(const toml::table& root, std::string_view section, std::string_view kind,
                    Fn&& fn) {
    const toml::node* node = root.get(section);
    if (node == nullptr) return;
    const toml::table* table = node->as_table();
    if (table == nullptr) {
      Error(LineOf(*node), std::string(section) + " must be a table of " + std::string(kind) +
                               "s, not " + std::string(TypeNameWithArticle(node->type())) +
                               " (e.g. [" + std::string(section) + ".name])");
      return;
    }
    for (auto&& [key, value] : *table) {
      std::string name(key.str());
      const toml::table* entry = value.as_table();
      if (entry == nullptr) {
        Error(LineOf(key), std::string(kind) + " " + Quoted(name) + " must be a table, not " +
                               std::string(TypeNameWithArticle(value.type())) + " (write [" +
                               std::string(section) + "." + name + "] and its keys below it)");
        continue;
      }
      if (!IsSqlIdentifier(name)) {
        Error(LineOf(key), std::string(kind) + " name " + Quoted(name) +
                               " is not a SQL identifier; use letters, digits and _, not "
                               "starting with a digit (e.g. " +
                               Quoted(IdentifierFor(name)) + ")");
        continue;
      }
      fn(std::move(name), LineOf(key), *entry);
    }
  }

  void ParseSource(std::string name, int line, const toml::table& t) {
    SourceSpec source;
    source.name = name;
    source.line = line;
    const std::string owner = "source " + Quoted(name);
    CheckKeys(t, owner, {"path", "sql", "format", "options", "params"});
    const toml::node* path = t.get("path");
    const toml::node* sql = t.get("sql");
    if (path != nullptr && sql != nullptr) {
      Error(line, owner +
                      " sets both path and sql; keep path to read files or sql to generate "
                      "rows, not both");
      return;
    }
    if (path == nullptr && sql == nullptr) {
      Error(line, owner +
                      " needs path = \"...\" (files to read) or sql = \"SELECT ...\" (rows "
                      "to generate)");
      return;
    }
    const bool parsed = path != nullptr ? ParseFileSource(t, owner, *path, &source)
                                        : ParseSqlSource(t, owner, *sql, &source);
    if (parsed) spec_.sources.push_back(std::move(source));
  }

  // A source read from files: path = ..., its format (named or from the extension), options.
  bool ParseFileSource(const toml::table& t, const std::string& owner, const toml::node& path,
                       SourceSpec* source) {
    source->kind = SourceKind::kFiles;
    if (const toml::node* params = t.get("params")) {
      Error(LineOf(*params), owner + ": params apply only to sql sources; remove them");
    }
    std::optional<std::string> p = ExpectString(path, owner, "path", "\"data/orders/*.csv\"");
    if (!p) return false;
    if (p->empty()) {
      Error(LineOf(path), owner +
                              ": path is empty; name the files to read (e.g. path = "
                              "\"data/orders/*.csv\")");
      return false;
    }
    source->location = ResolveLocation(*p, LineOf(path), owner, "path");
    if (const toml::node* format = t.get("format")) {
      std::optional<std::string> f =
          ExpectString(*format, owner, "format", "\"csv\", \"parquet\" or \"json\"");
      if (!f) return false;
      std::optional<DataFormat> df = FormatFromName(*f);
      if (!df) {
        Error(LineOf(*format), owner + ": unknown format " + Quoted(*f) +
                                   DidYouMeanSuffix(*f, {"csv", "parquet", "json", "jsonl"}) +
                                   "; use \"csv\", \"parquet\" or \"json\"");
        return false;
      }
      source->format = *df;
    } else if (std::optional<DataFormat> df = FormatFromPath(*p)) {
      source->format = *df;
    } else {
      Error(LineOf(path), owner + ": cannot tell the format of " + Quoted(*p) +
                              " from its extension; add format = \"csv\", \"parquet\" or "
                              "\"json\"");
      return false;
    }
    if (const toml::node* options = t.get("options")) {
      source->options = ParseValueTable(*options, owner, "options", "{ header = true }");
    }
    return true;
  }

  // A source generated by SQL: sql = ..., its params (with --param overrides).
  bool ParseSqlSource(const toml::table& t, const std::string& owner, const toml::node& sql,
                      SourceSpec* source) {
    source->kind = SourceKind::kSql;
    for (std::string_view k : {"format", "options"}) {
      if (const toml::node* n = t.get(k)) {
        Error(LineOf(*n), owner + ": " + std::string(k) +
                              " applies only to sources read from files (path = ...); "
                              "remove it");
      }
    }
    if (const toml::node* params = t.get("params")) {
      source->params = ParseValueTable(*params, owner, "params", "{ rows = 1000 }");
      for (const NamedValue& p : source->params) all_param_names_.insert(p.name);
      ApplyParamOverrides(&source->params, owner);
    }
    return ParseSql(sql, owner, source->params, &source->raw_sql, &source->sql, &source->sql_line,
                    &source->sql_column);
  }

  bool ParseSql(const toml::node& node, const std::string& owner,
                const std::vector<NamedValue>& params, std::string* raw, std::string* sql,
                int* sql_line, int* sql_column) {
    std::optional<std::string> s = ExpectString(node, owner, "sql", "\"SELECT ...\"");
    if (!s) return false;
    if (s->find_first_not_of(" \t\r\n") == std::string::npos) {
      Error(LineOf(node), owner + ": sql is empty; write the query (e.g. sql = \"SELECT ...\")");
      return false;
    }
    *raw = *s;
    *sql_line = TextStartLine(node, sql_column);
    *sql = Substitute(*raw, *sql_line, params, owner);
    return true;
  }

  void ParseStage(std::string name, int line, const toml::table& t) {
    StageSpec stage;
    stage.name = name;
    stage.line = line;
    const std::string owner = "stage " + Quoted(name);
    CheckKeys(
        t, owner,
        {"sql", "depends_on", "checkpoint", "keep", "params", "expect", "expect_sql", "severity"});
    ParseBool(t, "keep", owner, &stage.keep);
    ParseBool(t, "checkpoint", owner, &stage.checkpoint);
    if (const toml::node* params = t.get("params")) {
      stage.params = ParseValueTable(*params, owner, "params", "{ min_amount = 10 }");
      for (const NamedValue& p : stage.params) all_param_names_.insert(p.name);
      ApplyParamOverrides(&stage.params, owner);
    }
    if (const toml::node* deps = t.get("depends_on")) {
      if (auto* array = deps->as_array()) {
        for (const toml::node& d : *array) {
          if (auto* s = d.as_string()) {
            stage.depends_on.push_back({s->get(), LineOf(d)});
          } else {
            Error(LineOf(d), owner + ": depends_on must list names as strings, not " +
                                 std::string(TypeNameWithArticle(d.type())) +
                                 " (e.g. depends_on = [\"orders\"])");
          }
        }
      } else {
        Error(LineOf(*deps), owner + ": depends_on must be an array of names, not " +
                                 std::string(TypeNameWithArticle(deps->type())) +
                                 " (e.g. depends_on = [\"orders\"])");
      }
    }
    ParseExpectations(t, owner, &stage);
    const toml::node* sql = t.get("sql");
    if (sql == nullptr) {
      Error(line, owner + " has no sql; add sql = \"SELECT ...\" (the query that computes it)");
      return;
    }
    if (!ParseSql(*sql, owner, stage.params, &stage.raw_sql, &stage.sql, &stage.sql_line,
                  &stage.sql_column))
      return;
    spec_.stages.push_back(std::move(stage));
  }

  // `key = true|false` of `t`, if present, into `*out`.
  void ParseBool(const toml::table& t, std::string_view key, const std::string& owner, bool* out) {
    const toml::node* node = t.get(key);
    if (node == nullptr) return;
    if (auto* b = node->as_boolean()) {
      *out = b->get();
    } else {
      Error(LineOf(*node), owner + ": " + std::string(key) + " must be true or false, not " +
                               std::string(TypeNameWithArticle(node->type())));
    }
  }

  // The strings of `key` (a string or an array of strings) of `t`, each with its node.
  std::vector<std::pair<std::string, const toml::node*>> StringList(const toml::table& t,
                                                                    std::string_view key,
                                                                    const std::string& owner,
                                                                    std::string_view example) {
    std::vector<std::pair<std::string, const toml::node*>> out;
    const toml::node* node = t.get(key);
    if (node == nullptr) return out;
    const toml::array* array = node->as_array();
    if (array == nullptr && node->as_string() == nullptr) {
      Error(LineOf(*node), owner + ": " + std::string(key) +
                               " must be a string or an array of strings, not " +
                               std::string(TypeNameWithArticle(node->type())) + " (e.g. " +
                               std::string(key) + " = " + std::string(example) + ")");
      return out;
    }
    if (array == nullptr) return {{node->as_string()->get(), node}};
    for (const toml::node& item : *array) {
      if (auto s = ExpectString(item, owner, key, example)) out.emplace_back(*s, &item);
    }
    return out;
  }

  // expect = [...], expect_sql = "..." or [...], severity = "error" | "warn" (expect.h).
  void ParseExpectations(const toml::table& t, const std::string& owner, StageSpec* stage) {
    for (auto& [text, node] : StringList(t, "expect", owner, "[\"unique(id)\", \"rows > 0\"]")) {
      Result<Expectation> e = ParseExpectation(text);
      if (!e.ok()) {
        Error(LineOf(*node), owner + ": expect " + Quoted(text) + ": " + e.status().message());
        continue;
      }
      e->line = LineOf(*node);
      stage->expectations.push_back(std::move(*e));
    }
    for (auto& [text, node] :
         StringList(t, "expect_sql", owner, "\"SELECT * FROM x WHERE amount < 0\"")) {
      if (text.find_first_not_of(" \t\r\n") == std::string::npos) {
        Error(LineOf(*node), owner +
                                 ": expect_sql is empty; write a query returning the rows that "
                                 "violate the expectation (none: it holds)");
        continue;
      }
      Expectation e;
      e.line = TextStartLine(*node, &e.sql_column);
      e.text = Substitute(text, e.line, stage->params, owner);
      stage->expectations.push_back(std::move(e));
    }
    if (const toml::node* severity = t.get("severity")) {
      std::optional<std::string> s = ExpectString(*severity, owner, "severity", "\"warn\"");
      if (s && (*s == "error" || *s == "warn")) {
        stage->severity = *s == "warn" ? Severity::kWarn : Severity::kError;
      } else if (s) {
        Error(LineOf(*severity), owner + ": unknown severity " + Quoted(*s) +
                                     DidYouMeanSuffix(*s, {"error", "warn"}) +
                                     "; use \"error\" (a failed expectation fails the stage) or "
                                     "\"warn\" (it is reported and the run goes on)");
      }
    }
  }

  void ParseOutput(std::string name, int line, const toml::table& t) {
    OutputSpec output;
    output.name = name;
    output.line = line;
    const std::string owner = "output " + Quoted(name);
    CheckKeys(t, owner, {"from", "path", "format", "options", "partition_by"});
    if (const toml::node* pb = t.get("partition_by")) ParsePartitionBy(*pb, owner, &output);
    const toml::node* from = t.get("from");
    const toml::node* path = t.get("path");
    if (from == nullptr) {
      Error(line, owner + " needs from = \"<stage or source>\" (the table it writes)");
    }
    if (path == nullptr) {
      Error(line, owner + " needs path = \"out/" + name + ".parquet\" (where it is written)");
    }
    if (from == nullptr || path == nullptr) return;
    std::optional<std::string> f = ExpectString(*from, owner, "from", "\"daily\"");
    std::optional<std::string> p =
        ExpectString(*path, owner, "path", "\"out/" + name + ".parquet\"");
    if (!f || !p) return;
    output.from = {*f, LineOf(*from)};
    const bool partitioned = !output.partition_by.empty();
    if (p->empty() || HasGlob(*p) || (p->ends_with("/") && !partitioned)) {
      Error(LineOf(*path),
            owner + ": path " + Quoted(*p) +
                (partitioned ? " must name one folder (e.g. path = \"out/" + name + "/\")"
                             : " must name one file (e.g. path = \"out/" + name + ".parquet\")"));
      return;
    }
    output.location = ResolveLocation(*p, LineOf(*path), owner, "path");
    while (partitioned && output.location.resolved.size() > 1 &&
           output.location.resolved.ends_with("/")) {
      output.location.resolved.pop_back();  // the folder itself: its temporary sits beside it
    }
    if (partitioned && output.location.is_url) {
      Error(output.partition_line,
            owner +
                ": partition_by is supported for local outputs only (a folder is replaced "
                "as a whole there); write to a local path, or drop partition_by");
      return;
    }
    std::optional<DataFormat> df = OutputFormat(t, owner, *p, LineOf(*path), partitioned);
    if (!df) return;
    output.format = *df;
    std::vector<NamedValue> options;
    if (const toml::node* o = t.get("options")) {
      options = ParseValueTable(*o, owner, "options", "{ delimiter = \";\" }");
    }
    output.copy_options = CopyOptions(owner, output.format, options);
    if (partitioned) {
      std::string cols;
      for (const std::string& c : output.partition_by) {
        cols += (cols.empty() ? "" : ", ") + QuoteIdentifier(c);
      }
      output.copy_options += ", PARTITION_BY (" + cols + ")";
    }
    spec_.outputs.push_back(std::move(output));
  }

  // An output's format: `format = ...`, else the path's extension (a partitioned output's folder:
  // Parquet when it has none). Empty after reporting the problem.
  std::optional<DataFormat> OutputFormat(const toml::table& t, const std::string& owner,
                                         const std::string& p, int path_line, bool partitioned) {
    std::optional<DataFormat> df;
    int format_line = path_line;
    if (const toml::node* format = t.get("format")) {
      std::optional<std::string> fs_ = ExpectString(*format, owner, "format", "\"parquet\"");
      if (!fs_) return std::nullopt;
      df = FormatFromName(*fs_);
      format_line = LineOf(*format);
      if (!df) {
        Error(format_line, owner + ": unknown output format " + Quoted(*fs_) +
                               DidYouMeanSuffix(*fs_, {"parquet", "csv", "json"}) +
                               "; use \"parquet\", \"csv\" or \"json\"");
        return std::nullopt;
      }
    } else if (partitioned) {
      df = FormatFromPath(p);
      if (!df) df = DataFormat::kParquet;  // a folder: Parquet unless named
    } else {
      df = FormatFromPath(p);
      if (!df) {
        Error(format_line, owner + ": cannot tell the format of " + Quoted(p) +
                               " from its extension; end it in .parquet, .csv or .json, or add "
                               "format = \"parquet\", \"csv\" or \"json\"");
        return std::nullopt;
      }
    }
    return df;
  }

  // partition_by = ["day", "region"]: column names, at least one, each once.
  void ParsePartitionBy(const toml::node& node, const std::string& owner, OutputSpec* output) {
    output->partition_line = LineOf(node);
    const toml::array* array = node.as_array();
    if (array == nullptr || array->empty()) {
      Error(LineOf(node), owner +
                              ": partition_by must be a non-empty array of column names "
                              "(e.g. partition_by = [\"day\"])");
      return;
    }
    for (const toml::node& c : *array) {
      const auto* s = c.as_string();
      if (s == nullptr || s->get().empty()) {
        Error(LineOf(c), owner + ": partition_by must list column names as strings, not " +
                             std::string(TypeNameWithArticle(c.type())));
        continue;
      }
      if (std::find(output->partition_by.begin(), output->partition_by.end(), s->get()) !=
          output->partition_by.end()) {
        Error(LineOf(c), owner + ": partition_by names " + Quoted(s->get()) + " twice");
        continue;
      }
      output->partition_by.push_back(s->get());
    }
  }

  struct AllowedOption {
    std::string name;
    SpecValue::Type type;
  };

  // The COPY options of an output: the format's defaults, then the user's options, each checked
  // against what DuckDB's writer of that format takes.
  std::string CopyOptions(const std::string& owner, DataFormat format,
                          const std::vector<NamedValue>& options) {
    std::map<std::string, std::string> copy;  // DuckDB option -> literal
    const std::vector<AllowedOption> allowed = AllowedCopyOptions(format, &copy);
    std::vector<std::string> names;
    for (const AllowedOption& a : allowed) names.push_back(a.name);
    for (const NamedValue& v : options) {
      if (!CheckCopyOption(owner, format, v, allowed, names)) continue;
      std::string key = v.name == "null" ? "NULLSTR" : v.name;
      for (char& c : key) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      copy[key] = v.value.SqlLiteral();
    }
    std::string out = "FORMAT " + std::string(DataFormatName(format));
    for (const auto& [k, v] : copy) out += ", " + k + " " + v;
    return out;
  }

  // The options DuckDB's writer of `format` takes (that respawn lets through), and into `copy`
  // the defaults respawn sets for it.
  static std::vector<AllowedOption> AllowedCopyOptions(DataFormat format,
                                                       std::map<std::string, std::string>* copy) {
    std::vector<AllowedOption> allowed;
    switch (format) {
      case DataFormat::kCsv:
        *copy = {{"HEADER", "true"}};
        allowed = {
            {"delimiter", SpecValue::Type::kString}, {"header", SpecValue::Type::kBool},
            {"quote", SpecValue::Type::kString},     {"escape", SpecValue::Type::kString},
            {"null", SpecValue::Type::kString},      {"compression", SpecValue::Type::kString}};
        break;
      case DataFormat::kParquet:
        *copy = {{"COMPRESSION", "zstd"}};
        allowed = {{"compression", SpecValue::Type::kString},
                   {"row_group_size", SpecValue::Type::kInteger}};
        break;
      case DataFormat::kJson:
        allowed = {{"array", SpecValue::Type::kBool}, {"compression", SpecValue::Type::kString}};
        break;
    }
    return allowed;
  }

  // Whether output option `v` is one `format` takes, of the right type and value; if not, says
  // why and returns false.
  bool CheckCopyOption(const std::string& owner, DataFormat format, const NamedValue& v,
                       const std::vector<AllowedOption>& allowed,
                       const std::vector<std::string>& names) {
    auto it = std::find_if(allowed.begin(), allowed.end(),
                           [&](const AllowedOption& a) { return a.name == v.name; });
    const std::string fmt(DataFormatName(format));
    if (it == allowed.end()) {
      Error(v.line, owner + ": " + fmt + " outputs take no option " + Quoted(v.name) +
                        DidYouMeanSuffix(v.name, names) + "; options are " + JoinNames(names));
      return false;
    }
    if (v.value.type != it->type) {
      Error(v.line, owner + ": options." + v.name + " must be a " +
                        (it->type == SpecValue::Type::kBool      ? "boolean"
                         : it->type == SpecValue::Type::kInteger ? "whole number"
                                                                 : "string"));
      return false;
    }
    if (v.name == "row_group_size" && std::strtoll(v.value.text.c_str(), nullptr, 10) < 1) {
      Error(v.line, owner + ": options.row_group_size must be at least 1");
      return false;
    }
    if (v.name == "compression" && format == DataFormat::kParquet) {
      const std::vector<std::string> codecs = {"zstd", "snappy", "gzip",
                                               "lz4",  "brotli", "uncompressed"};
      if (std::find(codecs.begin(), codecs.end(), Lower(v.value.text)) == codecs.end()) {
        Error(v.line, owner + ": options.compression " + Quoted(v.value.text) +
                          " is not a Parquet codec" + DidYouMeanSuffix(v.value.text, codecs) +
                          "; use one of " + JoinNames(codecs));
        return false;
      }
    }
    return true;
  }

  // Sources, stages and outputs share one case-insensitive namespace.
  void CheckNames() {
    struct Named {
      std::string_view kind;
      std::string name;
      int line;
    };
    std::vector<Named> all;
    for (const SourceSpec& s : spec_.sources) all.push_back({"source", s.name, s.line});
    for (const StageSpec& s : spec_.stages) all.push_back({"stage", s.name, s.line});
    for (const OutputSpec& o : spec_.outputs) all.push_back({"output", o.name, o.line});
    std::stable_sort(all.begin(), all.end(),
                     [](const Named& a, const Named& b) { return a.line < b.line; });
    std::map<std::string, const Named*> seen;
    for (const Named& n : all) {
      auto [it, inserted] = seen.emplace(Lower(n.name), &n);
      if (inserted) continue;
      const Named& first = *it->second;
      Error(n.line, std::string(n.kind) + " " + Quoted(n.name) + " has the same name as " +
                        std::string(first.kind) + " " + Quoted(first.name) + " (line " +
                        std::to_string(first.line) +
                        "); sources, stages and outputs share one namespace, ignoring case: "
                        "rename one");
    }
    std::map<std::string, const OutputSpec*> written;
    for (const OutputSpec& o : spec_.outputs) {
      auto [it, inserted] = written.emplace(o.location.resolved, &o);
      if (inserted) continue;
      Error(o.location.line, "output " + Quoted(o.name) + " writes " + Quoted(o.location.written) +
                                 ", which output " + Quoted(it->second->name) +
                                 " also writes; give each output its own path");
    }
  }

  void CheckReferences() {
    std::vector<std::string> tables;
    for (const SourceSpec& s : spec_.sources) tables.push_back(s.name);
    for (const StageSpec& s : spec_.stages) tables.push_back(s.name);
    auto defined = [&](std::string_view name) {
      return std::any_of(tables.begin(), tables.end(),
                         [&](const std::string& t) { return EqualsIgnoreCase(t, name); });
    };
    for (const StageSpec& stage : spec_.stages) {
      for (const NameRef& dep : stage.depends_on) {
        if (defined(dep.name)) continue;
        Error(dep.line, "stage " + Quoted(stage.name) + " depends_on " + Quoted(dep.name) +
                            ", which no source or stage defines" +
                            DidYouMeanSuffix(dep.name, tables));
      }
    }
    for (const OutputSpec& output : spec_.outputs) {
      if (defined(output.from.name)) continue;
      Error(output.from.line, "output " + Quoted(output.name) + " reads from " +
                                  Quoted(output.from.name) + ", which no stage or source defines" +
                                  DidYouMeanSuffix(output.from.name, tables));
    }
  }

  std::string_view text_;
  SpecOverrides overrides_;
  std::map<std::string, Override> overrides_by_name_;
  std::set<std::string> all_param_names_;
  const toml::node* profile_store_ = nullptr;  // the chosen profile's store, if any
  std::vector<std::string_view> lines_;
  PipelineSpec spec_;
  std::vector<Diagnostic> diagnostics_;
};

template <typename T>
const T* FindByName(const std::vector<T>& items, std::string_view name) {
  for (const T& item : items) {
    if (EqualsIgnoreCase(item.name, name)) return &item;
  }
  return nullptr;
}

}  // namespace

std::string_view DataFormatName(DataFormat format) {
  switch (format) {
    case DataFormat::kCsv:
      return "csv";
    case DataFormat::kParquet:
      return "parquet";
    case DataFormat::kJson:
      return "json";
  }
  return "unknown";
}

std::string SpecValue::SqlLiteral() const {
  auto quoted = [](std::string_view s) {
    std::string out = "'";
    for (char c : s) {
      if (c == '\'') out += '\'';
      out += c;
    }
    return out + "'";
  };
  switch (type) {
    case Type::kBool:
    case Type::kInteger:
      return text;
    case Type::kFloat:
      if (text == "nan" || text == "inf" || text == "-inf") return quoted(text) + "::DOUBLE";
      return text;
    case Type::kString:
      return quoted(text);
    case Type::kDate:
      return "DATE " + quoted(text);
    case Type::kTime:
      return "TIME " + quoted(text);
    case Type::kDateTime: {
      size_t t = text.find_first_of("Tt ");
      bool zoned = t != std::string::npos && text.find_first_of("Zz+-", t) != std::string::npos;
      return (zoned ? "TIMESTAMPTZ " : "TIMESTAMP ") + quoted(text);
    }
  }
  return quoted(text);
}

const SourceSpec* PipelineSpec::FindSource(std::string_view name) const {
  return FindByName(sources, name);
}
const StageSpec* PipelineSpec::FindStage(std::string_view name) const {
  return FindByName(stages, name);
}
const OutputSpec* PipelineSpec::FindOutput(std::string_view name) const {
  return FindByName(outputs, name);
}

std::string OutputSpec::ContentId(std::string_view fingerprint) const {
  std::string id = std::string(fingerprint) + "/" + std::string(DataFormatName(format));
  const std::string defaults = format == DataFormat::kCsv       ? "FORMAT csv, HEADER true"
                               : format == DataFormat::kParquet ? "FORMAT parquet, COMPRESSION zstd"
                                                                : "FORMAT json";
  // Outputs written before options existed keep their id (and are not rewritten for it).
  if (copy_options != defaults) id += "/" + HexU64(Xxh3(copy_options));
  return id;
}

std::string PipelineSpec::Where(int line) const {
  return display_name + ":" + std::to_string(line);
}

Result<PipelineSpec> ParsePipelineFile(const std::string& path) {
  return ParsePipelineFile(path, SpecOverrides());
}

Result<PipelineSpec> ParsePipelineFile(const std::string& path, const SpecOverrides& overrides) {
  std::error_code ec;
  fs::path absolute = fs::absolute(path, ec);
  if (ec) return InvalidArgument("pipeline file " + Quoted(path) + ": " + ec.message());
  std::ifstream in(absolute, std::ios::binary);
  if (!in) {
    if (!fs::exists(absolute, ec)) {
      return NotFound("pipeline file " + Quoted(path) + " does not exist (looked for " +
                      absolute.string() + ")");
    }
    return PermissionDenied("pipeline file " + Quoted(path) +
                            " cannot be read; check its "
                            "permissions");
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return Unavailable("reading pipeline file " + Quoted(path) + " failed");
  ASSIGN_OR_RETURN(
      PipelineSpec spec,
      ParsePipelineString(text.str(), path, absolute.parent_path().string(), overrides));
  fs::path canonical = fs::weakly_canonical(absolute, ec);
  spec.path = (ec ? absolute.lexically_normal() : canonical).string();
  return spec;
}

Result<PipelineSpec> ParsePipelineString(std::string_view text, std::string_view display_name,
                                         std::string_view base_dir) {
  return ParsePipelineString(text, display_name, base_dir, SpecOverrides());
}

Result<PipelineSpec> ParsePipelineString(std::string_view text, std::string_view display_name,
                                         std::string_view base_dir,
                                         const SpecOverrides& overrides) {
  std::error_code ec;
  fs::path base = base_dir.empty() ? fs::current_path(ec) : fs::absolute(fs::path(base_dir), ec);
  if (ec) {
    return InvalidArgument("cannot resolve directory " + Quoted(base_dir) + ": " + ec.message());
  }
  SpecParser parser(text, std::string(display_name), base.lexically_normal().string(), overrides);
  return parser.Parse();
}

std::string EffectiveStoreUrl(const PipelineSpec& spec, std::string_view flag_override) {
  if (!flag_override.empty()) return std::string(flag_override);
  if (const char* env = std::getenv("RESPAWN_STORE"); env != nullptr && *env != '\0') return env;
  if (!spec.store.empty()) return spec.store;
  return (fs::path(spec.base_dir) / ".respawn").string();
}

std::string EffectiveCoordinatorUrl(const PipelineSpec& spec) {
  if (const char* env = std::getenv("RESPAWN_COORDINATOR"); env != nullptr && *env != '\0') {
    return env;
  }
  return spec.coordinator;
}

bool IsSqlIdentifier(std::string_view name) {
  if (name.empty()) return false;
  auto c0 = static_cast<unsigned char>(name[0]);
  if (!std::isalpha(c0) && c0 != '_') return false;
  for (char c : name) {
    auto u = static_cast<unsigned char>(c);
    if (!std::isalnum(u) && u != '_') return false;
  }
  return true;
}

std::optional<std::string> DidYouMean(std::string_view name,
                                      const std::vector<std::string>& candidates) {
  const std::string lower = Lower(name);
  std::optional<std::string> best;
  size_t best_score = SIZE_MAX;
  for (const std::string& candidate : candidates) {
    const std::string c = Lower(candidate);
    if (candidate == name) continue;
    size_t score = SIZE_MAX;
    size_t d = OsaDistance(lower, c);
    if (d <= 2 && (d < lower.size() || c == lower)) {
      score = d;
    } else if (std::min(lower.size(), c.size()) >= 3 &&
               (c.starts_with(lower) || lower.starts_with(c))) {
      score = 3;
    }
    if (score < best_score) {
      best_score = score;
      best = candidate;
    }
  }
  return best;
}

std::string DidYouMeanSuffix(std::string_view name, const std::vector<std::string>& candidates) {
  std::optional<std::string> m = DidYouMean(name, candidates);
  return m ? " (did you mean " + Quoted(*m) + "?)" : "";
}

int LineInSql(std::string_view sql, int sql_line, size_t offset) {
  offset = std::min(offset, sql.size());
  return sql_line + static_cast<int>(std::count(sql.begin(), sql.begin() + offset, '\n'));
}

Result<int64_t> ParseDuration(std::string_view text) {
  auto bad = [&] {
    return InvalidArgument("duration \"" + std::string(text) +
                           "\" is not valid: write a number and a unit (s, m, h, d), e.g. "
                           "\"90s\", \"30m\", \"1h30m\", \"2d\"");
  };
  if (text.empty()) return bad();
  int64_t total = 0;
  size_t i = 0;
  while (i < text.size()) {
    size_t start = i;
    int64_t n = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      n = n * 10 + (text[i] - '0');
      if (n > 1'000'000'000) return bad();
      ++i;
    }
    if (i == start || i == text.size()) return bad();
    int64_t unit = 0;
    switch (text[i]) {
      case 's':
        unit = 1000;
        break;
      case 'm':
        unit = 60'000;
        break;
      case 'h':
        unit = 3'600'000;
        break;
      case 'd':
        unit = 86'400'000;
        break;
      default:
        return bad();
    }
    total += n * unit;
    ++i;
  }
  return total;
}

}  // namespace respawn

#include "pipeline/fingerprint.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <system_error>

#include "storage/store.h"
#include "util/glob.h"
#include "util/hash.h"

namespace respawn {
namespace {

namespace fs = std::filesystem;

// Builds an unambiguous byte string from fields (each length-prefixed) to hash.
class Canonical {
 public:
  Canonical& Add(std::string_view field) {
    AddU64(field.size());
    buffer_.append(field);
    return *this;
  }
  Canonical& AddU64(uint64_t v) {
    for (int i = 0; i < 8; ++i) buffer_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    return *this;
  }
  Fingerprint Hash() const { return Fingerprint{Xxh3(buffer_)}; }

 private:
  std::string buffer_;
};

std::string_view KindName(FingerprintKind kind) {
  switch (kind) {
    case FingerprintKind::kStage:
      return "stage";
    case FingerprintKind::kSqlSource:
      return "sql-source";
    case FingerprintKind::kFileSource:
      return "file-source";
  }
  return "unknown";
}

std::string_view KindPhrase(FingerprintKind kind) {
  switch (kind) {
    case FingerprintKind::kStage:
      return "a stage";
    case FingerprintKind::kSqlSource:
      return "a generated source";
    case FingerprintKind::kFileSource:
      return "a file source";
  }
  return "unknown";
}

// Engine versions go on one line of a serialized record.
std::string OneLine(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  }
  return out;
}

Fingerprint ValueFingerprint(const SpecValue& v) {
  return Canonical().AddU64(static_cast<uint64_t>(v.type)).Add(v.text).Hash();
}

std::vector<NamedFingerprint> ParamFingerprints(const std::vector<NamedValue>& params) {
  std::vector<NamedFingerprint> out;
  for (const NamedValue& p : params) out.push_back({p.name, ValueFingerprint(p.value)});
  std::sort(out.begin(), out.end(),
            [](const NamedFingerprint& a, const NamedFingerprint& b) { return a.name < b.name; });
  return out;
}

Fingerprint Total(const FingerprintComponents& c) {
  Canonical k;
  k.Add("respawn-fingerprint").AddU64(c.format_version).Add(KindName(c.kind)).Add(c.engine_version);
  auto add_named = [](Canonical& k, const std::vector<NamedFingerprint>& list) {
    k.AddU64(list.size());
    for (const NamedFingerprint& n : list) k.Add(n.name).AddU64(n.fingerprint.value);
  };
  switch (c.kind) {
    case FingerprintKind::kStage:
      k.AddU64(c.sql.value);
      add_named(k, c.params);
      add_named(k, c.inputs);
      if (!c.files_read.empty()) add_named(k.Add("files-read"), c.files_read);
      break;
    case FingerprintKind::kSqlSource:
      k.AddU64(c.sql.value);
      add_named(k, c.params);
      if (!c.files_read.empty()) add_named(k.Add("files-read"), c.files_read);
      break;
    case FingerprintKind::kFileSource:
      k.AddU64(c.files.value).AddU64(c.file_count).AddU64(c.total_bytes);
      k.AddU64(c.content_hashed ? 1 : 0).AddU64(c.reader.value);
      break;
  }
  return k.Hash();
}

std::string HumanBytes(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  size_t unit = 0;
  while (v >= 1024 && unit + 1 < std::size(kUnits)) {
    v /= 1024;
    ++unit;
  }
  char buf[32];
  if (unit == 0) {
    std::snprintf(buf, sizeof(buf), "%llu B", static_cast<unsigned long long>(bytes));
  } else {
    std::snprintf(buf, sizeof(buf), "%.1f %s", v, kUnits[unit]);
  }
  return buf;
}

std::string FileSummary(uint64_t count, uint64_t bytes) {
  return std::to_string(count) + (count == 1 ? " file, " : " files, ") + HumanBytes(bytes);
}

// Reasons for named parts: "changed <what> x", "new <what> x", "removed <what> x".
void CompareNamed(const std::vector<NamedFingerprint>& before,
                  const std::vector<NamedFingerprint>& now, std::string_view what,
                  std::string_view removed_verb, std::vector<std::string>* reasons) {
  std::map<std::string, Fingerprint> old_by_name;
  for (const NamedFingerprint& n : before) old_by_name[n.name] = n.fingerprint;
  std::map<std::string, Fingerprint> new_by_name;
  for (const NamedFingerprint& n : now) new_by_name[n.name] = n.fingerprint;
  for (const auto& [name, fp] : new_by_name) {
    auto it = old_by_name.find(name);
    if (it == old_by_name.end()) {
      reasons->push_back("new " + std::string(what) + " " + name);
    } else if (!(it->second == fp)) {
      reasons->push_back("changed " + std::string(what) + " " + name);
    }
  }
  for (const auto& [name, fp] : old_by_name) {
    if (!new_by_name.count(name)) {
      reasons->push_back(std::string(removed_verb) + " " + std::string(what) + " " + name);
    }
  }
}

bool AllContentHashed(const std::vector<SourceFile>& files) {
  return !files.empty() && std::all_of(files.begin(), files.end(),
                                       [](const SourceFile& f) { return f.has_content_hash; });
}

Status HashContents(std::vector<SourceFile>* files, uint64_t limit,
                    const std::function<Result<uint64_t>(const SourceFile&)>& hash) {
  uint64_t total = 0;
  for (const SourceFile& f : *files) total += f.size;
  if (total > limit) return Status::OK();
  for (SourceFile& f : *files) {
    if (f.has_content_hash) continue;
    ASSIGN_OR_RETURN(f.content_hash, hash(f));
    f.has_content_hash = true;
  }
  return Status::OK();
}

bool IsOperatorChar(char c) { return c != '\0' && std::strchr("+-*/<>=~!@#%^&|`?:", c) != nullptr; }
bool IsIdentStart(char c) {
  auto u = static_cast<unsigned char>(c);
  return std::isalpha(u) || c == '_' || u >= 0x80;
}
bool IsIdentChar(char c) {
  auto u = static_cast<unsigned char>(c);
  return std::isalnum(u) || c == '_' || c == '$' || u >= 0x80;
}

// Index just past the quoted text opening at `i` (quote char s[i]); a doubled quote is an
// escaped quote, and with `backslash` so is \<quote>. Unterminated: s.size().
size_t ScanQuoted(std::string_view s, size_t i, bool backslash) {
  const char q = s[i];
  size_t j = i + 1;
  while (j < s.size()) {
    if (backslash && s[j] == '\\') {
      j += 2;
    } else if (s[j] == q) {
      if (j + 1 < s.size() && s[j + 1] == q) {
        j += 2;
      } else {
        return j + 1;
      }
    } else {
      ++j;
    }
  }
  return s.size();
}

}  // namespace

std::string Fingerprint::Hex() const { return HexU64(value); }
std::string Fingerprint::Short() const { return Hex().substr(0, 8); }

Result<Fingerprint> Fingerprint::FromHex(std::string_view hex) {
  if (hex.size() != 16) {
    return InvalidArgument("fingerprint \"" + std::string(hex) + "\" must be 16 hex digits");
  }
  uint64_t v = 0;
  for (char c : hex) {
    int d;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      d = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      d = c - 'A' + 10;
    } else {
      return InvalidArgument("fingerprint \"" + std::string(hex) + "\" must be 16 hex digits");
    }
    v = (v << 4) | static_cast<uint64_t>(d);
  }
  return Fingerprint{v};
}

std::string FingerprintComponents::Serialize() const {
  std::string out = "respawn-fingerprint " + std::to_string(format_version) + "\n";
  out += "kind " + std::string(KindName(kind)) + "\n";
  out += "engine " + OneLine(engine_version) + "\n";
  if (kind != FingerprintKind::kFileSource) {
    out += "sql " + sql.Hex() + "\n";
    if (sql_template.value != 0) out += "sql_template " + sql_template.Hex() + "\n";
    for (const NamedFingerprint& p : params)
      out += "param " + p.name + " " + p.fingerprint.Hex() + "\n";
    for (const NamedFingerprint& i : inputs)
      out += "input " + i.name + " " + i.fingerprint.Hex() + "\n";
    // The hex first: a path may hold spaces.
    for (const NamedFingerprint& f : files_read)
      out += "file_read " + f.fingerprint.Hex() + " " + OneLine(f.name) + "\n";
  } else {
    out += "files " + files.Hex() + "\n";
    out += "file_count " + std::to_string(file_count) + "\n";
    out += "total_bytes " + std::to_string(total_bytes) + "\n";
    out += std::string("content_hashed ") + (content_hashed ? "1" : "0") + "\n";
    out += "reader " + reader.Hex() + "\n";
  }
  out += "total " + total.Hex() + "\n";
  return out;
}

namespace {

Status MalformedFingerprint(std::string_view why) {
  return DataLoss("malformed fingerprint record: " + std::string(why));
}

// One "key value" line of a serialized fingerprint record.
struct FingerprintLine {
  std::string_view line;
  std::string_view key;
  std::string_view value;

  Status Bad() const { return MalformedFingerprint("\"" + std::string(line) + "\""); }
  Status Hex(Fingerprint* out) const {
    Result<Fingerprint> f = Fingerprint::FromHex(value);
    if (!f.ok()) return Bad();
    *out = *f;
    return Status::OK();
  }
  Status Number(uint64_t* out) const {
    const char* end = value.data() + value.size();
    auto [ptr, ec] = std::from_chars(value.data(), end, *out);
    if (value.empty() || ec != std::errc() || ptr != end) return Bad();
    return Status::OK();
  }
  // "<name> <hex>" (params, inputs) or, with `hex_first`, "<hex> <name>" (a path may hold
  // spaces).
  Status Named(std::vector<NamedFingerprint>* out, bool hex_first = false) const {
    const size_t sp = value.find(' ');
    if (sp == std::string_view::npos) return Bad();
    std::string_view name = hex_first ? value.substr(sp + 1) : value.substr(0, sp);
    Result<Fingerprint> f =
        Fingerprint::FromHex(hex_first ? value.substr(0, sp) : value.substr(sp + 1));
    if (!f.ok()) return Bad();
    out->push_back({std::string(name), *f});
    return Status::OK();
  }
};

Status ParseFingerprintKind(const FingerprintLine& l, FingerprintKind* kind) {
  if (l.value == "stage") {
    *kind = FingerprintKind::kStage;
  } else if (l.value == "sql-source") {
    *kind = FingerprintKind::kSqlSource;
  } else if (l.value == "file-source") {
    *kind = FingerprintKind::kFileSource;
  } else {
    return MalformedFingerprint("unknown kind \"" + std::string(l.value) + "\"");
  }
  return Status::OK();
}

// Applies one line after the header to `c`; `*known` is false for a key this version does not
// write.
Status ApplyFingerprintLine(const FingerprintLine& l, FingerprintComponents* c, bool* known) {
  *known = true;
  if (l.key == "kind") return ParseFingerprintKind(l, &c->kind);
  if (l.key == "engine") {
    c->engine_version = std::string(l.value);
    return Status::OK();
  }
  if (l.key == "content_hashed") {
    c->content_hashed = l.value == "1";
    return Status::OK();
  }
  if (l.key == "param") return l.Named(&c->params);
  if (l.key == "input") return l.Named(&c->inputs);
  if (l.key == "file_read") return l.Named(&c->files_read, /*hex_first=*/true);
  if (l.key == "file_count") return l.Number(&c->file_count);
  if (l.key == "total_bytes") return l.Number(&c->total_bytes);
  const std::pair<std::string_view, Fingerprint*> hashes[] = {{"sql", &c->sql},
                                                              {"sql_template", &c->sql_template},
                                                              {"files", &c->files},
                                                              {"reader", &c->reader},
                                                              {"total", &c->total}};
  for (const auto& [key, out] : hashes) {
    if (l.key == key) return l.Hex(out);
  }
  *known = false;
  return Status::OK();
}

}  // namespace

Result<FingerprintComponents> FingerprintComponents::Parse(std::string_view text) {
  FingerprintComponents c;
  bool have_header = false, have_total = false;
  for (size_t pos = 0; pos < text.size();) {
    const size_t nl = std::min(text.find('\n', pos), text.size());
    FingerprintLine l;
    l.line = text.substr(pos, nl - pos);
    pos = nl + 1;
    if (l.line.empty()) continue;
    const size_t sp = l.line.find(' ');
    l.key = l.line.substr(0, sp);
    l.value = sp == std::string_view::npos ? "" : l.line.substr(sp + 1);
    if (!have_header) {
      uint64_t version = 0;
      if (l.key != "respawn-fingerprint") {
        return MalformedFingerprint("missing the respawn-fingerprint header");
      }
      RETURN_IF_ERROR(l.Number(&version));
      c.format_version = static_cast<uint32_t>(version);
      have_header = true;
      continue;
    }
    bool known = false;
    RETURN_IF_ERROR(ApplyFingerprintLine(l, &c, &known));
    have_total = have_total || l.key == "total";
    if (!known && c.format_version == kFingerprintFormatVersion) {
      return MalformedFingerprint("unknown line \"" + std::string(l.line) + "\"");
    }
  }
  if (!have_header) return MalformedFingerprint("empty");
  if (!have_total) return MalformedFingerprint("missing the total");
  // A record from another format version cannot be recomputed here; its total stands.
  if (c.format_version == kFingerprintFormatVersion && !(Total(c) == c.total)) {
    return DataLoss("fingerprint record does not verify: its parts hash to " + Total(c).Hex() +
                    ", not the recorded " + c.total.Hex());
  }
  return c;
}

std::vector<std::string> ExplainChange(const FingerprintComponents& before,
                                       const FingerprintComponents& now) {
  std::vector<std::string> reasons;
  if (before.total == now.total) return reasons;
  if (before.format_version != now.format_version) {
    reasons.push_back("fingerprint format changed (" + std::to_string(before.format_version) +
                      " -> " + std::to_string(now.format_version) + ")");
    return reasons;
  }
  if (before.kind != now.kind) {
    reasons.push_back("changed from " + std::string(KindPhrase(before.kind)) + " to " +
                      std::string(KindPhrase(now.kind)));
    return reasons;
  }
  if (before.engine_version != now.engine_version) {
    reasons.push_back("engine version changed (" + before.engine_version + " -> " +
                      now.engine_version + ")");
  }
  // The SQL hashed is the one with params substituted: when only params changed, the text as
  // written did not, and the params explain the change.
  const bool only_params = before.sql_template.value != 0 &&
                           before.sql_template == now.sql_template &&
                           !(before.params == now.params);
  if (!(before.sql == now.sql) && !only_params) reasons.push_back("changed SQL");
  CompareNamed(before.params, now.params, "param", "removed", &reasons);
  CompareNamed(before.inputs, now.inputs, "input", "dropped", &reasons);
  CompareNamed(before.files_read, now.files_read, "file", "no longer reads", &reasons);
  if (!(before.files == now.files)) {
    if (before.file_count != now.file_count || before.total_bytes != now.total_bytes) {
      reasons.push_back("changed files (" + FileSummary(before.file_count, before.total_bytes) +
                        " -> " + FileSummary(now.file_count, now.total_bytes) + ")");
    } else if (before.content_hashed && now.content_hashed) {
      reasons.push_back("changed file contents or names");
    } else {
      reasons.push_back("changed files (names, modification times or ETags)");
    }
  }
  if (!(before.reader == now.reader)) reasons.push_back("changed format or reader options");
  if (reasons.empty()) reasons.push_back("fingerprint changed");
  return reasons;
}

std::string ExplainChangeText(const FingerprintComponents& before,
                              const FingerprintComponents& now) {
  std::vector<std::string> reasons = ExplainChange(before, now);
  if (reasons.empty()) return "unchanged";
  std::string out;
  for (const std::string& r : reasons) {
    if (!out.empty()) out += ", ";
    out += r;
  }
  return out;
}

FingerprintComponents StageFingerprint(std::string_view sql, const std::vector<NamedValue>& params,
                                       std::vector<NamedFingerprint> inputs,
                                       std::string_view engine_version, std::string_view raw_sql) {
  FingerprintComponents c;
  c.kind = FingerprintKind::kStage;
  c.engine_version = OneLine(engine_version);
  c.sql = Fingerprint{Xxh3(NormalizeSql(sql))};
  if (!raw_sql.empty()) c.sql_template = Fingerprint{Xxh3(NormalizeSql(raw_sql)) | 1};
  c.params = ParamFingerprints(params);
  std::sort(inputs.begin(), inputs.end(),
            [](const NamedFingerprint& a, const NamedFingerprint& b) { return a.name < b.name; });
  c.inputs = std::move(inputs);
  c.total = Total(c);
  return c;
}

FingerprintComponents SqlSourceFingerprint(std::string_view sql,
                                           const std::vector<NamedValue>& params,
                                           std::string_view engine_version,
                                           std::string_view raw_sql) {
  FingerprintComponents c;
  c.kind = FingerprintKind::kSqlSource;
  c.engine_version = OneLine(engine_version);
  c.sql = Fingerprint{Xxh3(NormalizeSql(sql))};
  if (!raw_sql.empty()) c.sql_template = Fingerprint{Xxh3(NormalizeSql(raw_sql)) | 1};
  c.params = ParamFingerprints(params);
  c.total = Total(c);
  return c;
}

FingerprintComponents FileSourceFingerprint(const std::vector<SourceFile>& files, DataFormat format,
                                            const std::vector<NamedValue>& options,
                                            std::string_view engine_version) {
  FingerprintComponents c;
  c.kind = FingerprintKind::kFileSource;
  c.engine_version = OneLine(engine_version);
  c.content_hashed = AllContentHashed(files);
  c.files = FileListFingerprint(files);
  for (const SourceFile& f : files) c.total_bytes += f.size;
  c.file_count = files.size();
  Canonical r;
  r.Add(DataFormatName(format));
  std::vector<NamedValue> opts = options;
  std::sort(opts.begin(), opts.end(),
            [](const NamedValue& a, const NamedValue& b) { return a.name < b.name; });
  r.AddU64(opts.size());
  for (const NamedValue& o : opts) r.Add(o.name).AddU64(ValueFingerprint(o.value).value);
  c.reader = r.Hash();
  c.total = Total(c);
  return c;
}

Fingerprint FileListFingerprint(const std::vector<SourceFile>& files) {
  std::vector<const SourceFile*> sorted;
  for (const SourceFile& f : files) sorted.push_back(&f);
  std::sort(sorted.begin(), sorted.end(),
            [](const SourceFile* a, const SourceFile* b) { return a->path < b->path; });
  const bool content_hashed = AllContentHashed(files);
  Canonical k;
  k.AddU64(sorted.size()).AddU64(content_hashed ? 1 : 0);
  for (const SourceFile* f : sorted) {
    k.Add(f->path).AddU64(f->size);
    if (content_hashed) {
      k.AddU64(f->content_hash);
    } else {
      k.AddU64(static_cast<uint64_t>(f->mtime_ms)).Add(f->etag);
      k.AddU64(f->has_content_hash ? f->content_hash : 0);
    }
  }
  return k.Hash();
}

Result<std::vector<SourceFile>> ListLocalSourceFiles(const std::string& pattern,
                                                     uint64_t content_hash_limit) {
  ASSIGN_OR_RETURN(SourceListing listing, ListLocalSource(pattern, content_hash_limit));
  return std::move(listing.files);
}

namespace {

// Size, times and identity of the local file `full` into `f`.
Status StatSourceFile(const std::string& full, SourceFile* f) {
  struct stat st;
  if (::stat(full.c_str(), &st) != 0) {
    return NotFound("cannot stat " + full + ": " + std::strerror(errno));
  }
  f->size = static_cast<uint64_t>(st.st_size);
  f->mtime_ms = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1000000;
  f->device = static_cast<uint64_t>(st.st_dev);
  f->inode = static_cast<uint64_t>(st.st_ino);
  f->mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  f->ctime_ns = static_cast<int64_t>(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec;
  return Status::OK();
}

}  // namespace

Result<SourceListing> ListLocalSource(const std::string& pattern, uint64_t content_hash_limit) {
  std::vector<SourceFile> files;
  auto stat_file = StatSourceFile;
  std::string base;
  if (!HasGlob(pattern)) {
    std::error_code ec;
    fs::file_status st = fs::status(pattern, ec);
    if (ec || !fs::exists(st)) return NotFound("file " + pattern + " does not exist");
    if (fs::is_directory(st)) {
      return InvalidArgument(pattern + " is a directory; name the files in it (e.g. " + pattern +
                             "/*.csv)");
    }
    fs::path p(pattern);
    base = p.parent_path().string() + "/";
    SourceFile f;
    f.path = p.filename().string();
    RETURN_IF_ERROR(stat_file(pattern, &f));
    files.push_back(std::move(f));
  } else {
    auto [prefix, rest] = SplitGlob(pattern);
    base = prefix;
    fs::path dir = prefix.empty() ? fs::path(".") : fs::path(prefix);
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
      return NotFound("directory " + dir.string() + " does not exist (from " + pattern + ")");
    }
    const bool recursive = rest.find("**") != std::string::npos;
    const int max_depth = static_cast<int>(std::count(rest.begin(), rest.end(), '/'));
    fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec);
    if (ec) return Unavailable("cannot list " + dir.string() + ": " + ec.message());
    for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (ec) return Unavailable("cannot list " + dir.string() + ": " + ec.message());
      const fs::directory_entry& entry = *it;
      std::error_code type_ec;
      if (entry.is_directory(type_ec)) {
        if (!recursive && it.depth() >= max_depth) it.disable_recursion_pending();
        continue;
      }
      if (!entry.is_regular_file(type_ec)) continue;
      std::string rel = entry.path().lexically_relative(dir).generic_string();
      if (!GlobMatch(rest, rel)) continue;
      SourceFile f;
      f.path = rel;
      RETURN_IF_ERROR(stat_file(entry.path().string(), &f));
      files.push_back(std::move(f));
    }
    if (files.empty()) return NotFound(pattern + " matches no files");
    std::sort(files.begin(), files.end(),
              [](const SourceFile& a, const SourceFile& b) { return a.path < b.path; });
  }
  RETURN_IF_ERROR(HashContents(&files, content_hash_limit,
                               [&](const SourceFile& f) { return Xxh3File(base + f.path); }));
  return SourceListing{std::move(base), std::move(files)};
}

Result<std::vector<SourceFile>> ListStoreSourceFiles(Store& store, std::string_view key_pattern,
                                                     uint64_t content_hash_limit) {
  ASSIGN_OR_RETURN(SourceListing listing, ListStoreSource(store, key_pattern, content_hash_limit));
  return std::move(listing.files);
}

Result<SourceListing> ListStoreSource(Store& store, std::string_view key_pattern,
                                      uint64_t content_hash_limit) {
  std::vector<SourceFile> files;
  std::string base;
  if (!HasGlob(key_pattern)) {
    ASSIGN_OR_RETURN(ObjectInfo info, store.Stat(key_pattern));
    size_t slash = key_pattern.rfind('/');
    base = slash == std::string_view::npos ? "" : std::string(key_pattern.substr(0, slash + 1));
    SourceFile f;
    f.path = std::string(key_pattern.substr(base.size()));
    f.size = info.size;
    f.mtime_ms = info.mtime_ms;
    f.etag = info.etag;
    files.push_back(std::move(f));
  } else {
    auto [prefix, rest] = SplitGlob(key_pattern);
    base = prefix;
    ASSIGN_OR_RETURN(std::vector<ObjectInfo> objects,
                     ListAll(store, std::string(GlobLiteralPrefix(key_pattern))));
    for (const ObjectInfo& o : objects) {
      if (!o.key.starts_with(base)) continue;
      std::string rel = o.key.substr(base.size());
      if (!GlobMatch(rest, rel)) continue;
      SourceFile f;
      f.path = rel;
      f.size = o.size;
      f.mtime_ms = o.mtime_ms;
      f.etag = o.etag;
      files.push_back(std::move(f));
    }
    if (files.empty()) {
      return NotFound(store.Url() + "/" + std::string(key_pattern) + " matches no objects");
    }
    std::sort(files.begin(), files.end(),
              [](const SourceFile& a, const SourceFile& b) { return a.path < b.path; });
  }
  bool all_etags =
      std::all_of(files.begin(), files.end(), [](const SourceFile& f) { return !f.etag.empty(); });
  if (!all_etags) {
    RETURN_IF_ERROR(
        HashContents(&files, content_hash_limit, [&](const SourceFile& f) -> Result<uint64_t> {
          ASSIGN_OR_RETURN(std::string data, store.Get(base + f.path));
          return Xxh3(data);
        }));
  }
  return SourceListing{std::move(base), std::move(files)};
}

// Adds the fingerprints of the files `node`'s SQL reads by name to `c` and recomputes its total.
static Status AddFilesRead(const PipelineSpec& spec, const DagNode& node,
                           const std::function<Result<Fingerprint>(const DagFileRead&)>& file_read,
                           FingerprintComponents* c) {
  if (node.files.empty()) return Status::OK();
  if (!file_read) {
    return Internal("FingerprintPipeline: " + node.name + " reads files, but no file_read given");
  }
  for (const DagFileRead& f : node.files) {
    Result<Fingerprint> fp = file_read(f);
    if (!fp.ok()) {
      return fp.status().WithContext(spec.Where(f.line) + ": " +
                                     (node.kind == NodeKind::kStage ? "stage" : "source") + " \"" +
                                     node.name + "\" reads file " + f.written);
    }
    c->files_read.push_back({f.written, *fp});
  }
  std::sort(c->files_read.begin(), c->files_read.end(),
            [](const NamedFingerprint& a, const NamedFingerprint& b) { return a.name < b.name; });
  c->total = Total(*c);
  return Status::OK();
}

Result<std::vector<FingerprintComponents>> FingerprintPipeline(
    const PipelineSpec& spec, const Dag& dag, std::string_view engine_version,
    const std::function<Result<FingerprintComponents>(const SourceSpec&)>& file_source,
    const std::function<Result<Fingerprint>(const DagFileRead&)>& file_read) {
  std::vector<FingerprintComponents> out(dag.nodes().size());
  for (int v : dag.TopologicalOrder()) {
    const DagNode& node = dag.node(v);
    if (node.kind == NodeKind::kSource) {
      const SourceSpec& source = spec.sources[node.spec_index];
      if (source.kind == SourceKind::kSql) {
        out[v] = SqlSourceFingerprint(source.sql, source.params, engine_version, source.raw_sql);
        RETURN_IF_ERROR(AddFilesRead(spec, node, file_read, &out[v]));
      } else {
        Result<FingerprintComponents> c = file_source(source);
        if (!c.ok()) {
          return c.status().WithContext(spec.Where(source.location.line) + ": source \"" +
                                        source.name + "\"");
        }
        out[v] = std::move(c).value();
      }
      continue;
    }
    const StageSpec& stage = spec.stages[node.spec_index];
    std::vector<NamedFingerprint> inputs;
    for (const DagEdge& e : node.inputs) {
      inputs.push_back({dag.node(e.from).name, out[e.from].total});
    }
    out[v] =
        StageFingerprint(stage.sql, stage.params, std::move(inputs), engine_version, stage.raw_sql);
    RETURN_IF_ERROR(AddFilesRead(spec, node, file_read, &out[v]));
  }
  return out;
}

namespace {

// Past blanks and comments starting at `i` (`i` itself when there are none there).
size_t SkipBlankOrComment(std::string_view s, size_t i) {
  const size_t n = s.size();
  const char c = s[i];
  const char next = i + 1 < n ? s[i + 1] : '\0';
  if (std::isspace(static_cast<unsigned char>(c))) return i + 1;
  if (c == '-' && next == '-') {
    size_t nl = s.find('\n', i);
    return nl == std::string_view::npos ? n : nl + 1;
  }
  if (c != '/' || next != '*') return i;
  int depth = 0;  // nested /* */
  while (i < n) {
    if (s[i] == '/' && i + 1 < n && s[i + 1] == '*') {
      ++depth;
      i += 2;
    } else if (s[i] == '*' && i + 1 < n && s[i + 1] == '/') {
      i += 2;
      if (--depth == 0) break;
    } else {
      ++i;
    }
  }
  return i;
}

// A token starting with '$': $$...$$ or $tag$...$tag$ (tag: an identifier without '$'), a
// parameter ($1, $name), or a lone '$'.
size_t ScanDollar(std::string_view s, size_t i, SqlTokenKind* kind) {
  const size_t n = s.size();
  size_t j = i + 1;
  if (j < n && !std::isdigit(static_cast<unsigned char>(s[j]))) {
    while (j < n && IsIdentChar(s[j]) && s[j] != '$') ++j;
  }
  if (j < n && s[j] == '$') {
    std::string_view tag = s.substr(i, j - i + 1);
    size_t close = s.find(tag, j + 1);
    *kind = SqlTokenKind::kString;
    return close == std::string_view::npos ? n : close + tag.size();
  }
  j = i + 1;
  while (j < n && (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '_')) ++j;
  *kind = j > i + 1 ? SqlTokenKind::kParameter : SqlTokenKind::kOperator;
  return j > i + 1 ? j : i + 1;
}

size_t ScanNumber(std::string_view s, size_t i) {
  const size_t n = s.size();
  const bool hex = s[i] == '0' && i + 1 < n && (s[i + 1] == 'x' || s[i + 1] == 'X');
  size_t j = i;
  while (j < n) {
    const char d = s[j];
    if (std::isalnum(static_cast<unsigned char>(d)) || d == '_' || d == '.') {
      ++j;
    } else if ((d == '+' || d == '-') && !hex && (s[j - 1] == 'e' || s[j - 1] == 'E')) {
      ++j;
    } else {
      break;
    }
  }
  return j;
}

// A word, or a string with a prefix glued to its quote: E'..' (backslash escapes), X'..',
// B'..', N'..', U&'..'.
size_t ScanWord(std::string_view s, size_t i, SqlTokenKind* kind) {
  const size_t n = s.size();
  size_t j = i;
  while (j < n && IsIdentChar(s[j])) ++j;
  std::string_view word = s.substr(i, j - i);
  *kind = SqlTokenKind::kString;
  if (j < n && s[j] == '\'' && word.size() == 1 && std::strchr("eExXbBnN", word[0])) {
    return ScanQuoted(s, j, word[0] == 'e' || word[0] == 'E');
  }
  if (j + 1 < n && s[j] == '&' && s[j + 1] == '\'' && (word == "U" || word == "u")) {
    return ScanQuoted(s, j + 1, false);
  }
  *kind = SqlTokenKind::kWord;
  return j;
}

size_t ScanOperator(std::string_view s, size_t i) {
  const size_t n = s.size();
  size_t j = i;
  while (j < n && IsOperatorChar(s[j])) {
    const char after = j + 1 < n ? s[j + 1] : '\0';
    if (j > i && ((s[j] == '-' && after == '-') || (s[j] == '/' && after == '*'))) break;
    ++j;
  }
  return j;
}

// The end of the token starting at `i` (not a blank or comment), and its kind.
size_t ScanToken(std::string_view s, size_t i, SqlTokenKind* kind) {
  const char c = s[i];
  const char next = i + 1 < s.size() ? s[i + 1] : '\0';
  if (c == '\'' || c == '"') {
    *kind = c == '\'' ? SqlTokenKind::kString : SqlTokenKind::kQuotedIdentifier;
    return ScanQuoted(s, i, false);
  }
  if (c == '$') return ScanDollar(s, i, kind);
  if (std::isdigit(static_cast<unsigned char>(c)) ||
      (c == '.' && std::isdigit(static_cast<unsigned char>(next)))) {
    *kind = SqlTokenKind::kNumber;
    return ScanNumber(s, i);
  }
  if (IsIdentStart(c)) return ScanWord(s, i, kind);
  if (IsOperatorChar(c)) {
    *kind = SqlTokenKind::kOperator;
    return ScanOperator(s, i);
  }
  *kind = SqlTokenKind::kPunctuation;
  return i + 1;
}

}  // namespace

std::vector<SqlToken> TokenizeSql(std::string_view s) {
  std::vector<SqlToken> out;
  size_t i = 0;
  while (i < s.size()) {
    if (size_t skipped = SkipBlankOrComment(s, i); skipped != i) {
      i = skipped;
      continue;
    }
    SqlTokenKind kind = SqlTokenKind::kPunctuation;
    const size_t end = ScanToken(s, i, &kind);
    out.push_back({kind, s.substr(i, end - i), i});
    i = end;
  }
  return out;
}

std::string NormalizeSql(std::string_view sql) {
  std::vector<SqlToken> tokens = TokenizeSql(sql);
  while (!tokens.empty() && tokens.back().kind == SqlTokenKind::kPunctuation &&
         tokens.back().text == ";") {
    tokens.pop_back();
  }
  std::string out;
  for (const SqlToken& t : tokens) {
    if (!out.empty()) out += ' ';
    out += t.text;
  }
  return out;
}

}  // namespace respawn

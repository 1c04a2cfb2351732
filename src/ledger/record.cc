#include "ledger/record.h"

#include <cstdio>
#include <cstdlib>
#include <exception>

#include "util/hash.h"
#include "util/strings.h"
#include "util/json.h"

namespace respawn::ledger {
namespace {

using nlohmann::json;

constexpr std::string_view kFramePrefix = "{\"xxh3\":\"";
constexpr std::string_view kFrameMiddle = "\",\"body\":";
constexpr size_t kHexDigits = 16;

bool ParseHexU64(std::string_view hex, uint64_t* out) {
  if (hex.size() != kHexDigits) return false;
  uint64_t v = 0;
  for (char c : hex) {
    v <<= 4;
    if (c >= '0' && c <= '9') {
      v |= static_cast<uint64_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      v |= static_cast<uint64_t>(c - 'a' + 10);
    } else {
      return false;
    }
  }
  *out = v;
  return true;
}

// Serializes `j`; strings that are not UTF-8 make it throw, which we turn into InvalidArgument.
Result<std::string> Dump(const json& j, std::string_view what) {
  try {
    return j.dump();
  } catch (const std::exception& e) {
    return InvalidArgument(
        "cannot encode " + std::string(what) +
        " as JSON (names, keys, fingerprints and metadata must be UTF-8): " + e.what());
  }
}

Result<std::string> EncodeBody(const json& body, std::string_view what,
                               std::string* checksum = nullptr) {
  ASSIGN_OR_RETURN(std::string text, Dump(body, what));
  return Frame(text, checksum);
}

// Verifies the frame and parses the body; checks the format version.
Result<json> ParseBody(std::string_view key, std::string_view bytes, std::string* checksum) {
  ASSIGN_OR_RETURN(std::string_view body, Unframe(key, bytes, checksum));
  json j;
  try {
    j = json::parse(body);
  } catch (const std::exception& e) {
    return DataLoss("ledger object " + Quoted(key) +
                    " has a valid checksum but its body is not JSON (" + e.what() +
                    "); it was written by a broken writer");
  }
  if (!j.is_object()) {
    return DataLoss("ledger object " + Quoted(key) + " body is not a JSON object");
  }
  const int format = JsonValueOr(j, "format", 0);
  if (format > kFormatVersion) {
    return FailedPrecondition("ledger object " + Quoted(key) + " has format version " +
                              std::to_string(format) + " but this respawn reads up to " +
                              std::to_string(kFormatVersion) + "; upgrade respawn");
  }
  return j;
}

json ObjectToJson(const DataObject& o) {
  return json{{"key", o.key}, {"size", o.size}, {"xxh3", HexU64(o.xxh3)}};
}

DataObject ObjectFromJson(const json& j) {
  DataObject o;
  o.key = j.at("key").get<std::string>();
  o.size = j.at("size").get<uint64_t>();
  if (!ParseHexU64(j.at("xxh3").get<std::string>(), &o.xxh3)) {
    throw std::runtime_error("data object " + Quoted(o.key) + " has a malformed xxh3");
  }
  return o;
}

// The part of an entry a committer supplies.
json EntryValueToJson(const Entry& e) {
  json objects = json::array();
  for (const auto& o : e.objects) objects.push_back(ObjectToJson(o));
  return json{{"fingerprint", e.fingerprint},
              {"objects", std::move(objects)},
              {"meta", e.meta.is_null() ? json::object() : e.meta}};
}

void EntryValueFromJson(const json& j, Entry& e) {
  e.fingerprint = j.at("fingerprint").get<std::string>();
  e.objects.clear();
  for (const auto& o : j.at("objects")) e.objects.push_back(ObjectFromJson(o));
  e.meta = j.value("meta", json::object());
}

json StateEntryToJson(const Entry& e) {
  json j = EntryValueToJson(e);
  j["sequence"] = e.sequence;
  j["epoch"] = e.epoch;
  j["committed_at_ms"] = e.committed_at_ms;
  j["run_id"] = e.run_id;
  j["writer"] = e.writer;
  return j;
}

Entry StateEntryFromJson(const json& j) {
  Entry e;
  EntryValueFromJson(j, e);
  e.sequence = j.at("sequence").get<uint64_t>();
  e.epoch = j.at("epoch").get<uint64_t>();
  e.committed_at_ms = j.at("committed_at_ms").get<int64_t>();
  e.run_id = j.at("run_id").get<std::string>();
  e.writer = j.at("writer").get<std::string>();
  return e;
}

std::string_view KindName(RecordKind k) {
  switch (k) {
    case RecordKind::kClaim:
      return "claim";
    case RecordKind::kCommit:
      return "commit";
    case RecordKind::kVoid:
      return "void";
  }
  return "commit";
}

Status Malformed(std::string_view key, const std::exception& e) {
  return DataLoss("ledger object " + Quoted(key) +
                  " has a valid checksum but is missing or mistypes a field (" + e.what() +
                  "); it was written by a broken or incompatible writer");
}

Status WrongSequence(std::string_view key, uint64_t got, uint64_t want) {
  return DataLoss("ledger object " + Quoted(key) + " says it is sequence " + std::to_string(got) +
                  " but its key is sequence " + std::to_string(want) +
                  "; it was copied or renamed by hand");
}

uint64_t ParseSequenceName(std::string_view name) {
  // "<20 digits>.json"
  if (name.size() != 25 || name.substr(20) != ".json") return 0;
  uint64_t v = 0;
  for (size_t i = 0; i < 20; ++i) {
    char c = name[i];
    if (c < '0' || c > '9') return 0;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

}  // namespace

Keys::Keys(std::string ns) : base_(ns.empty() ? "" : ns + "/"), ns_(std::move(ns)) {}

std::string Keys::LedgerPrefix() const { return base_ + "ledger/"; }
std::string Keys::RecordPrefix() const { return base_ + "ledger/rec/"; }
std::string Keys::SnapshotPrefix() const { return base_ + "ledger/snap/"; }
std::string Keys::DataPrefix() const { return base_ + "data/"; }
std::string Keys::Record(uint64_t sequence) const {
  return RecordPrefix() + SequenceName(sequence) + ".json";
}
std::string Keys::Snapshot(uint64_t sequence) const {
  return SnapshotPrefix() + SequenceName(sequence) + ".json";
}
std::string Keys::Head() const { return base_ + "ledger/head.json"; }
std::string Keys::Floor() const { return base_ + "ledger/floor.json"; }
std::string Keys::Lease() const { return base_ + "ledger/lease.json"; }

uint64_t Keys::SequenceOfRecord(std::string_view key) const {
  std::string prefix = RecordPrefix();
  if (key.substr(0, prefix.size()) != prefix) return 0;
  return ParseSequenceName(key.substr(prefix.size()));
}

uint64_t Keys::SequenceOfSnapshot(std::string_view key) const {
  std::string prefix = SnapshotPrefix();
  if (key.substr(0, prefix.size()) != prefix) return 0;
  return ParseSequenceName(key.substr(prefix.size()));
}

std::optional<DataKeyParts> Keys::ParseDataKey(std::string_view key) const {
  std::string prefix = DataPrefix();
  if (key.substr(0, prefix.size()) != prefix) return std::nullopt;
  std::string_view rest = key.substr(prefix.size());
  // From the right: file, attempt, fingerprint; the stage is everything before them.
  std::string_view segments[3];
  for (std::string_view& segment : segments) {
    size_t slash = rest.rfind('/');
    if (slash == std::string_view::npos || slash == 0 || slash + 1 == rest.size()) {
      return std::nullopt;
    }
    segment = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
  }
  DataKeyParts parts;
  parts.file = std::string(segments[0]);
  parts.attempt = std::string(segments[1]);
  parts.fingerprint = std::string(segments[2]);
  parts.stage = std::string(rest);
  parts.run_id = parts.file.substr(0, parts.file.find('.'));
  return parts;
}

std::string SequenceName(uint64_t sequence) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%020llu", static_cast<unsigned long long>(sequence));
  return buf;
}

std::string Frame(std::string_view body, std::string* checksum) {
  std::string sum = HexU64(Xxh3(body));
  std::string out;
  out.reserve(kFramePrefix.size() + sum.size() + kFrameMiddle.size() + body.size() + 2);
  out.append(kFramePrefix).append(sum).append(kFrameMiddle).append(body).append("}\n");
  if (checksum != nullptr) *checksum = std::move(sum);
  return out;
}

Result<std::string_view> Unframe(std::string_view key, std::string_view bytes,
                                 std::string* checksum) {
  auto bad_frame = [&](std::string_view why) {
    return DataLoss("ledger object " + Quoted(key) + " (" + std::to_string(bytes.size()) +
                    " bytes) is corrupt: " + std::string(why) +
                    "; it was truncated or overwritten outside respawn");
  };
  size_t header = kFramePrefix.size() + kHexDigits + kFrameMiddle.size();
  if (bytes.size() < header + 2 || bytes.substr(0, kFramePrefix.size()) != kFramePrefix ||
      bytes.substr(kFramePrefix.size() + kHexDigits, kFrameMiddle.size()) != kFrameMiddle) {
    return bad_frame("it does not start with the checksum frame");
  }
  std::string_view rest = bytes.substr(header);
  if (!rest.empty() && rest.back() == '\n') rest.remove_suffix(1);
  if (rest.empty() || rest.back() != '}') return bad_frame("the frame is not closed");
  rest.remove_suffix(1);
  std::string_view stored = bytes.substr(kFramePrefix.size(), kHexDigits);
  uint64_t want = 0;
  if (!ParseHexU64(stored, &want)) return bad_frame("the checksum is not 16 hex digits");
  uint64_t got = Xxh3(rest);
  if (got != want) {
    return DataLoss("ledger object " + Quoted(key) + " failed verification: body xxh3 is " +
                    HexU64(got) + " but the record says " + std::string(stored) +
                    "; it was corrupted after it was written");
  }
  if (checksum != nullptr) *checksum = std::string(stored);
  return rest;
}

Result<std::string> EncodeRecord(const Record& r, std::string* body_checksum) {
  json upserts = json::object();
  for (const auto& [name, e] : r.changes.upserts) upserts[name] = EntryValueToJson(e);
  json removals = json::array();
  for (const auto& name : r.changes.removals) removals.push_back(name);
  json body{{"format", kFormatVersion},
            {"type", "record"},
            {"sequence", r.sequence},
            {"kind", KindName(r.kind)},
            {"epoch", r.epoch},
            {"writer", r.writer},
            {"epoch_owner", r.epoch_owner},
            {"run_id", r.run_id},
            {"commit_id", r.commit_id},
            {"committed_at_ms", r.committed_at_ms},
            {"prev", r.prev},
            {"upserts", std::move(upserts)},
            {"removals", std::move(removals)}};
  if (r.kind == RecordKind::kVoid) {
    body["chain"] = r.chain;
    body["lost"] = r.lost;
  }
  if (!r.commit_mode.empty()) body["commit_mode"] = r.commit_mode;
  return EncodeBody(body, "commit record " + std::to_string(r.sequence), body_checksum);
}

Result<Record> DecodeRecord(std::string_view key, uint64_t expected_sequence,
                            std::string_view bytes, std::string* body_checksum) {
  ASSIGN_OR_RETURN(json j, ParseBody(key, bytes, body_checksum));
  Record r;
  try {
    if (j.at("type").get<std::string>() != "record") {
      return DataLoss("ledger object " + Quoted(key) + " is not a commit record");
    }
    r.sequence = j.at("sequence").get<uint64_t>();
    std::string kind = j.at("kind").get<std::string>();
    if (kind == "claim") {
      r.kind = RecordKind::kClaim;
    } else if (kind == "commit") {
      r.kind = RecordKind::kCommit;
    } else if (kind == "void") {
      r.kind = RecordKind::kVoid;
      r.chain = j.at("chain").get<std::string>();
      r.lost = j.value("lost", std::vector<std::string>());
    } else {
      return DataLoss("ledger record " + Quoted(key) + " has unknown kind " + Quoted(kind));
    }
    r.epoch = j.at("epoch").get<uint64_t>();
    r.writer = j.at("writer").get<std::string>();
    r.epoch_owner = j.at("epoch_owner").get<std::string>();
    r.run_id = j.at("run_id").get<std::string>();
    r.commit_id = j.at("commit_id").get<std::string>();
    r.committed_at_ms = j.at("committed_at_ms").get<int64_t>();
    r.prev = j.at("prev").get<std::string>();
    for (const auto& [name, value] : j.at("upserts").items()) {
      EntryValueFromJson(value, r.changes.upserts[name]);
    }
    for (const auto& name : j.at("removals")) r.changes.removals.insert(name.get<std::string>());
    if (j.contains("commit_mode")) r.commit_mode = j.at("commit_mode").get<std::string>();
  } catch (const std::exception& e) {
    return Malformed(key, e);
  }
  if (r.sequence != expected_sequence) return WrongSequence(key, r.sequence, expected_sequence);
  return r;
}

Result<std::string> EncodeSnapshot(const Snapshot& s) {
  json entries = json::object();
  for (const auto& [name, e] : s.state.entries) entries[name] = StateEntryToJson(e);
  json body{{"format", kFormatVersion},
            {"type", "snapshot"},
            {"sequence", s.sequence},
            {"record_checksum", s.record_checksum},
            {"max_epoch", s.state.max_epoch},
            {"epoch_writer", s.state.epoch_writer},
            {"epoch_run_id", s.state.epoch_run_id},
            {"epoch_sequence", s.state.epoch_sequence},
            {"entries", std::move(entries)}};
  if (!s.state.commit_mode.empty()) body["commit_mode"] = s.state.commit_mode;
  return EncodeBody(body, "snapshot " + std::to_string(s.sequence));
}

Result<Snapshot> DecodeSnapshot(std::string_view key, uint64_t expected_sequence,
                                std::string_view bytes) {
  ASSIGN_OR_RETURN(json j, ParseBody(key, bytes, nullptr));
  Snapshot s;
  try {
    if (j.at("type").get<std::string>() != "snapshot") {
      return DataLoss("ledger object " + Quoted(key) + " is not a snapshot");
    }
    s.sequence = j.at("sequence").get<uint64_t>();
    s.record_checksum = j.at("record_checksum").get<std::string>();
    s.state.max_epoch = j.at("max_epoch").get<uint64_t>();
    s.state.epoch_writer = j.at("epoch_writer").get<std::string>();
    s.state.epoch_run_id = j.at("epoch_run_id").get<std::string>();
    s.state.epoch_sequence = j.at("epoch_sequence").get<uint64_t>();
    if (j.contains("commit_mode")) s.state.commit_mode = j.at("commit_mode").get<std::string>();
    for (const auto& [name, value] : j.at("entries").items()) {
      s.state.entries.emplace(name, StateEntryFromJson(value));
    }
  } catch (const std::exception& e) {
    return Malformed(key, e);
  }
  if (s.sequence != expected_sequence) return WrongSequence(key, s.sequence, expected_sequence);
  return s;
}

Result<std::string> EncodeHead(const HeadHint& h) {
  json body{{"format", kFormatVersion},
            {"type", "head"},
            {"sequence", h.sequence},
            {"snapshot_sequence", h.snapshot_sequence},
            {"epoch", h.epoch},
            {"writer", h.writer},
            {"written_at_ms", h.written_at_ms}};
  return EncodeBody(body, "head hint");
}

Result<HeadHint> DecodeHead(std::string_view key, std::string_view bytes) {
  ASSIGN_OR_RETURN(json j, ParseBody(key, bytes, nullptr));
  HeadHint h;
  try {
    h.sequence = j.at("sequence").get<uint64_t>();
    h.snapshot_sequence = j.at("snapshot_sequence").get<uint64_t>();
    h.epoch = j.at("epoch").get<uint64_t>();
    h.writer = j.at("writer").get<std::string>();
    h.written_at_ms = j.at("written_at_ms").get<int64_t>();
  } catch (const std::exception& e) {
    return Malformed(key, e);
  }
  return h;
}

Result<std::string> EncodeFloor(const Floor& f) {
  json body{{"format", kFormatVersion},
            {"type", "floor"},
            {"snapshot_sequence", f.snapshot_sequence},
            {"written_at_ms", f.written_at_ms}};
  return EncodeBody(body, "GC floor");
}

Result<Floor> DecodeFloor(std::string_view key, std::string_view bytes) {
  ASSIGN_OR_RETURN(json j, ParseBody(key, bytes, nullptr));
  Floor f;
  try {
    f.snapshot_sequence = j.at("snapshot_sequence").get<uint64_t>();
    f.written_at_ms = j.at("written_at_ms").get<int64_t>();
  } catch (const std::exception& e) {
    return Malformed(key, e);
  }
  return f;
}

Result<std::string> EncodeLease(const Lease& l) {
  json body{{"format", kFormatVersion},
            {"type", "lease"},
            {"holder", l.holder},
            {"nonce", l.nonce},
            {"run_id", l.run_id},
            {"epoch", l.epoch},
            {"acquired_at_ms", l.acquired_at_ms},
            {"expires_at_ms", l.expires_at_ms},
            {"ttl_ms", l.ttl_ms}};
  return EncodeBody(body, "lease");
}

Result<Lease> DecodeLease(std::string_view key, std::string_view bytes) {
  ASSIGN_OR_RETURN(json j, ParseBody(key, bytes, nullptr));
  Lease l;
  try {
    l.holder = j.at("holder").get<std::string>();
    l.nonce = j.at("nonce").get<std::string>();
    l.run_id = j.at("run_id").get<std::string>();
    l.epoch = j.at("epoch").get<uint64_t>();
    l.acquired_at_ms = j.at("acquired_at_ms").get<int64_t>();
    l.expires_at_ms = j.at("expires_at_ms").get<int64_t>();
    l.ttl_ms = j.at("ttl_ms").get<int64_t>();
  } catch (const std::exception& e) {
    return Malformed(key, e);
  }
  return l;
}

bool ApplyRecord(const Record& r, LedgerState& state) {
  if (r.kind == RecordKind::kVoid) {
    if (r.epoch > state.max_epoch) {
      state.max_epoch = r.epoch;
      state.epoch_writer = r.epoch_owner;
      state.epoch_run_id = r.run_id;
      state.epoch_sequence = r.sequence;
    }
    return true;
  }
  if (r.epoch < state.max_epoch) return false;  // a zombie's late write
  if (r.kind == RecordKind::kClaim) {
    if (r.epoch == state.max_epoch) return false;  // must raise the epoch strictly
    state.max_epoch = r.epoch;
    state.epoch_writer = r.writer;
    state.epoch_run_id = r.run_id;
    state.epoch_sequence = r.sequence;
    if (state.commit_mode.empty()) state.commit_mode = r.commit_mode;
    return true;
  }
  if (r.epoch > state.max_epoch) return false;            // nobody claimed this epoch
  if (r.epoch_owner != state.epoch_writer) return false;  // acts under a claim that lost
  for (const auto& name : r.changes.removals) state.entries.erase(name);
  for (const auto& [name, value] : r.changes.upserts) {
    Entry e;
    e.fingerprint = value.fingerprint;
    e.objects = value.objects;
    e.meta = value.meta.is_null() ? nlohmann::json::object() : value.meta;
    e.sequence = r.sequence;
    e.epoch = r.epoch;
    e.committed_at_ms = r.committed_at_ms;
    e.run_id = r.run_id;
    e.writer = r.writer;
    state.entries[name] = std::move(e);
  }
  return true;
}

}  // namespace respawn::ledger

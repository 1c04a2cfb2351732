#include "storage/chaos_store.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <thread>

#include "util/crash_point.h"
#include "util/strings.h"

namespace respawn {
namespace {

constexpr std::string_view kValidKeys =
    "error_rate, after_rate, ops, errors, latency_ms, list_lag_ms, seed, put_if_absent";
constexpr std::string_view kValidOps = "put, get, stat, list, delete";
constexpr std::string_view kValidErrors = "unavailable, timeout, reset, slowdown";
constexpr int kMaxMs = 3600 * 1000;

// Continuation tokens handed out while listing lag is on: "chaos:<n>:<n bytes of the last
// entry the target listed><target's token>".
constexpr std::string_view kTokenTag = "chaos:";

bool IsOneOf(std::string_view word, std::initializer_list<std::string_view> set) {
  return std::find(set.begin(), set.end(), word) != set.end();
}

Result<double> ParseRate(std::string_view key, std::string_view value) {
  double rate = -1;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), rate);
  if (value.empty() || ec != std::errc() || end != value.data() + value.size() || !(rate >= 0) ||
      rate > 1) {
    return InvalidArgument("chaos " + std::string(key) + "=" + Quoted(value) +
                           " must be a probability between 0 and 1 (e.g. 0.1)");
  }
  return rate;
}

Result<int> ParseMs(std::string_view key, std::string_view value) {
  int ms = -1;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), ms);
  if (value.empty() || ec != std::errc() || end != value.data() + value.size() || ms < 0 ||
      ms > kMaxMs) {
    return InvalidArgument("chaos " + std::string(key) + "=" + Quoted(value) +
                           " must be a whole number of milliseconds from 0 to " +
                           std::to_string(kMaxMs));
  }
  return ms;
}

// '+'-separated words, each one of `valid`.
Result<std::set<std::string>> ParseWords(std::string_view key, std::string_view value,
                                         std::initializer_list<std::string_view> valid,
                                         std::string_view valid_text) {
  std::set<std::string> words;
  if (value.empty()) {
    return InvalidArgument("chaos " + std::string(key) + " is empty; give '+'-separated values " +
                           "from: " + std::string(valid_text));
  }
  while (true) {
    size_t plus = value.find('+');
    std::string_view word = Trim(value.substr(0, plus));
    if (!IsOneOf(word, valid)) {
      return InvalidArgument("chaos " + std::string(key) + ": unknown value " + Quoted(word) +
                             "; valid values: " + std::string(valid_text));
    }
    words.insert(std::string(word));
    if (plus == std::string_view::npos) break;
    value.remove_prefix(plus + 1);
  }
  return words;
}

std::string CrashName(std::string_view op, std::string_view when) {
  std::string name = "store:";
  name += op;
  name += ':';
  name += when;
  return name;
}

// Every operation's crash points, declared at program start (util/crash_point.h).
[[maybe_unused]] const bool kCrashPointsDeclared = [] {
  for (std::string_view op : {"put", "get", "stat", "list", "delete"}) {
    DeclareCrashPoint(CrashName(op, "before"));
    DeclareCrashPoint(CrashName(op, "after"));
  }
  return true;
}();

struct TokenParts {
  bool has_lower = false;
  std::string lower;         // the last entry the target listed on the previous page
  std::string target_token;  // what the target gave
};

TokenParts DecodeToken(const std::string& token) {
  TokenParts parts;
  std::string_view t(token);
  if (t.substr(0, kTokenTag.size()) == kTokenTag) {
    std::string_view rest = t.substr(kTokenTag.size());
    size_t colon = rest.find(':');
    size_t n = 0;
    if (colon != std::string_view::npos) {
      auto [end, ec] = std::from_chars(rest.data(), rest.data() + colon, n);
      if (ec == std::errc() && end == rest.data() + colon && colon + 1 + n <= rest.size()) {
        parts.has_lower = true;
        parts.lower = std::string(rest.substr(colon + 1, n));
        parts.target_token = std::string(rest.substr(colon + 1 + n));
        return parts;
      }
    }
  }
  parts.target_token = token;  // not ours: the target's own
  return parts;
}

std::string EncodeToken(const std::string& lower, const std::string& target_token) {
  return std::string(kTokenTag) + std::to_string(lower.size()) + ":" + lower + target_token;
}

}  // namespace

Result<ChaosSpec> ParseChaosSpec(std::string_view spec) {
  ChaosSpec out;
  std::set<std::string> seen;
  std::string_view rest = spec;
  while (!rest.empty()) {
    size_t comma = rest.find(',');
    std::string_view item = Trim(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    if (item.empty()) continue;
    size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      return InvalidArgument("chaos spec item " + Quoted(item) +
                             " is not key=value; valid keys: " + std::string(kValidKeys));
    }
    std::string_view key = Trim(item.substr(0, eq));
    std::string_view value = Trim(item.substr(eq + 1));
    if (!IsOneOf(key, {"error_rate", "after_rate", "ops", "errors", "latency_ms", "list_lag_ms",
                       "seed", "put_if_absent"})) {
      return InvalidArgument("unknown chaos key " + Quoted(key) +
                             "; valid keys: " + std::string(kValidKeys));
    }
    if (!seen.insert(std::string(key)).second) {
      return InvalidArgument("chaos key " + Quoted(key) + " is given twice");
    }
    if (key == "error_rate") {
      ASSIGN_OR_RETURN(out.error_rate, ParseRate(key, value));
    } else if (key == "after_rate") {
      ASSIGN_OR_RETURN(out.after_rate, ParseRate(key, value));
    } else if (key == "ops") {
      ASSIGN_OR_RETURN(out.ops,
                       ParseWords(key, value, {"put", "get", "stat", "list", "delete"}, kValidOps));
    } else if (key == "errors") {
      ASSIGN_OR_RETURN(
          out.errors,
          ParseWords(key, value, {"unavailable", "timeout", "reset", "slowdown"}, kValidErrors));
    } else if (key == "latency_ms") {
      ASSIGN_OR_RETURN(out.latency_ms, ParseMs(key, value));
    } else if (key == "list_lag_ms") {
      ASSIGN_OR_RETURN(out.list_lag_ms, ParseMs(key, value));
    } else if (key == "put_if_absent") {
      if (value != "on" && value != "off") {
        return InvalidArgument("chaos put_if_absent=" + Quoted(value) +
                               " must be on (the store's own) or off (hidden)");
      }
      out.hide_put_if_absent = value == "off";
    } else {  // seed
      uint64_t seed = 0;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seed);
      if (value.empty() || ec != std::errc() || end != value.data() + value.size()) {
        return InvalidArgument("chaos seed=" + Quoted(value) +
                               " must be a non-negative integer (0 = random)");
      }
      out.seed = seed;
    }
  }
  if (out.after_rate > 0 && !out.ops.empty() && out.ops.count("put") == 0) {
    return InvalidArgument(
        "chaos after_rate applies to put, which ops leaves out; add put to "
        "ops or drop after_rate");
  }
  return out;
}

ChaosStore::ChaosStore(std::shared_ptr<Store> target, ChaosSpec spec, std::shared_ptr<Clock> clock)
    : StoreWrapper(std::move(target)),
      spec_(std::move(spec)),
      clock_(clock != nullptr ? std::move(clock) : Clock::System()),
      rng_(spec_.seed != 0 ? spec_.seed : std::random_device{}()) {
  if (spec_.errors.empty()) spec_.errors.insert("unavailable");
}

int64_t ChaosStore::SteadyMs() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             clock_->SteadyNow().time_since_epoch())
      .count();
}

Capabilities ChaosStore::capabilities() const {
  Capabilities caps = target_->capabilities();
  if (spec_.list_lag_ms > 0) caps.consistent_listing = false;
  if (spec_.hide_put_if_absent) {
    caps.put_if_absent = false;
    caps.put_if_absent_error = Status::OK();
  }
  return caps;
}

uint64_t ChaosStore::injected_errors() const {
  std::lock_guard<std::mutex> lock(mu_);
  return injected_;
}

bool ChaosStore::Selected(std::string_view op) const {
  return spec_.ops.empty() || spec_.ops.count(std::string(op)) > 0;
}

Status ChaosStore::MaybeInjectLocked(std::string_view what) {
  if (spec_.error_rate <= 0) return Status::OK();
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  if (unit(rng_) >= spec_.error_rate) return Status::OK();
  auto kind = spec_.errors.begin();
  if (spec_.errors.size() > 1) {
    std::uniform_int_distribution<size_t> pick(0, spec_.errors.size() - 1);
    std::advance(kind, pick(rng_));
  }
  ++injected_;
  std::string where = " on " + std::string(what);
  if (*kind == "timeout") return DeadlineExceeded("chaos: injected timeout" + where);
  if (*kind == "reset") return Unavailable("chaos: injected connection reset" + where);
  if (*kind == "slowdown") return Unavailable("chaos: injected 503 SlowDown" + where);
  return Unavailable("chaos: injected 503 ServiceUnavailable" + where);
}

Status ChaosStore::Before(std::string_view op, std::string_view what) {
  CrashPoint(CrashName(op, "before"));
  if (!Selected(op)) return Status::OK();
  if (spec_.latency_ms > 0) {
    clock_->SleepFor(std::chrono::milliseconds(spec_.latency_ms));
  }
  std::lock_guard<std::mutex> lock(mu_);
  return MaybeInjectLocked(what);
}

void ChaosStore::After(std::string_view op) { CrashPoint(CrashName(op, "after")); }

bool ChaosStore::DrawAfterFailure() {
  if (spec_.after_rate <= 0 || !Selected("put")) return false;
  std::lock_guard<std::mutex> lock(mu_);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  if (unit(rng_) >= spec_.after_rate) return false;
  ++injected_;
  return true;
}

void ChaosStore::PruneLocked(int64_t now_ms) {
  const int64_t cutoff = now_ms - spec_.list_lag_ms;
  while (!write_order_.empty() && write_order_.front().first <= cutoff) {
    auto it = recent_writes_.find(write_order_.front().second);
    if (it != recent_writes_.end() && it->second == write_order_.front().first) {
      recent_writes_.erase(it);
    }
    write_order_.pop_front();
  }
  while (!delete_order_.empty() && delete_order_.front().first <= cutoff) {
    auto it = recent_deletes_.find(delete_order_.front().second);
    if (it != recent_deletes_.end() && it->second.at_ms == delete_order_.front().first) {
      recent_deletes_.erase(it);
    }
    delete_order_.pop_front();
  }
}

void ChaosStore::NoteWrite(std::string_view key) {
  if (spec_.list_lag_ms <= 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  int64_t now = SteadyMs();
  PruneLocked(now);
  std::string k(key);
  recent_deletes_.erase(k);
  recent_writes_[k] = now;
  write_order_.emplace_back(now, std::move(k));
}

std::optional<ObjectInfo> ChaosStore::InfoBeforeDelete(std::string_view key) {
  if (spec_.list_lag_ms <= 0) return std::nullopt;
  Result<ObjectInfo> info = target_->Stat(key);
  if (!info.ok()) return std::nullopt;
  return std::move(info).value();
}

void ChaosStore::NoteDelete(std::string_view key, std::optional<ObjectInfo> info) {
  if (spec_.list_lag_ms <= 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  int64_t now = SteadyMs();
  PruneLocked(now);
  std::string k(key);
  recent_writes_.erase(k);
  if (!info) {
    recent_deletes_.erase(k);  // nothing was there to linger
    return;
  }
  recent_deletes_[k] = DeletedObject{now, std::move(*info)};
  delete_order_.emplace_back(now, std::move(k));
}

Status ChaosStore::HiddenPutIfAbsent(std::string_view key, const PutOptions& o) const {
  if (!o.if_absent || !spec_.hide_put_if_absent) return Status::OK();
  return Unimplemented("chaos: put-if-absent is hidden (put_if_absent=off); cannot create " +
                       Quoted(key) + " only if absent");
}

Status ChaosStore::Put(std::string_view key, std::string_view data, const PutOptions& o) {
  RETURN_IF_ERROR(HiddenPutIfAbsent(key, o));
  RETURN_IF_ERROR(Before("put", "put " + std::string(key)));
  Status s = target_->Put(key, data, o);
  After("put");
  if (!s.ok()) return s;
  NoteWrite(key);
  if (DrawAfterFailure()) {
    return Unavailable("chaos: injected timeout after put " + std::string(key) +
                       " (the object was written)");
  }
  return s;
}

Status ChaosStore::PutFile(std::string_view key, const std::string& path, const PutOptions& o) {
  RETURN_IF_ERROR(HiddenPutIfAbsent(key, o));
  RETURN_IF_ERROR(Before("put", "put " + std::string(key)));
  Status s = target_->PutFile(key, path, o);
  After("put");
  if (!s.ok()) return s;
  NoteWrite(key);
  if (DrawAfterFailure()) {
    return Unavailable("chaos: injected timeout after put " + std::string(key) +
                       " (the object was written)");
  }
  return s;
}

Result<std::string> ChaosStore::Get(std::string_view key, const GetOptions& o) {
  RETURN_IF_ERROR(Before("get", "get " + std::string(key)));
  Result<std::string> r = target_->Get(key, o);
  After("get");
  return r;
}

Result<std::string> ChaosStore::GetRange(std::string_view key, uint64_t offset, uint64_t length) {
  RETURN_IF_ERROR(Before("get", "get " + std::string(key)));
  Result<std::string> r = target_->GetRange(key, offset, length);
  After("get");
  return r;
}

Status ChaosStore::GetToFile(std::string_view key, const std::string& path, const GetOptions& o) {
  RETURN_IF_ERROR(Before("get", "get " + std::string(key)));
  Status s = target_->GetToFile(key, path, o);
  After("get");
  return s;
}

Result<ObjectInfo> ChaosStore::Stat(std::string_view key) {
  RETURN_IF_ERROR(Before("stat", "stat " + std::string(key)));
  Result<ObjectInfo> r = target_->Stat(key);
  After("stat");
  return r;
}

Result<ListPage> ChaosStore::List(const ListOptions& o) {
  RETURN_IF_ERROR(Before("list", "list prefix " + Quoted(o.prefix)));
  if (spec_.list_lag_ms <= 0) {
    Result<ListPage> r = target_->List(o);
    After("list");
    return r;
  }

  TokenParts token = DecodeToken(o.continuation_token);
  ListOptions inner = o;
  inner.continuation_token = token.target_token;
  Result<ListPage> r = target_->List(inner);
  After("list");
  if (!r.ok()) return r;
  ListPage page = std::move(r).value();

  // The range of entries (objects and common prefixes, in one byte order) this page covers:
  // after the previous page's last target entry, up to and including this page's last one.
  const bool last_page = page.next_token.empty();
  std::string upper = token.lower;
  bool has_upper = token.has_lower;
  if (!page.objects.empty()) {
    upper = page.objects.back().key;
    has_upper = true;
  }
  if (!page.common_prefixes.empty() && (!has_upper || page.common_prefixes.back() > upper)) {
    upper = page.common_prefixes.back();
    has_upper = true;
  }
  auto in_range = [&](const std::string& entry) {
    if (token.has_lower && entry <= token.lower) return false;
    return last_page || (has_upper && entry <= upper);
  };

  {
    std::lock_guard<std::mutex> lock(mu_);
    PruneLocked(SteadyMs());
    // Fresh writes are not listed yet.
    std::erase_if(page.objects,
                  [&](const ObjectInfo& info) { return recent_writes_.count(info.key) > 0; });
    // Recent deletes still are.
    for (auto it = recent_deletes_.lower_bound(o.prefix);
         it != recent_deletes_.end() && it->first.compare(0, o.prefix.size(), o.prefix) == 0;
         ++it) {
      std::string_view rest = std::string_view(it->first).substr(o.prefix.size());
      size_t cut = o.delimiter.empty() ? std::string_view::npos : rest.find(o.delimiter);
      if (cut != std::string_view::npos) {
        std::string group = o.prefix + std::string(rest.substr(0, cut + o.delimiter.size()));
        if (!in_range(group)) continue;
        auto pos =
            std::lower_bound(page.common_prefixes.begin(), page.common_prefixes.end(), group);
        if (pos == page.common_prefixes.end() || *pos != group) {
          page.common_prefixes.insert(pos, std::move(group));
        }
        continue;
      }
      if (!in_range(it->first)) continue;
      auto pos = std::lower_bound(
          page.objects.begin(), page.objects.end(), it->first,
          [](const ObjectInfo& info, const std::string& key) { return info.key < key; });
      if (pos != page.objects.end() && pos->key == it->first) continue;
      page.objects.insert(pos, it->second.info);
    }
  }
  if (!last_page) page.next_token = EncodeToken(has_upper ? upper : "", page.next_token);
  return page;
}

Status ChaosStore::Delete(std::string_view key) {
  RETURN_IF_ERROR(Before("delete", "delete " + std::string(key)));
  std::optional<ObjectInfo> info = InfoBeforeDelete(key);
  Status s = target_->Delete(key);
  After("delete");
  if (s.ok()) NoteDelete(key, std::move(info));
  return s;
}

Result<DeleteResult> ChaosStore::DeleteMany(const std::vector<std::string>& keys) {
  CrashPoint(CrashName("delete", "before"));
  DeleteResult injected;
  std::vector<std::string> forward;
  if (Selected("delete")) {
    if (spec_.latency_ms > 0) {
      clock_->SleepFor(std::chrono::milliseconds(spec_.latency_ms));
    }
    std::lock_guard<std::mutex> lock(mu_);
    for (const std::string& key : keys) {
      Status s = MaybeInjectLocked("delete " + key);
      if (s.ok()) {
        forward.push_back(key);
      } else {
        injected.failed.emplace_back(key, std::move(s));
      }
    }
  } else {
    forward = keys;
  }
  if (forward.empty() && !keys.empty()) return injected;

  std::vector<std::optional<ObjectInfo>> infos;
  if (spec_.list_lag_ms > 0) {
    infos.reserve(forward.size());
    for (const std::string& key : forward) infos.push_back(InfoBeforeDelete(key));
  }
  Result<DeleteResult> r = target_->DeleteMany(forward);
  After("delete");
  if (!r.ok()) return r;
  DeleteResult result = std::move(r).value();
  if (spec_.list_lag_ms > 0) {
    std::set<std::string> failed;
    for (const auto& [key, status] : result.failed) failed.insert(key);
    for (size_t i = 0; i < forward.size(); ++i) {
      if (failed.count(forward[i]) == 0) NoteDelete(forward[i], std::move(infos[i]));
    }
  }
  for (auto& entry : injected.failed) result.failed.push_back(std::move(entry));
  return result;
}

}  // namespace respawn

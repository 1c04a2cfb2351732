#include "storage/s3_xml.h"

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <pugixml.hpp>
#include <set>
#include <sstream>

#include "storage/sigv4.h"
#include "util/strings.h"

namespace respawn {
namespace {

// Parses `xml` into `doc`; InvalidArgument-free: callers decide what a bad document means.
bool Load(pugi::xml_document& doc, std::string_view xml) {
  return static_cast<bool>(doc.load_buffer(xml.data(), xml.size(), pugi::parse_default,
                                           pugi::encoding_utf8));
}

std::string Text(const pugi::xml_node& node, const char* child) {
  return node.child(child).text().as_string();
}

std::string Excerpt(std::string_view xml) {
  std::string s(xml.substr(0, 200));
  for (char& c : s) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return s;
}

constexpr const char* kS3Namespace = "http://s3.amazonaws.com/doc/2006-03-01/";

// `legacy`: the rule's prefix as <Prefix> directly in the <Rule> (the 2006 schema) instead of in
// a <Filter>; a configuration should not mix the two forms.
void AppendRule(pugi::xml_node parent, const LifecycleRule& rule, bool legacy = false) {
  pugi::xml_node r = parent.append_child("Rule");
  r.append_child("ID").text().set(rule.id.c_str());
  if (legacy) {
    r.append_child("Prefix").text().set(rule.prefix.c_str());
  } else {
    r.append_child("Filter").append_child("Prefix").text().set(rule.prefix.c_str());
  }
  r.append_child("Status").text().set("Enabled");
  if (rule.expiration_days > 0) {
    r.append_child("Expiration").append_child("Days").text().set(rule.expiration_days);
  }
  if (rule.abort_incomplete_upload_days > 0) {
    r.append_child("AbortIncompleteMultipartUpload")
        .append_child("DaysAfterInitiation")
        .text()
        .set(rule.abort_incomplete_upload_days);
  }
}

pugi::xml_node NewLifecycleRoot(pugi::xml_document& doc) {
  pugi::xml_node root = doc.append_child("LifecycleConfiguration");
  root.append_attribute("xmlns").set_value(kS3Namespace);
  return root;
}

std::string Serialize(const pugi::xml_document& doc) {
  std::ostringstream out;
  doc.save(out, "  ", pugi::format_indent | pugi::format_no_declaration, pugi::encoding_utf8);
  return out.str();
}

Result<pugi::xml_node> LifecycleRoot(pugi::xml_document& doc, std::string_view xml) {
  if (!Load(doc, xml) ||
      std::string_view(doc.document_element().name()) != "LifecycleConfiguration") {
    return InvalidArgument("not an S3 lifecycle configuration: " + Excerpt(xml));
  }
  return doc.document_element();
}

}  // namespace

std::string BuildLifecycleConfiguration(const std::vector<LifecycleRule>& rules) {
  pugi::xml_document doc;
  pugi::xml_node root = NewLifecycleRoot(doc);
  for (const LifecycleRule& rule : rules) AppendRule(root, rule);
  return Serialize(doc);
}

Result<LifecycleMerge> MergeLifecycleRules(std::string_view existing,
                                           const std::vector<LifecycleRule>& rules) {
  std::set<std::string> ours;
  for (const LifecycleRule& rule : rules) ours.insert(rule.id);
  LifecycleMerge merge;
  pugi::xml_document out;
  pugi::xml_node root = NewLifecycleRoot(out);
  bool legacy = false;
  if (!existing.empty()) {
    pugi::xml_document doc;
    ASSIGN_OR_RETURN(pugi::xml_node old_root, LifecycleRoot(doc, existing));
    for (pugi::xml_node rule = old_root.child("Rule"); rule; rule = rule.next_sibling("Rule")) {
      if (ours.count(Text(rule, "ID")) > 0) {
        ++merge.replaced;
      } else {
        root.append_copy(rule);
        ++merge.kept;
        if (rule.child("Prefix")) legacy = true;
      }
    }
  }
  for (const LifecycleRule& rule : rules) AppendRule(root, rule, legacy);
  merge.xml = Serialize(out);
  return merge;
}

Result<std::vector<std::string>> LifecycleRuleIds(std::string_view xml) {
  pugi::xml_document doc;
  ASSIGN_OR_RETURN(pugi::xml_node root, LifecycleRoot(doc, xml));
  std::vector<std::string> ids;
  for (pugi::xml_node rule = root.child("Rule"); rule; rule = rule.next_sibling("Rule")) {
    ids.push_back(Text(rule, "ID"));
  }
  return ids;
}

bool ParseS3Error(std::string_view xml, S3ErrorBody* out) {
  if (xml.empty()) return false;
  pugi::xml_document doc;
  if (!Load(doc, xml)) return false;
  pugi::xml_node root = doc.document_element();
  if (std::string_view(root.name()) != "Error") return false;
  out->code = Text(root, "Code");
  out->message = Text(root, "Message");
  return !out->code.empty();
}

Result<S3ListResult> ParseListObjectsV2(std::string_view xml) {
  pugi::xml_document doc;
  if (!Load(doc, xml)) {
    return Internal("unparsable ListObjectsV2 response: " + Excerpt(xml));
  }
  pugi::xml_node root = doc.document_element();
  if (std::string_view(root.name()) != "ListBucketResult") {
    return Internal("unexpected ListObjectsV2 response: " + Excerpt(xml));
  }
  const bool url_encoded = Text(root, "EncodingType") == "url";
  auto decode = [&](std::string s) { return url_encoded ? UriDecode(s, true) : s; };
  S3ListResult result;
  for (pugi::xml_node c = root.child("Contents"); c; c = c.next_sibling("Contents")) {
    ObjectInfo info;
    info.key = decode(Text(c, "Key"));
    info.size = std::strtoull(c.child("Size").text().as_string("0"), nullptr, 10);
    info.mtime_ms = ParseIso8601Ms(Text(c, "LastModified"));
    info.etag = StripQuotes(Text(c, "ETag"));
    result.objects.push_back(std::move(info));
  }
  for (pugi::xml_node p = root.child("CommonPrefixes"); p; p = p.next_sibling("CommonPrefixes")) {
    result.common_prefixes.push_back(decode(Text(p, "Prefix")));
  }
  result.truncated = Text(root, "IsTruncated") == "true";
  result.next_token = Text(root, "NextContinuationToken");
  return result;
}

Result<std::string> ParseUploadId(std::string_view xml) {
  pugi::xml_document doc;
  if (Load(doc, xml)) {
    std::string id = Text(doc.document_element(), "UploadId");
    if (!id.empty()) return id;
  }
  return Internal("CreateMultipartUpload response has no UploadId: " + Excerpt(xml));
}

std::string XmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

std::string BuildCompleteMultipartUpload(const std::vector<std::string>& etags) {
  std::string xml = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">";
  for (size_t i = 0; i < etags.size(); ++i) {
    xml += "<Part><PartNumber>" + std::to_string(i + 1) + "</PartNumber><ETag>" +
           XmlEscape(etags[i]) + "</ETag></Part>";
  }
  xml += "</CompleteMultipartUpload>";
  return xml;
}

bool XmlSafeKey(std::string_view key) {
  for (unsigned char c : key) {
    if (c < 0x20 && c != '\t' && c != '\n') return false;
    if (c == 0x7f) return false;
  }
  return true;
}

std::string BuildDeleteObjects(const std::vector<std::string>& keys, bool quiet) {
  std::string xml = "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">";
  if (quiet) xml += "<Quiet>true</Quiet>";
  for (const std::string& key : keys) {
    xml += "<Object><Key>" + XmlEscape(key) + "</Key></Object>";
  }
  xml += "</Delete>";
  return xml;
}

Result<std::vector<S3DeleteError>> ParseDeleteResult(std::string_view xml) {
  pugi::xml_document doc;
  if (!Load(doc, xml)) return Internal("unparsable DeleteObjects response: " + Excerpt(xml));
  pugi::xml_node root = doc.document_element();
  if (std::string_view(root.name()) != "DeleteResult") {
    return Internal("unexpected DeleteObjects response: " + Excerpt(xml));
  }
  std::vector<S3DeleteError> errors;
  for (pugi::xml_node e = root.child("Error"); e; e = e.next_sibling("Error")) {
    errors.push_back({Text(e, "Key"), Text(e, "Code"), Text(e, "Message")});
  }
  return errors;
}

int64_t ParseIso8601Ms(std::string_view text) {
  std::string s(text);
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  int consumed = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &year, &month, &day, &hour, &minute,
                  &second, &consumed) != 6) {
    return 0;
  }
  int64_t millis = 0;
  if (static_cast<size_t>(consumed) < s.size() && s[consumed] == '.') {
    int digits = 0;
    for (size_t i = consumed + 1; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) {
      if (digits < 3) millis = millis * 10 + (s[i] - '0');
      ++digits;
    }
    for (; digits < 3; ++digits) millis *= 10;
  }
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  time_t secs = timegm(&tm);
  return static_cast<int64_t>(secs) * 1000 + millis;
}

}  // namespace respawn

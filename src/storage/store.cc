#include "storage/store.h"

namespace respawn {

Result<std::vector<ObjectInfo>> ListAll(Store& store, std::string_view prefix) {
  std::vector<ObjectInfo> all;
  ListOptions options;
  options.prefix = std::string(prefix);
  for (;;) {
    ASSIGN_OR_RETURN(ListPage page, store.List(options));
    for (auto& o : page.objects) all.push_back(std::move(o));
    if (page.next_token.empty()) break;
    options.continuation_token = std::move(page.next_token);
  }
  return all;
}

Status ValidateKey(std::string_view key) {
  if (key.empty()) return InvalidArgument("object key is empty");
  if (key.size() > 1024) {
    return InvalidArgument("object key is " + std::to_string(key.size()) +
                           " bytes long; the limit is 1024");
  }
  if (key.find('\0') != std::string_view::npos) {
    return InvalidArgument("object key contains a NUL byte");
  }
  return Status::OK();
}

}  // namespace respawn

// Immutable data objects (invariant 1) and their verification on read (invariant 5).
//
// A data object is written once, before the commit that names it, under a key no other attempt
// can produce (Ledger::NewAttemptPrefix), and is never overwritten or renamed. Its size and
// XXH3-64 go into the commit record; every read checks both.
//
// Store calls here are made once: the store retries its own calls (storage/store.h).
#pragma once

#include <string>
#include <string_view>

#include "ledger/record.h"
#include "storage/store.h"

namespace respawn::ledger {

/// 32 lowercase hex digits from a CSPRNG-seeded generator (attempt ids, nonces, writer ids).
std::string NewRandomId();

/// Writes `data` as the new object `key` and returns its {key, size, xxh3}. Uses put-if-absent
/// where the store has it, so a name collision (a bug: names are unique by construction) is
/// Internal instead of a silent overwrite (AlreadyExists holding exactly these bytes is our own
/// write, landed by an attempt whose answer was lost: success).
/// Crash points: "ledger:before-data", "ledger:after-data".
Result<DataObject> PutData(Store& store, std::string_view key, std::string_view data);
/// Same for the local file at `path` (hashed first, then streamed). REQUIRES: the file does not
/// change until this returns.
Result<DataObject> PutDataFile(Store& store, std::string_view key, const std::string& path);
/// Same for a local file whose size and XXH3 the caller computed as it wrote it (`object.key` is
/// the key): the file is read once, by the upload. The key must be fresh (Ledger::RunDataKey,
/// NewAttemptPrefix): this is a plain put, not put-if-absent, so that a big file can go up as
/// an S3 multipart upload (put-if-absent on S3 is a single PUT). REQUIRES: `object` describes
/// the file, which does not change until this returns.
Result<DataObject> PutDataFile(Store& store, const DataObject& object, const std::string& path);

/// Reads the whole object and verifies size and checksum: DataLoss naming the key, with the
/// expected and actual values, on mismatch (and NotFound if it is gone).
Result<std::string> GetData(Store& store, const DataObject& object);
/// Streams the object to `path` and verifies it; on mismatch the file is removed.
Status GetDataToFile(Store& store, const DataObject& object, const std::string& path);

/// Checks that the object exists with the recorded size and, when `checksum` is set, reads it
/// in bounded chunks to check its XXH3 (memory stays bounded for huge objects).
Status VerifyData(Store& store, const DataObject& object, bool checksum = true);
/// Verifies every object of `entry` (in parallel); returns the first failure.
Status VerifyData(Store& store, const Entry& entry, bool checksum = true);

}  // namespace respawn::ledger

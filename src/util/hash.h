// Hashing: xxh3 (libxxhash) for checksums of data, SHA-256/HMAC/MD5 (OpenSSL) for signing.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "util/status.h"

namespace respawn {

/// 64-bit XXH3 of `data`.
uint64_t Xxh3(std::string_view data);
/// 16 lowercase hex digits of a 64-bit value.
std::string HexU64(uint64_t v);
/// The value of 1..16 hex digits (HexU64's inverse); InvalidArgument otherwise.
Result<uint64_t> ParseHexU64(std::string_view hex);
/// Lowercase hex of arbitrary bytes.
std::string HexEncode(std::string_view bytes);
std::string Base64Encode(std::string_view bytes);

/// Raw 32-byte SHA-256 digest.
std::string Sha256(std::string_view data);
std::string Sha256Hex(std::string_view data);
/// Raw 32-byte HMAC-SHA256.
std::string HmacSha256(std::string_view key, std::string_view data);
/// Raw 16-byte MD5 (S3 Content-MD5, required by DeleteObjects).
std::string Md5(std::string_view data);

/// Streaming XXH3-64 for large files.
class Xxh3Stream {
 public:
  Xxh3Stream();
  ~Xxh3Stream();
  Xxh3Stream(const Xxh3Stream&) = delete;
  Xxh3Stream& operator=(const Xxh3Stream&) = delete;
  void Update(std::string_view data);
  uint64_t Digest() const;

 private:
  void* state_;  // XXH3_state_t*
};

/// Streaming SHA-256 (payload hashes of large uploads).
class Sha256Stream {
 public:
  Sha256Stream();
  ~Sha256Stream();
  Sha256Stream(const Sha256Stream&) = delete;
  Sha256Stream& operator=(const Sha256Stream&) = delete;
  void Update(std::string_view data);
  std::string Digest();  // raw 32 bytes; call once

 private:
  void* ctx_;  // EVP_MD_CTX*
};

/// Size and XXH3-64 of a local file.
struct FileDigest {
  uint64_t size = 0;
  uint64_t xxh3 = 0;
};
/// Reads the local file at `path` once, hashing it. NotFound when it does not exist,
/// FailedPrecondition when it cannot be opened or read.
Result<FileDigest> DigestFile(const std::string& path);
/// XXH3-64 of the whole local file at `path` (DigestFile's hash; same errors).
Result<uint64_t> Xxh3File(const std::string& path);

}  // namespace respawn

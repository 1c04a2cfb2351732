// SigV4 against the examples published in the Amazon S3 API reference ("Authenticating
// Requests: Using the Authorization Header (AWS Signature Version 4)") and the signing-key
// derivation example of the AWS general reference.
#include "storage/sigv4.h"

#include <gtest/gtest.h>

#include "util/hash.h"

namespace respawn {
namespace {

constexpr char kAccessKey[] = "AKIAIOSFODNN7EXAMPLE";
constexpr char kSecret[] = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
constexpr char kHost[] = "examplebucket.s3.amazonaws.com";
constexpr char kDate[] = "20130524T000000Z";

SigV4Request ExampleRequest(std::string method, std::string uri, QueryParams query,
                            std::string payload_hash) {
  SigV4Request r;
  r.method = std::move(method);
  r.canonical_uri = std::move(uri);
  r.canonical_query = CanonicalQueryString(query);
  r.headers = {{"Host", kHost}, {"x-amz-date", kDate}, {"x-amz-content-sha256", payload_hash}};
  r.payload_hash = std::move(payload_hash);
  return r;
}

TEST(SigV4Test, GetObjectExample) {
  SigV4Request r = ExampleRequest("GET", "/test.txt", {}, std::string(kEmptyPayloadSha256));
  r.headers.emplace_back("Range", "bytes=0-9");
  SigV4Signer signer(kAccessKey, kSecret, "us-east-1");
  SigV4Signature sig = signer.Sign(r, kDate);
  EXPECT_EQ(sig.canonical_request,
            "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
            "x-amz-content-sha256:"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
            "x-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sig.string_to_sign,
            "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
            "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
  EXPECT_EQ(sig.signature, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  EXPECT_EQ(sig.authorization,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/"
            "aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

TEST(SigV4Test, PutObjectExample) {
  const std::string body = "Welcome to Amazon S3.";
  const std::string hash = Sha256Hex(body);
  ASSERT_EQ(hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  SigV4Request r = ExampleRequest("PUT", "/" + UriEncode("test$file.text", true), {}, hash);
  EXPECT_EQ(r.canonical_uri, "/test%24file.text");
  r.headers.emplace_back("Date", "Fri, 24 May 2013 00:00:00 GMT");
  r.headers.emplace_back("x-amz-storage-class", "REDUCED_REDUNDANCY");
  SigV4Signer signer(kAccessKey, kSecret, "us-east-1");
  SigV4Signature sig = signer.Sign(r, kDate);
  EXPECT_EQ(sig.signed_headers, "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class");
  EXPECT_EQ(sig.signature, "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

TEST(SigV4Test, GetBucketLifecycleExample) {
  SigV4Request r =
      ExampleRequest("GET", "/", {{"lifecycle", ""}}, std::string(kEmptyPayloadSha256));
  EXPECT_EQ(r.canonical_query, "lifecycle=");
  SigV4Signer signer(kAccessKey, kSecret, "us-east-1");
  EXPECT_EQ(signer.Sign(r, kDate).signature,
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}

TEST(SigV4Test, ListObjectsExampleSortsTheQuery) {
  SigV4Request r = ExampleRequest("GET", "/", {{"prefix", "J"}, {"max-keys", "2"}},
                                  std::string(kEmptyPayloadSha256));
  EXPECT_EQ(r.canonical_query, "max-keys=2&prefix=J");
  SigV4Signer signer(kAccessKey, kSecret, "us-east-1");
  EXPECT_EQ(signer.Sign(r, kDate).signature,
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

TEST(SigV4Test, SigningKeyDerivationExample) {
  EXPECT_EQ(HexEncode(SigV4SigningKey("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20150830",
                                      "us-east-1", "iam")),
            "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9");
}

TEST(SigV4Test, SigningKeyCacheFollowsTheDate) {
  // The same signer signs on two days; each must use that day's key.
  SigV4Request r = ExampleRequest("GET", "/test.txt", {}, std::string(kEmptyPayloadSha256));
  r.headers.emplace_back("Range", "bytes=0-9");
  SigV4Signer signer(kAccessKey, kSecret, "us-east-1");
  SigV4Request other = r;
  other.headers[1].second = "20130525T000000Z";
  std::string next_day = signer.Sign(other, "20130525T000000Z").signature;
  EXPECT_EQ(signer.Sign(r, kDate).signature,
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  EXPECT_NE(next_day, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  EXPECT_EQ(signer.Sign(other, "20130525T000000Z").signature, next_day);
}

TEST(SigV4Test, CanonicalHeadersTrimAndJoin) {
  SigV4Request r = ExampleRequest("GET", "/", {}, std::string(kEmptyPayloadSha256));
  r.headers.emplace_back("X-Amz-Meta-A", "  two   spaces  ");
  r.headers.emplace_back("x-amz-meta-a", "second");
  SigV4Signer signer(kAccessKey, kSecret, "us-east-1");
  SigV4Signature sig = signer.Sign(r, kDate);
  EXPECT_NE(sig.canonical_request.find("\nx-amz-meta-a:two spaces,second\n"), std::string::npos)
      << sig.canonical_request;
  EXPECT_EQ(sig.signed_headers, "host;x-amz-content-sha256;x-amz-date;x-amz-meta-a");
}

TEST(SigV4Test, UriEncodeKeepsOnlyUnreserved) {
  EXPECT_EQ(UriEncode("AZaz09-._~", false), "AZaz09-._~");
  EXPECT_EQ(UriEncode("dir/naïve file+1%.txt", true), "dir/na%C3%AFve%20file%2B1%25.txt");
  EXPECT_EQ(UriEncode("a/b", false), "a%2Fb");
  EXPECT_EQ(UriEncode("=&?#*!'()$,;:@[]", false),
            "%3D%26%3F%23%2A%21%27%28%29%24%2C%3B%3A%40%5B%5D");
  EXPECT_EQ(UriEncode(std::string("\x01\xff", 2), false), "%01%FF");
}

TEST(SigV4Test, UriDecodeReversesEncoding) {
  const std::string key = "sp ace/plus+plus/percent%20stays%2Fliteral ü";
  EXPECT_EQ(UriDecode(UriEncode(key, true), true), key);
  EXPECT_EQ(UriDecode("a+b%2Bc", true), "a b+c");
  EXPECT_EQ(UriDecode("a+b", false), "a+b");
  EXPECT_EQ(UriDecode("bad%zzescape%", true), "bad%zzescape%");
  EXPECT_EQ(UriDecode("%e2%82%ac", true), "\xe2\x82\xac");
}

TEST(SigV4Test, CanonicalQueryEncodesAndSorts) {
  EXPECT_EQ(CanonicalQueryString({{"uploadId", "a/b+c"}, {"partNumber", "2"}}),
            "partNumber=2&uploadId=a%2Fb%2Bc");
  EXPECT_EQ(CanonicalQueryString({{"delete", ""}}), "delete=");
  EXPECT_EQ(CanonicalQueryString({{"prefix", "dir/ä b"}, {"list-type", "2"}}),
            "list-type=2&prefix=dir%2F%C3%A4%20b");
  EXPECT_EQ(CanonicalQueryString({}), "");
}

TEST(SigV4Test, AmzDateFormat) {
  auto t = std::chrono::system_clock::from_time_t(1369353600);  // 2013-05-24 00:00:00 UTC
  EXPECT_EQ(AmzDate(t), "20130524T000000Z");
}

}  // namespace
}  // namespace respawn

// md5 secrets and salted responses checked against values PostgreSQL 15 computed itself.
#include "pgmux/auth/md5.h"

#include <catch2/catch.hpp>

using namespace pgmux::auth;

TEST_CASE("md5Hex matches the RFC 1321 test suite", "[auth][md5]") {
  CHECK(md5Hex("") == "d41d8cd98f00b204e9800998ecf8427e");
  CHECK(md5Hex("abc") == "900150983cd24fb0d6963f7d28e17f72");
}

TEST_CASE("md5Secret is md5 of password then user, as PostgreSQL stores it", "[auth][md5]") {
  // SELECT md5('pwalice');  and  SET password_encryption='md5'; CREATE ROLE bob PASSWORD 'pw';
  CHECK(md5Secret("alice", "pw") == "md5aa7bb6fc2700e717ae61ec5c1567469c");
  CHECK(md5Secret("bob", "pw") == "md59e8b47dd245ed6fdb3fd1657224800c4");
}

TEST_CASE("md5SaltedResponse hashes the stored hex with the 4-byte salt", "[auth][md5]") {
  // SELECT md5(convert_to('9e8b47dd245ed6fdb3fd1657224800c4','UTF8') || '\xdeadbeef'::bytea);
  const uint8_t salt[4] = {0xde, 0xad, 0xbe, 0xef};
  CHECK(md5SaltedResponse("md59e8b47dd245ed6fdb3fd1657224800c4", salt) ==
        "md5e09581bb3081ac3c222bdede108e094c");
  // A hand-written upper-case secret must give what the server computes from the lower-case one.
  CHECK(md5SaltedResponse("md59E8B47DD245ED6FDB3FD1657224800C4", salt) ==
        "md5e09581bb3081ac3c222bdede108e094c");
  const uint8_t otherSalt[4] = {0, 0, 0, 1};
  CHECK(md5SaltedResponse("md59e8b47dd245ed6fdb3fd1657224800c4", otherSalt) !=
        "md5e09581bb3081ac3c222bdede108e094c");
}

TEST_CASE("isMd5Secret wants md5 and exactly 32 hex digits", "[auth][md5]") {
  CHECK(isMd5Secret("md59e8b47dd245ed6fdb3fd1657224800c4"));
  CHECK(isMd5Secret("md59E8B47DD245ED6FDB3FD1657224800C4"));
  CHECK_FALSE(isMd5Secret("md59e8b47dd245ed6fdb3fd1657224800c"));    // 31 digits
  CHECK_FALSE(isMd5Secret("md59e8b47dd245ed6fdb3fd1657224800c4a"));  // 33 digits
  CHECK_FALSE(isMd5Secret("md59e8b47dd245ed6fdb3fd1657224800cg"));   // not hex
  CHECK_FALSE(isMd5Secret("MD59e8b47dd245ed6fdb3fd1657224800c4"));
  CHECK_FALSE(isMd5Secret("md5"));
  CHECK_FALSE(isMd5Secret(""));
}

TEST_CASE("constantTimeEquals compares contents and lengths", "[auth][md5]") {
  CHECK(constantTimeEquals("secret", "secret"));
  CHECK(constantTimeEquals("", ""));
  CHECK_FALSE(constantTimeEquals("secret", "secreT"));
  CHECK_FALSE(constantTimeEquals("secret", "secret2"));
  CHECK_FALSE(constantTimeEquals("", "x"));
  CHECK(constantTimeEquals(std::string_view("a\0b", 3), std::string_view("a\0b", 3)));
  CHECK_FALSE(constantTimeEquals(std::string_view("a\0b", 3), std::string_view("a\0c", 3)));
}

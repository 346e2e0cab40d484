// Encoders checked byte for byte and round-tripped through their decoders; decoders fed
// truncated and malformed bodies.
#include "pgmux/proto/messages.h"

#include <catch2/catch.hpp>
#include <functional>
#include <string>
#include <vector>

using namespace pgmux::proto;
using namespace std::string_literals;

namespace {

std::span<const uint8_t> spanOf(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

std::string u32(uint32_t v) {
  std::string out;
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
  return out;
}

// The body of the single whole message in `msg`, after checking its header.
std::string bodyOf(const std::string& msg, char type) {
  FrameHeader h{};
  REQUIRE(peekFrame(spanOf(msg), h) == DecodeStatus::Ok);
  CHECK(h.type == type);
  REQUIRE(h.totalSize() == msg.size());
  return msg.substr(kFrameHeaderSize);
}

std::string encoded(const std::function<void(std::string&)>& encode) {
  std::string out;
  encode(out);
  return out;
}

}  // namespace

TEST_CASE("encoders write the exact bytes of the protocol docs", "[proto]") {
  CHECK(encoded([](auto& o) { encodeReadyForQuery(o, 'I'); }) == "Z\0\0\0\x05I"s);
  CHECK(encoded([](auto& o) { encodeAuthenticationOk(o); }) == "R\0\0\0\x08\0\0\0\0"s);
  CHECK(encoded([](auto& o) { encodeAuthenticationCleartextPassword(o); }) == "R\0\0\0\x08\0\0\0\x03"s);
  const uint8_t salt[4] = {0x01, 0x02, 0xfe, 0xff};
  CHECK(encoded([&](auto& o) { encodeAuthenticationMD5Password(o, salt); }) ==
        "R\0\0\0\x0c\0\0\0\x05\x01\x02\xfe\xff"s);
  CHECK(encoded([](auto& o) { encodeAuthenticationSASL(o, {"SCRAM-SHA-256"}); }) ==
        "R\0\0\0\x17\0\0\0\x0aSCRAM-SHA-256\0\0"s);
  CHECK(encoded([](auto& o) { encodeBackendKeyData(o, 0x01020304, 0xa0b0c0d0); }) ==
        "K\0\0\0\x0c\x01\x02\x03\x04\xa0\xb0\xc0\xd0"s);
  CHECK(encoded([](auto& o) { encodeParameterStatus(o, "a", "b"); }) == "S\0\0\0\x08" "a\0b\0"s);
  CHECK(encoded([](auto& o) { encodeCommandComplete(o, "SELECT 1"); }) == "C\0\0\0\x0dSELECT 1\0"s);
  CHECK(encoded([](auto& o) { encodeEmptyQueryResponse(o); }) == "I\0\0\0\x04"s);
  CHECK(encoded([](auto& o) { encodeSync(o); }) == "S\0\0\0\x04"s);
  CHECK(encoded([](auto& o) { encodeTerminate(o); }) == "X\0\0\0\x04"s);
  CHECK(encoded([](auto& o) { encodeQuery(o, "select 1"); }) == "Q\0\0\0\x0dselect 1\0"s);
  CHECK(encoded([](auto& o) { encodePasswordMessage(o, "pw"); }) == "p\0\0\0\x07pw\0"s);
  CHECK(encoded([](auto& o) { encodeSASLResponse(o, "c=biws"); }) == "p\0\0\0\x0a" "c=biws"s);
  CHECK(encoded([](auto& o) { encodeSASLInitialResponse(o, "M", "xy"); }) ==
        "p\0\0\0\x0cM\0\0\0\0\x02xy"s);
  CHECK(encoded([](auto& o) { encodeCancelRequest(o, 7, 9); }) ==
        "\0\0\0\x10\x04\xd2\x16\x2e\0\0\0\x07\0\0\0\x09"s);
  CHECK(encoded([](auto& o) { encodeSSLResponse(o, 'N'); }) == "N");
  CHECK(encoded([](auto& o) { encodeErrorResponse(o, "FATAL", "08P01", "bad"); }) ==
        "E\0\0\0\x1fSFATAL\0VFATAL\0C08P01\0Mbad\0\0"s);
  CHECK(encoded([](auto& o) { encodeNoticeResponse(o, "NOTICE", "00000", "hi"); }) ==
        "N\0\0\0\x20SNOTICE\0VNOTICE\0C00000\0Mhi\0\0"s);
}

TEST_CASE("encodeRowDescription describes every column as text", "[proto]") {
  const std::string msg = encoded([](auto& o) { encodeRowDescription(o, {"id", "x"}); });
  const std::string field = "\0\0\0\0"s "\0\0"s "\0\0\0\x19"s "\xff\xff"s "\xff\xff\xff\xff"s "\0\0"s;
  CHECK(bodyOf(msg, 'T') == "\0\x02"s + "id\0"s + field + "x\0"s + field);
  CHECK(encoded([](auto& o) { encodeRowDescription(o, {}); }) == "T\0\0\0\x06\0\0"s);
}

TEST_CASE("encodeDataRow writes lengths, and -1 for NULL", "[proto]") {
  const std::string msg =
      encoded([](auto& o) { encodeDataRow(o, {"ab", "ignored", ""}, {false, true, false}); });
  CHECK(bodyOf(msg, 'D') == "\0\x03"s "\0\0\0\x02" "ab"s "\xff\xff\xff\xff"s "\0\0\0\0"s);
  // `nulls` may be empty or short: the missing entries are not NULL.
  CHECK(encoded([](auto& o) { encodeDataRow(o, {"v"}); }) == "D\0\0\0\x0b\0\x01\0\0\0\x01v"s);
}

TEST_CASE("encoders append to what is already in the buffer", "[proto]") {
  std::string out = "keep";
  encodeSync(out);
  encodeReadyForQuery(out, 'T');
  CHECK(out == "keepS\0\0\0\x04Z\0\0\0\x05T"s);
}

TEST_CASE("authentication requests round-trip", "[proto]") {
  AuthRequest req;
  REQUIRE(parseAuthenticationRequest(spanOf(bodyOf(encoded([](auto& o) { encodeAuthenticationOk(o); }), 'R')), req) ==
          DecodeStatus::Ok);
  CHECK(req.code == AuthCode::Ok);
  CHECK(req.data.empty());

  const auto clear = bodyOf(encoded([](auto& o) { encodeAuthenticationCleartextPassword(o); }), 'R');
  REQUIRE(parseAuthenticationRequest(spanOf(clear), req) == DecodeStatus::Ok);
  CHECK(req.code == AuthCode::CleartextPassword);

  const uint8_t salt[4] = {9, 8, 7, 6};
  const auto md5 = bodyOf(encoded([&](auto& o) { encodeAuthenticationMD5Password(o, salt); }), 'R');
  REQUIRE(parseAuthenticationRequest(spanOf(md5), req) == DecodeStatus::Ok);
  CHECK(req.code == AuthCode::MD5Password);
  CHECK(std::vector<uint8_t>(req.data.begin(), req.data.end()) == std::vector<uint8_t>{9, 8, 7, 6});

  const std::vector<std::string> mechs = {"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"};
  const auto sasl = bodyOf(encoded([&](auto& o) { encodeAuthenticationSASL(o, mechs); }), 'R');
  REQUIRE(parseAuthenticationRequest(spanOf(sasl), req) == DecodeStatus::Ok);
  CHECK(req.code == AuthCode::SASL);
  CHECK(parseSASLMechanisms(req.data) == mechs);

  const auto cont = bodyOf(encoded([](auto& o) { encodeAuthenticationSASLContinue(o, "r=abc,s=x,i=4096"); }), 'R');
  REQUIRE(parseAuthenticationRequest(spanOf(cont), req) == DecodeStatus::Ok);
  CHECK(req.code == AuthCode::SASLContinue);
  CHECK(std::string(req.data.begin(), req.data.end()) == "r=abc,s=x,i=4096");

  const auto fin = bodyOf(encoded([](auto& o) { encodeAuthenticationSASLFinal(o, "v=xyz"); }), 'R');
  REQUIRE(parseAuthenticationRequest(spanOf(fin), req) == DecodeStatus::Ok);
  CHECK(req.code == AuthCode::SASLFinal);
  CHECK(std::string(req.data.begin(), req.data.end()) == "v=xyz");
}

TEST_CASE("malformed authentication requests are Invalid", "[proto]") {
  AuthRequest req;
  CHECK(parseAuthenticationRequest(spanOf(""), req) == DecodeStatus::Invalid);
  CHECK(parseAuthenticationRequest(spanOf("\0\0\0"s), req) == DecodeStatus::Invalid);
  CHECK(parseAuthenticationRequest(spanOf(u32(0) + "x"), req) == DecodeStatus::Invalid);
  CHECK(parseAuthenticationRequest(spanOf(u32(5) + "abc"), req) == DecodeStatus::Invalid);
  CHECK(parseAuthenticationRequest(spanOf(u32(5) + "abcde"), req) == DecodeStatus::Invalid);
  CHECK(parseAuthenticationRequest(spanOf(u32(10)), req) == DecodeStatus::Invalid);
  CHECK(parseAuthenticationRequest(spanOf(u32(10) + "SCRAM-SHA-256\0"s), req) == DecodeStatus::Invalid);
  CHECK(parseAuthenticationRequest(spanOf(u32(10) + "A\0\0B"s), req) == DecodeStatus::Invalid);
  SECTION("a method pgmux cannot answer is Invalid but named") {
    CHECK(parseAuthenticationRequest(spanOf(u32(7)), req) == DecodeStatus::Invalid);
    CHECK(static_cast<uint32_t>(req.code) == 7);
  }
}

TEST_CASE("parseSASLMechanisms stops at the empty name or at unterminated bytes", "[proto]") {
  CHECK(parseSASLMechanisms(spanOf("A\0B\0\0C\0"s)) == std::vector<std::string>{"A", "B"});
  CHECK(parseSASLMechanisms(spanOf("A\0B"s)) == std::vector<std::string>{"A"});
  CHECK(parseSASLMechanisms(spanOf("")).empty());
}

TEST_CASE("ParameterStatus, BackendKeyData and ReadyForQuery round-trip", "[proto]") {
  std::string name, value;
  const auto ps = bodyOf(encoded([](auto& o) { encodeParameterStatus(o, "TimeZone", "UTC"); }), 'S');
  REQUIRE(parseParameterStatus(spanOf(ps), name, value) == DecodeStatus::Ok);
  CHECK(name == "TimeZone");
  CHECK(value == "UTC");
  const auto empty = bodyOf(encoded([](auto& o) { encodeParameterStatus(o, "application_name", ""); }), 'S');
  REQUIRE(parseParameterStatus(spanOf(empty), name, value) == DecodeStatus::Ok);
  CHECK(value.empty());

  uint32_t pid = 0, key = 0;
  const auto kd = bodyOf(encoded([](auto& o) { encodeBackendKeyData(o, 0xfffffffe, 12345); }), 'K');
  REQUIRE(parseBackendKeyData(spanOf(kd), pid, key) == DecodeStatus::Ok);
  CHECK(pid == 0xfffffffeu);
  CHECK(key == 12345u);

  const char sent = GENERATE('I', 'T', 'E');
  char status = 0;
  const auto rfq = bodyOf(encoded([&](auto& o) { encodeReadyForQuery(o, sent); }), 'Z');
  REQUIRE(parseReadyForQuery(spanOf(rfq), status) == DecodeStatus::Ok);
  CHECK(status == sent);
}

TEST_CASE("ParameterStatus, BackendKeyData and ReadyForQuery reject bad bodies", "[proto]") {
  std::string name, value;
  CHECK(parseParameterStatus(spanOf("a\0b\0x"s), name, value) == DecodeStatus::Invalid);
  uint32_t pid = 0, key = 0;
  CHECK(parseBackendKeyData(spanOf(u32(1) + u32(2) + "x"), pid, key) == DecodeStatus::Invalid);
  char status = 0;
  CHECK(parseReadyForQuery(spanOf("X"), status) == DecodeStatus::Invalid);
  CHECK(parseReadyForQuery(spanOf("II"), status) == DecodeStatus::Invalid);
}

TEST_CASE("ErrorResponse and NoticeResponse round-trip", "[proto]") {
  ErrorFields f;
  const auto err = bodyOf(encoded([](auto& o) { encodeErrorResponse(o, "FATAL", "53300", "too many"); }), 'E');
  REQUIRE(parseErrorResponse(spanOf(err), f) == DecodeStatus::Ok);
  CHECK(f.severity == "FATAL");
  CHECK(f.sqlstate == "53300");
  CHECK(f.message == "too many");
  CHECK(f.detail.empty());

  const auto notice = bodyOf(encoded([](auto& o) { encodeNoticeResponse(o, "WARNING", "01000", "careful"); }), 'N');
  REQUIRE(parseErrorResponse(spanOf(notice), f) == DecodeStatus::Ok);
  CHECK(f.severity == "WARNING");
  CHECK(f.message == "careful");
}

TEST_CASE("parseErrorResponse skips field codes it does not know", "[proto]") {
  const std::string body =
      "SERROR\0VERROR\0C42P01\0Mrelation \"t\" does not exist\0P15\0Ddetail here\0Fparse_relation.c\0"
      "L1392\0Rfoo\0!future field\0\0"s;
  ErrorFields f;
  f.detail = "stale";
  REQUIRE(parseErrorResponse(spanOf(body), f) == DecodeStatus::Ok);
  CHECK(f.severity == "ERROR");
  CHECK(f.sqlstate == "42P01");
  CHECK(f.message == "relation \"t\" does not exist");
  CHECK(f.detail == "detail here");
}

TEST_CASE("parseErrorResponse rejects a missing terminator and trailing bytes", "[proto]") {
  ErrorFields f;
  CHECK(parseErrorResponse(spanOf(""), f) == DecodeStatus::Invalid);
  CHECK(parseErrorResponse(spanOf("SERROR\0"s), f) == DecodeStatus::Invalid);
  CHECK(parseErrorResponse(spanOf("SERROR\0\0x"s), f) == DecodeStatus::Invalid);
  CHECK(parseErrorResponse(spanOf("\0"s), f) == DecodeStatus::Ok);  // no fields at all
}

TEST_CASE("frontend password and SASL messages round-trip", "[proto]") {
  std::string password;
  const auto pw = bodyOf(encoded([](auto& o) { encodePasswordMessage(o, "s3cret"); }), 'p');
  REQUIRE(parsePasswordMessage(spanOf(pw), password) == DecodeStatus::Ok);
  CHECK(password == "s3cret");

  std::string mech, data;
  const std::string first = "n,,n=,r=rOprNGfwEbeRWgbNEkqO";
  const auto init = bodyOf(encoded([&](auto& o) { encodeSASLInitialResponse(o, "SCRAM-SHA-256", first); }), 'p');
  REQUIRE(parseSASLInitialResponse(spanOf(init), mech, data) == DecodeStatus::Ok);
  CHECK(mech == "SCRAM-SHA-256");
  CHECK(data == first);

  const auto none = bodyOf(encoded([](auto& o) { encodeSASLInitialResponse(o, "SCRAM-SHA-256", ""); }), 'p');
  REQUIRE(parseSASLInitialResponse(spanOf(none), mech, data) == DecodeStatus::Ok);
  CHECK(data.empty());
}

TEST_CASE("SASLInitialResponse data length -1 means no data; other bad lengths are Invalid", "[proto]") {
  std::string mech, data = "stale";
  REQUIRE(parseSASLInitialResponse(spanOf("M\0"s + u32(0xffffffff)), mech, data) == DecodeStatus::Ok);
  CHECK(mech == "M");
  CHECK(data.empty());
  CHECK(parseSASLInitialResponse(spanOf("M\0"s + u32(0xfffffffe)), mech, data) == DecodeStatus::Invalid);
  CHECK(parseSASLInitialResponse(spanOf("M\0"s + u32(0x7fffffff) + "ab"), mech, data) == DecodeStatus::Invalid);
  CHECK(parseSASLInitialResponse(spanOf("M\0"s + u32(3) + "ab"), mech, data) == DecodeStatus::Invalid);
  CHECK(parseSASLInitialResponse(spanOf("M\0"s + u32(1) + "ab"), mech, data) == DecodeStatus::Invalid);
}

TEST_CASE("Query round-trips and must be exactly one NUL-terminated string", "[proto]") {
  std::string_view sql;
  const auto q = bodyOf(encoded([](auto& o) { encodeQuery(o, "select 1; select 2"); }), 'Q');
  REQUIRE(parseQuery(spanOf(q), sql) == DecodeStatus::Ok);
  CHECK(sql == "select 1; select 2");
  CHECK(parseQuery(spanOf("select 1"), sql) == DecodeStatus::Invalid);
  CHECK(parseQuery(spanOf("select 1\0x\0"s), sql) == DecodeStatus::Invalid);
  std::string password;
  CHECK(parsePasswordMessage(spanOf("pw\0\0"s), password) == DecodeStatus::Invalid);
}

TEST_CASE("every strict prefix of a valid body is Invalid", "[proto]") {
  using Decoder = std::function<DecodeStatus(std::span<const uint8_t>)>;
  const uint8_t salt[4] = {1, 2, 3, 4};
  std::string s1, s2;
  std::string_view sv;
  uint32_t a = 0, b = 0;
  char c = 0;
  ErrorFields f;
  AuthRequest req;
  const std::vector<std::pair<std::string, Decoder>> cases = {
      {bodyOf(encoded([](auto& o) { encodeParameterStatus(o, "DateStyle", "ISO, MDY"); }), 'S'),
       [&](auto b_) { return parseParameterStatus(b_, s1, s2); }},
      {bodyOf(encoded([](auto& o) { encodeBackendKeyData(o, 1, 2); }), 'K'),
       [&](auto b_) { return parseBackendKeyData(b_, a, b); }},
      {bodyOf(encoded([](auto& o) { encodeReadyForQuery(o, 'T'); }), 'Z'),
       [&](auto b_) { return parseReadyForQuery(b_, c); }},
      {bodyOf(encoded([](auto& o) { encodeErrorResponse(o, "ERROR", "42601", "syntax"); }), 'E'),
       [&](auto b_) { return parseErrorResponse(b_, f); }},
      {bodyOf(encoded([](auto& o) { encodePasswordMessage(o, "pw"); }), 'p'),
       [&](auto b_) { return parsePasswordMessage(b_, s1); }},
      {bodyOf(encoded([](auto& o) { encodeSASLInitialResponse(o, "SCRAM-SHA-256", "n,,n=,r=x"); }), 'p'),
       [&](auto b_) { return parseSASLInitialResponse(b_, s1, s2); }},
      {bodyOf(encoded([](auto& o) { encodeQuery(o, "select 1"); }), 'Q'),
       [&](auto b_) { return parseQuery(b_, sv); }},
      {bodyOf(encoded([&](auto& o) { encodeAuthenticationMD5Password(o, salt); }), 'R'),
       [&](auto b_) { return parseAuthenticationRequest(b_, req); }},
      {bodyOf(encoded([](auto& o) { encodeAuthenticationSASL(o, {"SCRAM-SHA-256"}); }), 'R'),
       [&](auto b_) { return parseAuthenticationRequest(b_, req); }},
  };
  for (const auto& [body, decode] : cases) {
    INFO("body " << body.size() << " bytes: " << body);
    REQUIRE(decode(spanOf(body)) == DecodeStatus::Ok);
    // Each prefix is copied to its own buffer so a read past its end is caught by ASan.
    for (size_t keep = 0; keep < body.size(); ++keep) {
      INFO("keep " << keep);
      const std::vector<uint8_t> prefix(body.begin(), body.begin() + static_cast<std::ptrdiff_t>(keep));
      CHECK(decode(prefix) == DecodeStatus::Invalid);
    }
  }
}

// parseStartupPacket fed packets split at every offset, and every way a startup packet is malformed.
#include "pgmux/proto/startup.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "pgmux/proto/messages.h"

using namespace pgmux::proto;
using namespace std::string_literals;

namespace {

std::vector<uint8_t> bytesOf(std::string_view s) { return {s.begin(), s.end()}; }

std::string u32(uint32_t v) {
  std::string out;
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
  return out;
}

// An untyped packet: int32 length (counting itself), then `rest`.
std::string packet(std::string_view rest) {
  return u32(static_cast<uint32_t>(rest.size() + 4)) + std::string(rest);
}

DecodeStatus parse(std::string_view s, StartupPacket& out, size_t& consumed) {
  const auto bytes = bytesOf(s);
  return parseStartupPacket(bytes, out, consumed);
}

DecodeStatus parse(std::string_view s) {
  StartupPacket out;
  size_t consumed = 0;
  return parse(s, out, consumed);
}

using Params = std::vector<std::pair<std::string, std::string>>;

}  // namespace

TEST_CASE("encodeStartupMessage writes length, 3.0, name/value pairs and a final NUL", "[proto]") {
  std::string out = "prefix";
  encodeStartupMessage(out, {{"user", "u"}});
  CHECK(out == "prefix\0\0\0\x10\0\x03\0\0user\0u\0\0"s);
}

TEST_CASE("a StartupMessage round-trips through parseStartupPacket at every split", "[proto]") {
  const Params params = {{"user", "alice"}, {"database", "shop"}, {"application_name", ""},
                         {"options", "-c geqo=off"}};
  std::string stream;
  encodeStartupMessage(stream, params);
  const size_t len = stream.size();
  encodeQuery(stream, "select 1");  // bytes of the next message must be left alone
  const auto bytes = bytesOf(stream);

  const auto cut = GENERATE_COPY(range<size_t>(0, len));
  StartupPacket out;
  size_t consumed = 99;
  CHECK(parseStartupPacket(std::span(bytes).first(cut), out, consumed) == DecodeStatus::NeedMore);
  CHECK(consumed == 0);

  REQUIRE(parseStartupPacket(bytes, out, consumed) == DecodeStatus::Ok);
  CHECK(consumed == len);
  CHECK(out.kind == StartupKind::Startup);
  CHECK(out.protocol == kProtocolV3);
  CHECK(out.params == params);
  REQUIRE(out.find("database") != nullptr);
  CHECK(*out.find("database") == "shop");
  REQUIRE(out.find("application_name") != nullptr);
  CHECK(out.find("application_name")->empty());
  CHECK(out.find("password") == nullptr);
}

TEST_CASE("a StartupMessage may carry no parameters at all", "[proto]") {
  StartupPacket out;
  size_t consumed = 0;
  const std::string bytes("\0\0\0\x09\0\x03\0\0\0", 9);
  REQUIRE(parse(bytes, out, consumed) == DecodeStatus::Ok);
  CHECK(consumed == 9);
  CHECK(out.params.empty());
  std::string encoded;
  encodeStartupMessage(encoded, {});
  CHECK(encoded == bytes);
}

TEST_CASE("a StartupMessage with a newer 3.x minor version is accepted", "[proto]") {
  StartupPacket out;
  size_t consumed = 0;
  REQUIRE(parse(packet(u32(0x00030002) + "user\0u\0\0"s), out, consumed) ==
          DecodeStatus::Ok);
  CHECK(out.protocol == 0x00030002u);
  CHECK(out.params == Params{{"user", "u"}});
}

TEST_CASE("SSLRequest, GSSENCRequest and CancelRequest are recognised", "[proto]") {
  StartupPacket out;
  size_t consumed = 0;
  REQUIRE(parse(packet(u32(kSSLRequestCode)), out, consumed) == DecodeStatus::Ok);
  CHECK(out.kind == StartupKind::SSLRequest);
  CHECK(consumed == 8);

  REQUIRE(parse(packet(u32(kGSSENCRequestCode)), out, consumed) == DecodeStatus::Ok);
  CHECK(out.kind == StartupKind::GSSENCRequest);

  std::string cancel;
  encodeCancelRequest(cancel, 4242, 0xdeadbeef);
  CHECK(cancel == packet(u32(80877102) + u32(4242) + u32(0xdeadbeef)));
  REQUIRE(parse(cancel, out, consumed) == DecodeStatus::Ok);
  CHECK(out.kind == StartupKind::CancelRequest);
  CHECK(consumed == 16);
  CHECK(out.cancelPid == 4242);
  CHECK(out.cancelKey == 0xdeadbeefu);
  CHECK(out.params.empty());
}

TEST_CASE("a CancelRequest split at every offset needs the whole packet", "[proto]") {
  std::string s;
  encodeCancelRequest(s, 1, 2);
  const auto bytes = bytesOf(s);
  const auto cut = GENERATE_COPY(range<size_t>(0, bytes.size()));
  StartupPacket out;
  size_t consumed = 0;
  CHECK(parseStartupPacket(std::span(bytes).first(cut), out, consumed) == DecodeStatus::NeedMore);
}

TEST_CASE("a bad startup length is Invalid as soon as its 4 bytes are in", "[proto]") {
  const uint32_t len = GENERATE(0u, 3u, 4u, 7u, kMaxStartupPacket + 1, 0x7fffffffu, 0xffffffffu);
  const auto bytes = bytesOf(u32(len) + u32(kProtocolV3));
  const auto cut = GENERATE(range<size_t>(4, 9));
  StartupPacket out;
  size_t consumed = 0;
  CHECK(parseStartupPacket(std::span(bytes).first(cut), out, consumed) == DecodeStatus::Invalid);
}

TEST_CASE("a startup packet of exactly kMaxStartupPacket bytes is accepted", "[proto]") {
  const std::string value(kMaxStartupPacket - 8 - 7, 'v');  // "user\0" + value + "\0\0"
  const std::string s = packet(u32(kProtocolV3) + std::string("user\0", 5) + value + std::string("\0\0", 2));
  REQUIRE(s.size() == kMaxStartupPacket);
  CHECK(parse(s) == DecodeStatus::Ok);
}

TEST_CASE("malformed startup packets are Invalid", "[proto]") {
  const std::string v3 = u32(kProtocolV3);
  SECTION("unknown request code") { CHECK(parse(packet(u32((1234u << 16) | 5555u))) == DecodeStatus::Invalid); }
  SECTION("protocol major 2") { CHECK(parse(packet(u32(0x00020000) + std::string(1, '\0'))) == DecodeStatus::Invalid); }
  SECTION("protocol major 4") { CHECK(parse(packet(u32(0x00040000) + std::string(1, '\0'))) == DecodeStatus::Invalid); }
  SECTION("SSLRequest with trailing bytes") { CHECK(parse(packet(u32(kSSLRequestCode) + u32(0))) == DecodeStatus::Invalid); }
  SECTION("GSSENCRequest with trailing bytes") { CHECK(parse(packet(u32(kGSSENCRequestCode) + u32(0))) == DecodeStatus::Invalid); }
  SECTION("CancelRequest without its key") { CHECK(parse(packet(u32(kCancelRequestCode) + u32(1))) == DecodeStatus::Invalid); }
  SECTION("CancelRequest too long") { CHECK(parse(packet(u32(kCancelRequestCode) + u32(1) + u32(2) + u32(3))) == DecodeStatus::Invalid); }
  SECTION("no parameters and no terminator") { CHECK(parse(packet(v3)) == DecodeStatus::Invalid); }
  SECTION("missing final terminator") { CHECK(parse(packet(v3 + std::string("user\0u\0", 7))) == DecodeStatus::Invalid); }
  SECTION("name without value") { CHECK(parse(packet(v3 + std::string("user\0", 5))) == DecodeStatus::Invalid); }
  SECTION("name without its NUL") { CHECK(parse(packet(v3 + std::string("user", 4))) == DecodeStatus::Invalid); }
  SECTION("value without its NUL") { CHECK(parse(packet(v3 + std::string("user\0u", 6))) == DecodeStatus::Invalid); }
  SECTION("bytes after the terminator") { CHECK(parse(packet(v3 + std::string("\0x\0y\0\0", 6))) == DecodeStatus::Invalid); }
}

TEST_CASE("every truncation of a StartupMessage's parameters is Invalid", "[proto]") {
  // The length field is rewritten to match, so the parser sees a complete but short packet.
  const std::string params = "user\0alice\0database\0shop\0\0"s;
  const auto keep = GENERATE_COPY(range<size_t>(0, params.size()));
  CHECK(parse(packet(u32(kProtocolV3) + params.substr(0, keep))) == DecodeStatus::Invalid);
}

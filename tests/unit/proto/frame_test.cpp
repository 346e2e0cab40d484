// FrameScanner and peekFrame fed byte streams split at every offset, without sockets.
#include "pgmux/proto/frame.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "pgmux/proto/messages.h"

using namespace pgmux::proto;

namespace {

std::vector<uint8_t> bytesOf(std::string_view s) { return {s.begin(), s.end()}; }

// A typed message with a correct length field.
std::string frame(char type, std::string_view body) {
  const auto len = static_cast<uint32_t>(body.size() + 4);
  std::string out(1, type);
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((len >> shift) & 0xff));
  out.append(body);
  return out;
}

// A header with an arbitrary length field, for lengths a well-formed message cannot have.
std::string rawHeader(char type, uint32_t len) {
  std::string out(1, type);
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((len >> shift) & 0xff));
  return out;
}

// What a scan saw, bodies copied out because the scanner's spans die at the next call.
struct Seen {
  char type;
  uint32_t length;
  bool captured;
  std::string body;
  bool operator==(const Seen&) const = default;
};

struct ScanResult {
  std::vector<Seen> messages;
  bool invalid = false;
};

ScanResult scanChunks(FrameScanner& scanner, const std::vector<std::span<const uint8_t>>& chunks) {
  ScanResult res;
  for (const auto chunk : chunks) {
    size_t pos = 0;
    for (;;) {
      ScannedMessage msg;
      const DecodeStatus st = scanner.next(chunk, pos, msg);
      if (st == DecodeStatus::Invalid) {
        res.invalid = true;
        return res;
      }
      if (st == DecodeStatus::NeedMore) {
        REQUIRE(pos == chunk.size());
        break;
      }
      REQUIRE(pos <= chunk.size());
      res.messages.push_back(
          {msg.type, msg.length, msg.captured, std::string(msg.body.begin(), msg.body.end())});
    }
  }
  return res;
}

ScanResult scanSplit(FrameScanner& scanner, std::span<const uint8_t> stream, size_t cut) {
  return scanChunks(scanner, {stream.first(cut), stream.subspan(cut)});
}

ScanResult scanBytewise(FrameScanner& scanner, std::span<const uint8_t> stream) {
  std::vector<std::span<const uint8_t>> chunks;
  for (size_t i = 0; i < stream.size(); ++i) chunks.push_back(stream.subspan(i, 1));
  return scanChunks(scanner, chunks);
}

constexpr size_t kCaptureLimit = 16;

}  // namespace

TEST_CASE("peekFrame needs the whole 5-byte header", "[proto]") {
  const auto bytes = bytesOf(frame('Z', "I"));
  const auto cut = GENERATE(range<size_t>(0, 5));
  FrameHeader h{};
  REQUIRE(peekFrame(std::span(bytes).first(cut), h) == DecodeStatus::NeedMore);
}

TEST_CASE("peekFrame reads type and length, big-endian", "[proto]") {
  const auto bytes = bytesOf(frame('T', std::string(300, 'x')));
  FrameHeader h{};
  REQUIRE(peekFrame(bytes, h) == DecodeStatus::Ok);
  CHECK(h.type == 'T');
  CHECK(h.length == 304);
  CHECK(h.bodySize() == 300);
  CHECK(h.totalSize() == bytes.size());
}

TEST_CASE("peekFrame rejects lengths below 4, negative, or above maxPacketSize", "[proto]") {
  const uint32_t len = GENERATE(0u, 1u, 3u, 0xffffffffu, 0x80000000u, 1001u);
  const auto bytes = bytesOf(rawHeader('Q', len));
  FrameHeader h{};
  CHECK(peekFrame(bytes, h, 1000) == DecodeStatus::Invalid);
}

TEST_CASE("peekFrame accepts the boundary lengths 4 and maxPacketSize", "[proto]") {
  FrameHeader h{};
  CHECK(peekFrame(bytesOf(rawHeader('S', 4)), h, 1000) == DecodeStatus::Ok);
  CHECK(h.bodySize() == 0);
  CHECK(peekFrame(bytesOf(rawHeader('Q', 1000)), h, 1000) == DecodeStatus::Ok);
  CHECK(peekFrame(bytesOf(rawHeader('Q', 0x7fffffffu)), h) == DecodeStatus::Ok);
}

TEST_CASE("FrameScanner yields the same messages however the stream is split", "[proto]") {
  const std::string big(100, 'b');               // above the capture limit
  const std::string atLimit(kCaptureLimit, 'L');  // exactly at it: captured
  const std::string stream = frame('S', "") + frame('Q', "select 1") + frame('D', big) +
                             frame('d', atLimit) + frame('Z', "I") + frame('d', std::string(kCaptureLimit + 1, 'o'));
  const std::vector<Seen> expected = {
      {'S', 4, true, ""},
      {'Q', 12, true, "select 1"},
      {'D', 104, false, ""},
      {'d', static_cast<uint32_t>(kCaptureLimit + 4), true, atLimit},
      {'Z', 5, true, "I"},
      {'d', static_cast<uint32_t>(kCaptureLimit + 5), false, ""},
  };
  const auto bytes = bytesOf(stream);

  SECTION("two chunks, cut at every offset") {
    const auto cut = GENERATE_COPY(range<size_t>(0, bytes.size() + 1));
    FrameScanner scanner(kDefaultMaxPacketSize, kCaptureLimit);
    const auto res = scanSplit(scanner, bytes, cut);
    CHECK_FALSE(res.invalid);
    CHECK(res.messages == expected);
    CHECK(scanner.atBoundary());
  }
  SECTION("one byte at a time") {
    FrameScanner scanner(kDefaultMaxPacketSize, kCaptureLimit);
    const auto res = scanBytewise(scanner, bytes);
    CHECK_FALSE(res.invalid);
    CHECK(res.messages == expected);
  }
}

TEST_CASE("FrameScanner points into the chunk when the body lies wholly inside it", "[proto]") {
  const auto bytes = bytesOf(frame('Q', "select 1") + frame('Z', "T"));
  FrameScanner scanner;
  size_t pos = 0;
  ScannedMessage msg;
  REQUIRE(scanner.next(bytes, pos, msg) == DecodeStatus::Ok);
  CHECK(pos == 13);
  CHECK(msg.body.data() == bytes.data() + 5);
  REQUIRE(scanner.next(bytes, pos, msg) == DecodeStatus::Ok);
  CHECK(pos == bytes.size());
  CHECK(msg.body.data() == bytes.data() + 18);
  CHECK(scanner.next(bytes, pos, msg) == DecodeStatus::NeedMore);
}

TEST_CASE("FrameScanner is at a boundary only between messages", "[proto]") {
  const auto bytes = bytesOf(frame('Q', "select 1"));
  const auto cut = GENERATE_COPY(range<size_t>(1, bytes.size()));
  FrameScanner scanner;
  size_t pos = 0;
  ScannedMessage msg;
  CHECK(scanner.atBoundary());
  REQUIRE(scanner.next(std::span(bytes).first(cut), pos, msg) == DecodeStatus::NeedMore);
  CHECK_FALSE(scanner.atBoundary());
  pos = 0;
  REQUIRE(scanner.next(std::span(bytes).subspan(cut), pos, msg) == DecodeStatus::Ok);
  CHECK(scanner.atBoundary());
}

TEST_CASE("FrameScanner reports a bad length as Invalid wherever the stream is cut", "[proto]") {
  const uint32_t badLen = GENERATE(0u, 3u, 0xffffffffu, 0x80000000u, 4097u);
  const auto bytes = bytesOf(frame('Z', "I") + rawHeader('D', badLen) + std::string(8, 'x'));
  const auto cut = GENERATE_COPY(range<size_t>(0, bytes.size() + 1));
  FrameScanner scanner(4096, kCaptureLimit);
  const auto res = scanSplit(scanner, bytes, cut);
  CHECK(res.invalid);
  REQUIRE(res.messages.size() == 1);
  CHECK(res.messages[0] == Seen{'Z', 5, true, "I"});
}

TEST_CASE("FrameScanner stays Invalid once the stream is dead", "[proto]") {
  const auto bytes = bytesOf(rawHeader('D', 2));
  FrameScanner scanner;
  size_t pos = 0;
  ScannedMessage msg;
  CHECK(scanner.next(bytes, pos, msg) == DecodeStatus::Invalid);
  CHECK(scanner.next(bytes, pos, msg) == DecodeStatus::Invalid);
}

TEST_CASE("FrameScanner applies a lowered maxPacketSize to the next header", "[proto]") {
  const auto bytes = bytesOf(frame('Q', std::string(50, 'q')));
  FrameScanner scanner;
  scanner.setMaxPacketSize(40);
  size_t pos = 0;
  ScannedMessage msg;
  CHECK(scanner.next(bytes, pos, msg) == DecodeStatus::Invalid);
}

TEST_CASE("FrameScanner::reset drops a partly read message", "[proto]") {
  const auto partial = bytesOf(frame('Q', "select 1").substr(0, 7));
  const auto whole = bytesOf(frame('Z', "E"));
  FrameScanner scanner;
  size_t pos = 0;
  ScannedMessage msg;
  REQUIRE(scanner.next(partial, pos, msg) == DecodeStatus::NeedMore);
  scanner.reset();
  CHECK(scanner.atBoundary());
  pos = 0;
  REQUIRE(scanner.next(whole, pos, msg) == DecodeStatus::Ok);
  CHECK(msg.type == 'Z');
  CHECK(std::string(msg.body.begin(), msg.body.end()) == "E");
}

TEST_CASE("a server's query response scans the same at every split", "[proto]") {
  std::string stream;
  encodeRowDescription(stream, {"id", "name"});
  encodeDataRow(stream, {"1", "alice"});
  encodeDataRow(stream, {"2", ""}, {false, true});
  encodeDataRow(stream, {"3", std::string(200, 'z')});  // past the 64-byte capture limit below
  encodeCommandComplete(stream, "SELECT 3");
  encodeReadyForQuery(stream, 'I');
  const auto bytes = bytesOf(stream);

  FrameScanner whole(kDefaultMaxPacketSize, 64);
  const auto expected = scanChunks(whole, {std::span<const uint8_t>(bytes)});
  REQUIRE_FALSE(expected.invalid);
  REQUIRE(expected.messages.size() == 6);
  std::string types;
  for (const auto& m : expected.messages) types.push_back(m.type);
  CHECK(types == "TDDDCZ");
  CHECK_FALSE(expected.messages[3].captured);  // the 200-byte row is past the 64-byte limit
  CHECK(expected.messages[4].body == std::string("SELECT 3\0", 9));

  const auto cut = GENERATE_COPY(range<size_t>(0, bytes.size() + 1));
  FrameScanner scanner(kDefaultMaxPacketSize, 64);
  const auto res = scanSplit(scanner, bytes, cut);
  CHECK_FALSE(res.invalid);
  CHECK(res.messages == expected.messages);
  char status = 0;
  const auto& last = res.messages.back().body;
  REQUIRE(parseReadyForQuery(std::span(reinterpret_cast<const uint8_t*>(last.data()), last.size()),
                             status) == DecodeStatus::Ok);
  CHECK(status == 'I');
}

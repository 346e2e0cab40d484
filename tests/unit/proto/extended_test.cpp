// The extended-query codec: Parse round trips keep the definition bytes exactly, a Bind's head is
// found in a message that arrives a byte at a time and rewritten with a name of another length,
// Describe/Close targets are checked, and hostile bodies are Invalid without reading past the end.
#include "pgmux/proto/extended.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

using namespace pgmux::proto;
using namespace std::string_literals;

namespace {

std::span<const uint8_t> spanOf(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

std::string_view viewOf(std::span<const uint8_t> s) {
  return {reinterpret_cast<const char*>(s.data()), s.size()};
}

std::string u16(uint16_t v) { return {static_cast<char>(v >> 8), static_cast<char>(v & 0xff)}; }

std::string u32(uint32_t v) {
  std::string out;
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
  return out;
}

// A message of `type` around `body`, with its length field.
std::string frame(char type, const std::string& body) {
  return std::string(1, type) + u32(static_cast<uint32_t>(body.size() + 4)) + body;
}

// What follows a Parse's name: query, NUL, Int16 count, Int32 OIDs.
std::string definition(const std::string& query, const std::vector<uint32_t>& oids) {
  std::string d = query + '\0' + u16(static_cast<uint16_t>(oids.size()));
  for (uint32_t o : oids) d += u32(o);
  return d;
}

// A whole Bind: names, parameter formats, parameters (length-prefixed, or NULL as -1), result
// formats.
std::string bindMessage(const std::string& portal, const std::string& statement, const std::vector<std::string>& params,
                        bool withNull = false) {
  std::string body = portal + '\0' + statement + '\0';
  body += u16(1) + u16(1);  // one format code for all parameters: binary
  const size_t n = params.size() + (withNull ? 1 : 0);
  body += u16(static_cast<uint16_t>(n));
  for (const auto& p : params) body += u32(static_cast<uint32_t>(p.size())) + p;
  if (withNull) body += u32(0xffffffffu);
  body += u16(2) + u16(0) + u16(1);  // two result formats
  return frame('B', body);
}

// The length field of the message at the start of `msg`.
uint32_t lengthOf(const std::string& msg) {
  FrameHeader h;
  REQUIRE(peekFrame(spanOf(msg), h) == DecodeStatus::Ok);
  return h.length;
}

}  // namespace

TEST_CASE("encodeParse and parseParse round-trip, definition bytes kept exactly", "[proto][extended]") {
  // OIDs with NUL and 0xff bytes in them: the definition is binary after the query's NUL.
  const std::vector<std::vector<uint32_t>> oidSets = {{}, {23}, {0, 0xffffffffu, 25, 0x00010000u, 1043}};
  for (const auto& oids : oidSets) {
    for (const std::string name : {"", "stmt_1", "__asyncpg_stmt_1__"}) {
      const std::string def = definition("select $1::int, 'x'", oids);
      std::string msg;
      encodeParse(msg, name, spanOf(def));
      INFO("name=" << name << " oids=" << oids.size());
      REQUIRE(msg.size() == 1 + 4 + name.size() + 1 + def.size());
      CHECK(msg[0] == 'P');
      CHECK(lengthOf(msg) == msg.size() - 1);
      CHECK(msg.substr(5) == name + '\0' + def);

      ParseMessage p;
      REQUIRE(parseParse(spanOf(msg).subspan(5), p) == DecodeStatus::Ok);
      CHECK(p.name == name);
      CHECK(p.query == "select $1::int, 'x'");
      CHECK(viewOf(p.definition) == def);

      // And again from the decoded definition: the same bytes.
      std::string again;
      encodeParse(again, p.name, p.definition);
      CHECK(again == msg);
    }
  }
}

TEST_CASE("encodeParse of a long query gets a length field past 16 bits", "[proto][extended]") {
  const std::string def = definition("select '" + std::string(70000, 'a') + "'", {25, 25});
  std::string msg;
  encodeParse(msg, "big", spanOf(def));
  CHECK(lengthOf(msg) == msg.size() - 1);
  ParseMessage p;
  REQUIRE(parseParse(spanOf(msg).subspan(5), p) == DecodeStatus::Ok);
  CHECK(viewOf(p.definition) == def);
}

TEST_CASE("parseBindHead on a whole Bind", "[proto][extended]") {
  const std::string msg = bindMessage("portal_1", "stmt_22", {"abc", std::string("\0\0\x01", 3)}, true);
  BindHead h;
  REQUIRE(parseBindHead(spanOf(msg), h) == DecodeStatus::Ok);
  CHECK(h.portal == "portal_1");
  CHECK(h.statement == "stmt_22");
  CHECK(h.size == 5 + 9 + 8);
  CHECK(msg.substr(h.size - 1, 1) == "\0"s);

  // The unnamed portal and statement.
  const std::string unnamed = bindMessage("", "", {"1"});
  REQUIRE(parseBindHead(spanOf(unnamed), h) == DecodeStatus::Ok);
  CHECK(h.portal.empty());
  CHECK(h.statement.empty());
  CHECK(h.size == 7);
}

TEST_CASE("parseBindHead on every prefix: NeedMore until both names are in", "[proto][extended]") {
  const std::string msg = bindMessage("p", "statement_name", {"x", "yy", std::string(300, 'z')});
  const size_t headSize = 5 + 2 + 15;
  for (size_t n = 0; n <= msg.size(); ++n) {
    INFO("prefix of " << n << " bytes");
    BindHead h;
    const auto st = parseBindHead(spanOf(msg).first(n), h);
    if (n < headSize) {
      CHECK(st == DecodeStatus::NeedMore);
    } else {
      REQUIRE(st == DecodeStatus::Ok);
      CHECK(h.portal == "p");
      CHECK(h.statement == "statement_name");
      CHECK(h.size == headSize);
    }
  }
}

TEST_CASE("parseBindHead on a Bind split at every offset", "[proto][extended]") {
  // The way a connection meets it: the first part of one read, then the rest appended.
  const std::string msg = bindMessage("portal", "s", {"param"});
  for (size_t cut = 0; cut <= msg.size(); ++cut) {
    INFO("cut at " << cut);
    std::string have = msg.substr(0, cut);
    BindHead h;
    const auto first = parseBindHead(spanOf(have), h);
    CHECK(first == (cut >= 5 + 7 + 2 ? DecodeStatus::Ok : DecodeStatus::NeedMore));
    have += msg.substr(cut);
    REQUIRE(parseBindHead(spanOf(have), h) == DecodeStatus::Ok);
    CHECK(h.portal == "portal");
    CHECK(h.statement == "s");
    CHECK(h.size == 14);
  }
}

TEST_CASE("parseBindHead only looks at the message's own bytes", "[proto][extended]") {
  // A Bind followed by the next message: the head is the same.
  const std::string bind = bindMessage("", "s1", {"v"});
  const std::string followed = bind + frame('E', "\0\0\0\0\0"s) + frame('S', "");
  BindHead h;
  REQUIRE(parseBindHead(spanOf(followed), h) == DecodeStatus::Ok);
  CHECK(h.statement == "s1");
  CHECK(h.size == 5 + 1 + 3);

  // A Bind whose length ends after the portal's NUL: the NUL in the next message does not count.
  const std::string shortBind = frame('B', "portal\0stmt"s);
  CHECK(parseBindHead(spanOf(shortBind), h) == DecodeStatus::Invalid);
  CHECK(parseBindHead(spanOf(shortBind + frame('S', "") + "\0\0"s), h) == DecodeStatus::Invalid);
}

TEST_CASE("parseBindHead is Invalid when the length ends the message before the second NUL", "[proto][extended]") {
  const std::vector<std::string> bodies = {"", "\0"s, "portal", "portal\0"s, "portal\0stmt"s, "\0stmt"s};
  for (const auto& body : bodies) {
    const std::string msg = frame('B', body);
    INFO("body " << body.size() << " bytes");
    // Every proper prefix may still grow; the whole message cannot.
    for (size_t n = 0; n < msg.size(); ++n) {
      BindHead h;
      CHECK(parseBindHead(spanOf(msg).first(n), h) == DecodeStatus::NeedMore);
    }
    BindHead h;
    CHECK(parseBindHead(spanOf(msg), h) == DecodeStatus::Invalid);
  }
  // A length field below 4 is a broken frame.
  BindHead h;
  CHECK(parseBindHead(spanOf("B\0\0\0\x03\0\0"s), h) == DecodeStatus::Invalid);
  CHECK(parseBindHead(spanOf("B\0\0\0\0"s), h) == DecodeStatus::Invalid);
}

TEST_CASE("encodeBindHead swaps the statement name and keeps the length right", "[proto][extended]") {
  const std::vector<std::string> params = {"hello", std::string("\0\x01\x02\0", 4), std::string(1000, 'q')};
  const std::string original = bindMessage("cursor", "s", params, true);
  BindHead head;
  REQUIRE(parseBindHead(spanOf(original), head) == DecodeStatus::Ok);
  const std::string tail = original.substr(head.size);

  // A short name for a long one.
  const std::string longName = "PGMUX_1234567890";
  std::string rewritten;
  encodeBindHead(rewritten, lengthOf(original), head, longName);
  CHECK(rewritten.size() == 1 + 4 + 7 + longName.size() + 1);
  rewritten += tail;
  CHECK(lengthOf(rewritten) == rewritten.size() - 1);
  BindHead h2;
  REQUIRE(parseBindHead(spanOf(rewritten), h2) == DecodeStatus::Ok);
  CHECK(h2.portal == "cursor");
  CHECK(h2.statement == longName);
  CHECK(h2.size == 5 + 7 + longName.size() + 1);
  CHECK(rewritten.substr(h2.size) == tail);  // the parameters, byte for byte

  // And back: the original message exactly.
  std::string back;
  encodeBindHead(back, lengthOf(rewritten), h2, "s");
  back += rewritten.substr(h2.size);
  CHECK(back == original);

  // A long name for an empty one, on the unnamed portal.
  const std::string unnamed = bindMessage("", "", params);
  REQUIRE(parseBindHead(spanOf(unnamed), head) == DecodeStatus::Ok);
  std::string named;
  encodeBindHead(named, lengthOf(unnamed), head, "PGMUX_7");
  named += unnamed.substr(head.size);
  CHECK(lengthOf(named) == named.size() - 1);
  REQUIRE(parseBindHead(spanOf(named), h2) == DecodeStatus::Ok);
  CHECK(h2.portal.empty());
  CHECK(h2.statement == "PGMUX_7");
  CHECK(named.substr(h2.size) == unnamed.substr(head.size));
}

TEST_CASE("encodeBindHead works from a head parsed before the parameters arrived", "[proto][extended]") {
  // The connection rewrites a large Bind once its names are in, before the rest has been read.
  const std::string original = bindMessage("", "mine", {std::string(100000, 'p')});
  BindHead head;
  REQUIRE(parseBindHead(spanOf(original).first(5 + 1 + 5), head) == DecodeStatus::Ok);
  std::string rewritten;
  encodeBindHead(rewritten, lengthOf(original), head, "PGMUX_42");
  rewritten += original.substr(head.size);
  CHECK(lengthOf(rewritten) == rewritten.size() - 1);
  BindHead h2;
  REQUIRE(parseBindHead(spanOf(rewritten), h2) == DecodeStatus::Ok);
  CHECK(h2.statement == "PGMUX_42");
  CHECK(rewritten.substr(h2.size) == original.substr(head.size));
}

TEST_CASE("parseTarget accepts S and P with a NUL-terminated name only", "[proto][extended]") {
  TargetMessage t;
  const std::string statement = "Sstmt\0"s;
  const std::string portal = "P\0"s;
  REQUIRE(parseTarget(spanOf(statement), t) == DecodeStatus::Ok);
  CHECK(t.kind == 'S');
  CHECK(t.name == "stmt");
  REQUIRE(parseTarget(spanOf(portal), t) == DecodeStatus::Ok);
  CHECK(t.kind == 'P');
  CHECK(t.name.empty());

  CHECK(parseTarget(spanOf(""s), t) == DecodeStatus::Invalid);          // no kind
  CHECK(parseTarget(spanOf("S"s), t) == DecodeStatus::Invalid);         // no name
  CHECK(parseTarget(spanOf("Sstmt"s), t) == DecodeStatus::Invalid);     // name without NUL
  CHECK(parseTarget(spanOf("Xstmt\0"s), t) == DecodeStatus::Invalid);   // unknown kind
  CHECK(parseTarget(spanOf("sstmt\0"s), t) == DecodeStatus::Invalid);   // kinds are upper case
  CHECK(parseTarget(spanOf("\0stmt\0"s), t) == DecodeStatus::Invalid);  // NUL kind
  CHECK(parseTarget(spanOf("Sa\0b\0"s), t) == DecodeStatus::Invalid);   // bytes after the name
}

TEST_CASE("encodeDescribe, encodeClose and encodeParseComplete write the protocol's bytes", "[proto][extended]") {
  std::string d;
  encodeDescribe(d, 'S', "PGMUX_3");
  CHECK(d == "D\0\0\0\x0dSPGMUX_3\0"s);
  std::string c;
  encodeClose(c, 'P', "");
  CHECK(c == "C\0\0\0\x06P\0"s);
  std::string pc;
  encodeParseComplete(pc);
  CHECK(pc == "1\0\0\0\x04"s);

  // Appended, not overwritten; and they decode back.
  std::string both = "x";
  encodeClose(both, 'S', "PGMUX_ABSENT");
  encodeDescribe(both, 'P', "portal");
  CHECK(both.substr(0, 2) == "xC");
  const std::string closeMsg = both.substr(1, 1 + 4 + 1 + 13);
  CHECK(lengthOf(closeMsg) == closeMsg.size() - 1);
  TargetMessage t;
  REQUIRE(parseTarget(spanOf(closeMsg).subspan(5), t) == DecodeStatus::Ok);
  CHECK(t.kind == 'S');
  CHECK(t.name == "PGMUX_ABSENT");
  const std::string describeMsg = both.substr(1 + closeMsg.size());
  CHECK(describeMsg[0] == 'D');
  REQUIRE(parseTarget(spanOf(describeMsg).subspan(5), t) == DecodeStatus::Ok);
  CHECK(t.kind == 'P');
  CHECK(t.name == "portal");
}

TEST_CASE("parseParse rejects truncated bodies and counts past the end", "[proto][extended]") {
  const std::string good = "s\0"s + definition("select $1, $2", {23, 25});
  ParseMessage p;
  REQUIRE(parseParse(spanOf(good), p) == DecodeStatus::Ok);
  // Every truncation, copied so that a read past the end is a read past the allocation.
  for (size_t n = 0; n < good.size(); ++n) {
    INFO("truncated to " << n);
    const std::vector<uint8_t> cut(good.begin(), good.begin() + static_cast<ptrdiff_t>(n));
    CHECK(parseParse(std::span<const uint8_t>(cut), p) == DecodeStatus::Invalid);
  }
  CHECK(parseParse(spanOf(good + "x"), p) == DecodeStatus::Invalid);                            // trailing bytes
  CHECK(parseParse(spanOf("s\0select 1\0\xff\xff"s), p) == DecodeStatus::Invalid);             // 65535 OIDs, none sent
  CHECK(parseParse(spanOf("s\0select 1\0\0\x02\0\0\0\x17"s), p) == DecodeStatus::Invalid);     // two OIDs, one sent
  CHECK(parseParse(spanOf("s\0select 1\0\0\x01\0\0\0\x17\0"s), p) == DecodeStatus::Invalid);  // one OID and a byte
  CHECK(parseParse(spanOf("sselect 1"s), p) == DecodeStatus::Invalid);                         // no NUL at all
  CHECK(parseParse(spanOf("s\0select 1"s), p) == DecodeStatus::Invalid);                       // query without NUL
  // The smallest valid one: unnamed, empty query, no parameter types.
  const std::string smallest = "\0\0\0\0"s;
  REQUIRE(parseParse(spanOf(smallest), p) == DecodeStatus::Ok);
  CHECK(p.name.empty());
  CHECK(p.query.empty());
  CHECK(viewOf(p.definition) == "\0\0\0"s);
}

TEST_CASE("the decoders never crash on random bytes and report only what lies inside them", "[proto][extended]") {
  std::mt19937 rng(20240601);
  std::uniform_int_distribution<int> len(0, 40);
  // Bytes biased towards NULs, the kinds and small counts so that the checks are reached.
  const std::string alphabet = "\0\0\0\0\x01\x02SPBx\xff"s;
  std::uniform_int_distribution<size_t> pick(0, alphabet.size() - 1);
  int oks = 0;
  for (int round = 0; round < 20000; ++round) {
    std::vector<uint8_t> buf(static_cast<size_t>(len(rng)));
    for (auto& b : buf) b = static_cast<uint8_t>(alphabet[pick(rng)]);
    const auto bytes = std::span<const uint8_t>(buf);
    const auto inside = [&](std::string_view s) {
      const auto* p = reinterpret_cast<const uint8_t*>(s.data());
      return s.empty() || (p >= buf.data() && p + s.size() <= buf.data() + buf.size());
    };

    ParseMessage p;
    if (parseParse(bytes, p) == DecodeStatus::Ok) {
      ++oks;
      CHECK(inside(p.name));
      CHECK(inside(p.query));
      CHECK(inside(viewOf(p.definition)));
      CHECK(p.name.size() + 1 + p.definition.size() == buf.size());
    }
    TargetMessage t;
    if (parseTarget(bytes, t) == DecodeStatus::Ok) {
      ++oks;
      CHECK((t.kind == 'S' || t.kind == 'P'));
      CHECK(inside(t.name));
      CHECK(t.name.size() + 2 == buf.size());
    }
    // As a whole message: a 'B' header with a length anywhere near the bytes given.
    std::vector<uint8_t> msg = {'B', 0, 0, 0, static_cast<uint8_t>(4 + buf.size() / 2 + round % 8)};
    msg.insert(msg.end(), buf.begin(), buf.end());
    BindHead h;
    const auto st = parseBindHead(std::span<const uint8_t>(msg), h);
    if (st == DecodeStatus::Ok) {
      ++oks;
      CHECK(h.size <= msg.size());
      CHECK(h.size <= static_cast<size_t>(msg[4]) + 1);
      CHECK(h.size == 5 + h.portal.size() + 1 + h.statement.size() + 1);
      CHECK(msg[h.size - 1] == 0);
    }
  }
  CHECK(oks > 100);  // the inputs did reach the decoders' success paths
}

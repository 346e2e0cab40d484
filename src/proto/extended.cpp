// Extended-query message codec (see "Message Formats" in the PostgreSQL protocol docs). Decoders
// treat every body as hostile: a name without its NUL, or a count past the end, is Invalid.
#include "pgmux/proto/extended.h"

#include <algorithm>

#include "wire.h"

namespace pgmux::proto {

using namespace wire;  // NOLINT: the codec's own helpers

DecodeStatus parseParse(std::span<const uint8_t> body, ParseMessage& out) {
  Reader r(body);
  if (!r.cstring(out.name)) return DecodeStatus::Invalid;
  const auto definition = r.rest();
  if (!r.cstring(out.query)) return DecodeStatus::Invalid;
  std::span<const uint8_t> count;
  if (!r.bytes(2, count)) return DecodeStatus::Invalid;
  const size_t n = (static_cast<size_t>(count[0]) << 8) | count[1];
  std::span<const uint8_t> oids;
  if (!r.bytes(4 * n, oids) || !r.atEnd()) return DecodeStatus::Invalid;
  out.definition = definition;
  return DecodeStatus::Ok;
}

void encodeParse(std::string& out, std::string_view name, std::span<const uint8_t> definition) {
  MessageWriter w(out, 'P');
  putCString(out, name);
  out.append(reinterpret_cast<const char*>(definition.data()), definition.size());
  w.finish();
}

DecodeStatus parseBindHead(std::span<const uint8_t> message, BindHead& out) {
  FrameHeader h;
  if (const auto st = peekFrame(message, h); st != DecodeStatus::Ok) return st;
  // Only the message's own bytes count: what follows it belongs to the next one.
  const size_t have = std::min(message.size(), h.totalSize());
  const auto body = message.subspan(kFrameHeaderSize, have - kFrameHeaderSize);
  const auto nul1 = std::find(body.begin(), body.end(), uint8_t{0});
  const auto nul2 = nul1 == body.end() ? body.end() : std::find(nul1 + 1, body.end(), uint8_t{0});
  if (nul2 == body.end()) return have == h.totalSize() ? DecodeStatus::Invalid : DecodeStatus::NeedMore;
  const auto text = [&](auto from, auto to) {
    return std::string_view(reinterpret_cast<const char*>(&*from), static_cast<size_t>(to - from));
  };
  out.portal = text(body.begin(), nul1);
  out.statement = text(nul1 + 1, nul2);
  out.size = kFrameHeaderSize + static_cast<size_t>(nul2 - body.begin()) + 1;
  return DecodeStatus::Ok;
}

void encodeBindHead(std::string& out, uint32_t length, const BindHead& head, std::string_view statement) {
  out.push_back('B');
  putU32(out, static_cast<uint32_t>(length - head.statement.size() + statement.size()));
  putCString(out, head.portal);
  putCString(out, statement);
}

DecodeStatus parseTarget(std::span<const uint8_t> body, TargetMessage& out) {
  Reader r(body);
  uint8_t kind = 0;
  if (!r.u8(kind) || (kind != 'S' && kind != 'P')) return DecodeStatus::Invalid;
  if (!r.cstring(out.name) || !r.atEnd()) return DecodeStatus::Invalid;
  out.kind = static_cast<char>(kind);
  return DecodeStatus::Ok;
}

namespace {
void encodeTarget(std::string& out, char type, char kind, std::string_view name) {
  MessageWriter w(out, type);
  out.push_back(kind);
  putCString(out, name);
  w.finish();
}
}  // namespace

void encodeDescribe(std::string& out, char kind, std::string_view name) { encodeTarget(out, 'D', kind, name); }
void encodeClose(std::string& out, char kind, std::string_view name) { encodeTarget(out, 'C', kind, name); }

void encodeParseComplete(std::string& out) {
  MessageWriter w(out, '1');
  w.finish();
}

}  // namespace pgmux::proto

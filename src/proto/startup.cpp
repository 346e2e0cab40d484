// Parsing of the untyped packets a client sends before its first typed message: StartupMessage,
// SSLRequest, GSSENCRequest and CancelRequest. Mirrors PostgreSQL's ProcessStartupPacket checks.
#include "pgmux/proto/startup.h"

#include <algorithm>
#include <cstring>

namespace pgmux::proto {

namespace {
uint32_t readU32(const uint8_t* p) {
  return (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) |
         (static_cast<uint32_t>(p[2]) << 8) | static_cast<uint32_t>(p[3]);
}

// The requests share the "protocol version" slot, with major 1234 so no real version collides.
constexpr uint32_t kRequestMajor = 1234;
constexpr uint32_t kSSLRequestLength = 8;
constexpr uint32_t kGSSENCRequestLength = 8;
constexpr uint32_t kCancelRequestLength = 16;

// Reads one NUL-terminated string starting at `pos` within `bytes`; false when no NUL follows.
bool readCString(std::span<const uint8_t> bytes, size_t& pos, std::string& out) {
  const auto begin = bytes.begin() + static_cast<std::ptrdiff_t>(pos);
  const auto nul = std::find(begin, bytes.end(), uint8_t{0});
  if (nul == bytes.end()) return false;
  out.assign(begin, nul);
  pos = static_cast<size_t>(nul - bytes.begin()) + 1;
  return true;
}

// The name/value pairs of a StartupMessage, `bytes` being what follows the protocol version.
// As PostgreSQL, the empty name that ends the list must be the packet's last byte.
DecodeStatus parseParams(std::span<const uint8_t> bytes,
                         std::vector<std::pair<std::string, std::string>>& params) {
  size_t pos = 0;
  while (pos < bytes.size()) {
    if (bytes[pos] == 0) return pos + 1 == bytes.size() ? DecodeStatus::Ok : DecodeStatus::Invalid;
    std::string name;
    std::string value;
    if (!readCString(bytes, pos, name) || !readCString(bytes, pos, value)) {
      return DecodeStatus::Invalid;
    }
    params.emplace_back(std::move(name), std::move(value));
  }
  return DecodeStatus::Invalid;  // the final terminator is missing
}
}  // namespace

const std::string* StartupPacket::find(std::string_view name) const {
  for (const auto& [n, v] : params) {
    if (n == name) return &v;
  }
  return nullptr;
}

DecodeStatus parseStartupPacket(std::span<const uint8_t> bytes, StartupPacket& out, size_t& consumed) {
  consumed = 0;
  if (bytes.size() < 4) return DecodeStatus::NeedMore;
  // Judge the length as soon as it is known: a bad one must not make us wait for more bytes.
  const uint32_t len = readU32(bytes.data());
  if (len < 8 || len > kMaxStartupPacket) return DecodeStatus::Invalid;
  if (bytes.size() < len) return DecodeStatus::NeedMore;

  const auto packet = bytes.first(len);
  const uint32_t code = readU32(packet.data() + 4);
  out = StartupPacket{};
  if (code >> 16 == kRequestMajor) {
    if (code == kSSLRequestCode && len == kSSLRequestLength) {
      out.kind = StartupKind::SSLRequest;
    } else if (code == kGSSENCRequestCode && len == kGSSENCRequestLength) {
      out.kind = StartupKind::GSSENCRequest;
    } else if (code == kCancelRequestCode && len == kCancelRequestLength) {
      out.kind = StartupKind::CancelRequest;
      out.cancelPid = readU32(packet.data() + 8);
      out.cancelKey = readU32(packet.data() + 12);
    } else {
      return DecodeStatus::Invalid;
    }
    consumed = len;
    return DecodeStatus::Ok;
  }
  // Any 3.x is accepted here: the pooler answers a newer minor with NegotiateProtocolVersion.
  if (code >> 16 != 3) return DecodeStatus::Invalid;
  out.kind = StartupKind::Startup;
  out.protocol = code;
  if (parseParams(packet.subspan(8), out.params) != DecodeStatus::Ok) {
    out.params.clear();
    return DecodeStatus::Invalid;
  }
  consumed = len;
  return DecodeStatus::Ok;
}

}  // namespace pgmux::proto

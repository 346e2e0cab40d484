// Untyped startup packets: StartupMessage, SSLRequest, GSSENCRequest, CancelRequest.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pgmux/proto/frame.h"

namespace pgmux::proto {

inline constexpr uint32_t kProtocolV3 = 196608;  // 3.0
inline constexpr uint32_t kSSLRequestCode = 80877103;
inline constexpr uint32_t kGSSENCRequestCode = 80877104;
inline constexpr uint32_t kCancelRequestCode = 80877102;
inline constexpr uint32_t kMaxStartupPacket = 10000;  // as PostgreSQL's MAX_STARTUP_PACKET_LENGTH

enum class StartupKind : uint8_t { Startup, SSLRequest, GSSENCRequest, CancelRequest };

struct StartupPacket {
  StartupKind kind = StartupKind::Startup;
  uint32_t protocol = 0;                                    // Startup only
  std::vector<std::pair<std::string, std::string>> params;  // Startup only, in order sent
  uint32_t cancelPid = 0;                                   // CancelRequest only
  uint32_t cancelKey = 0;                                   // CancelRequest only
  const std::string* find(std::string_view name) const;     // nullptr when absent
};

// Parses one startup packet from the start of `bytes`. NeedMore until the whole packet (its
// int32 length counts itself) is there; `consumed` is then its size. Invalid: length below 8 or
// above kMaxStartupPacket, an unknown request code, a protocol major version other than 3,
// parameters that are not NUL-terminated name/value pairs ending in an empty name.
DecodeStatus parseStartupPacket(std::span<const uint8_t> bytes, StartupPacket& out, size_t& consumed);

}  // namespace pgmux::proto

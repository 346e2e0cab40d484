// Frame headers of the v3 protocol: one type byte, then an int32 length that counts itself.
// FrameScanner walks a byte stream that arrives in arbitrary chunks, message by message.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace pgmux::proto {

inline constexpr size_t kFrameHeaderSize = 5;
inline constexpr uint32_t kDefaultMaxPacketSize = 2147483647u;

enum class DecodeStatus : uint8_t { Ok, NeedMore, Invalid };

struct FrameHeader {
  char type = 0;
  uint32_t length = 0;  // the length field: body size + 4
  size_t bodySize() const { return length - 4; }
  size_t totalSize() const { return static_cast<size_t>(length) + 1; }
};

// Reads the 5-byte header at the start of `bytes`. Invalid when the length is below 4 or above
// maxPacketSize (a protocol violation, 08P01); NeedMore when fewer than 5 bytes are given.
DecodeStatus peekFrame(std::span<const uint8_t> bytes, FrameHeader& out,
                       uint32_t maxPacketSize = kDefaultMaxPacketSize);

// One message found by FrameScanner. `body` is set (complete) only when the body is at most the
// scanner's capture limit; it points into the chunk when the body lies wholly inside it, otherwise
// into the scanner's own buffer. Valid until the next call to next().
struct ScannedMessage {
  char type = 0;
  uint32_t length = 0;
  bool captured = false;
  std::span<const uint8_t> body;
};

// Walks a stream of typed messages split at any byte offset into chunks. It copies nothing but
// split headers and split small bodies; the caller forwards the chunk's bytes itself.
class FrameScanner {
 public:
  explicit FrameScanner(uint32_t maxPacketSize = kDefaultMaxPacketSize, uint32_t captureLimit = 1024)
      : maxPacketSize_(maxPacketSize), captureLimit_(captureLimit) {}

  // Advances `pos` within `chunk` to the end of the next complete message and fills `msg`.
  // Ok: a message ended at `pos` (one past its last byte). NeedMore: the chunk is used up
  // (pos == chunk.size()) inside or between messages. Invalid: a bad length; the stream is dead.
  DecodeStatus next(std::span<const uint8_t> chunk, size_t& pos, ScannedMessage& msg);

  // True when no message has been partly consumed.
  bool atBoundary() const { return hdrHave_ == 0 && bodyLeft_ == 0 && !inBody_; }
  void setMaxPacketSize(uint32_t v) { maxPacketSize_ = v; }
  uint32_t maxPacketSize() const { return maxPacketSize_; }
  // The type byte of the message in progress (0 at a boundary).
  char pendingType() const {
    if (inBody_) return cur_.type;
    return hdrHave_ > 0 ? static_cast<char>(hdr_[0]) : 0;
  }
  void reset();

 private:
  // Packed: every client connection has one (a message body fits in 32 bits by the protocol).
  uint32_t maxPacketSize_;
  uint32_t captureLimit_;
  FrameHeader cur_{};
  uint32_t bodyLeft_ = 0;
  uint8_t hdr_[kFrameHeaderSize] = {};
  uint8_t hdrHave_ = 0;
  bool inBody_ = false;
  bool capturing_ = false;
  std::vector<uint8_t> capture_;
};

}  // namespace pgmux::proto

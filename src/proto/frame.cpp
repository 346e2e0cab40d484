// Frame header decoding and the chunk-splitting message scanner.
#include "pgmux/proto/frame.h"

#include <algorithm>

namespace pgmux::proto {

namespace {
uint32_t readU32(const uint8_t* p) {
  return (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) |
         (static_cast<uint32_t>(p[2]) << 8) | static_cast<uint32_t>(p[3]);
}
}  // namespace

DecodeStatus peekFrame(std::span<const uint8_t> bytes, FrameHeader& out, uint32_t maxPacketSize) {
  if (bytes.size() < kFrameHeaderSize) return DecodeStatus::NeedMore;
  const uint32_t len = readU32(bytes.data() + 1);
  if (len < 4 || len > maxPacketSize || len > 0x7fffffffu) return DecodeStatus::Invalid;
  out.type = static_cast<char>(bytes[0]);
  out.length = len;
  return DecodeStatus::Ok;
}

void FrameScanner::reset() {
  hdrHave_ = 0;
  inBody_ = false;
  bodyLeft_ = 0;
  capturing_ = false;
  capture_.clear();
}

DecodeStatus FrameScanner::next(std::span<const uint8_t> chunk, size_t& pos, ScannedMessage& msg) {
  const size_t n = chunk.size();
  while (pos < n || (inBody_ && bodyLeft_ == 0)) {
    if (!inBody_) {
      // Fast path: the whole header, and maybe the whole message, lies in the chunk.
      if (hdrHave_ == 0 && n - pos >= kFrameHeaderSize) {
        if (peekFrame(chunk.subspan(pos), cur_, maxPacketSize_) != DecodeStatus::Ok) return DecodeStatus::Invalid;
        pos += kFrameHeaderSize;
      } else {
        const size_t take = std::min(kFrameHeaderSize - hdrHave_, n - pos);
        std::copy_n(chunk.data() + pos, take, hdr_ + hdrHave_);
        hdrHave_ = static_cast<uint8_t>(hdrHave_ + take);
        pos += take;
        if (hdrHave_ < kFrameHeaderSize) return DecodeStatus::NeedMore;
        if (peekFrame(std::span<const uint8_t>(hdr_, kFrameHeaderSize), cur_, maxPacketSize_) != DecodeStatus::Ok) {
          return DecodeStatus::Invalid;
        }
        hdrHave_ = 0;
      }
      inBody_ = true;
      bodyLeft_ = static_cast<uint32_t>(cur_.bodySize());
      capturing_ = bodyLeft_ <= captureLimit_;
      // The body lies wholly in this chunk: point at it, copy nothing.
      if (n - pos >= bodyLeft_) {
        msg.type = cur_.type;
        msg.length = cur_.length;
        msg.captured = capturing_;
        msg.body = capturing_ ? chunk.subspan(pos, bodyLeft_) : std::span<const uint8_t>();
        pos += bodyLeft_;
        bodyLeft_ = 0;
        inBody_ = false;
        return DecodeStatus::Ok;
      }
      capture_.clear();
    }
    const size_t take = std::min<size_t>(bodyLeft_, n - pos);
    if (capturing_) capture_.insert(capture_.end(), chunk.data() + pos, chunk.data() + pos + take);
    pos += take;
    bodyLeft_ -= static_cast<uint32_t>(take);
    if (bodyLeft_ == 0) {
      msg.type = cur_.type;
      msg.length = cur_.length;
      msg.captured = capturing_;
      msg.body = capturing_ ? std::span<const uint8_t>(capture_) : std::span<const uint8_t>();
      inBody_ = false;
      return DecodeStatus::Ok;
    }
  }
  return DecodeStatus::NeedMore;
}

}  // namespace pgmux::proto

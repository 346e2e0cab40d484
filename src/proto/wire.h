// Byte-level helpers shared by the codec's encoders and decoders (internal to proto/).
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace pgmux::proto::wire {

// ---- encoding ----

inline void putU16(std::string& out, uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xff));
}

inline void putU32(std::string& out, uint32_t v) {
  out.push_back(static_cast<char>(v >> 24));
  out.push_back(static_cast<char>((v >> 16) & 0xff));
  out.push_back(static_cast<char>((v >> 8) & 0xff));
  out.push_back(static_cast<char>(v & 0xff));
}

inline void putI32(std::string& out, int32_t v) { putU32(out, static_cast<uint32_t>(v)); }
inline void putI16(std::string& out, int16_t v) { putU16(out, static_cast<uint16_t>(v)); }

inline void putCString(std::string& out, std::string_view s) {
  out.append(s);
  out.push_back('\0');
}

// Writes the type byte and a length placeholder; finish() patches the length once the body is in.
class MessageWriter {
 public:
  MessageWriter(std::string& out, char type) : out_(out) {
    out_.push_back(type);
    start_ = out_.size();
    putU32(out_, 0);
  }
  void finish() {
    const auto len = static_cast<uint32_t>(out_.size() - start_);
    for (size_t i = 0; i < 4; ++i) {
      out_[start_ + i] = static_cast<char>((len >> (24 - 8 * i)) & 0xff);
    }
  }

 private:
  std::string& out_;
  size_t start_ = 0;
};

// ---- decoding: a cursor over a body that never reads past its end ----

class Reader {
 public:
  explicit Reader(std::span<const uint8_t> body) : b_(body) {}
  size_t left() const { return b_.size() - pos_; }
  bool atEnd() const { return pos_ == b_.size(); }
  bool u8(uint8_t& v) {
    if (left() < 1) return false;
    v = b_[pos_++];
    return true;
  }
  bool u32(uint32_t& v) {
    if (left() < 4) return false;
    const uint8_t* p = b_.data() + pos_;
    v = (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) |
        (static_cast<uint32_t>(p[2]) << 8) | static_cast<uint32_t>(p[3]);
    pos_ += 4;
    return true;
  }
  // A NUL-terminated string, returned without its NUL.
  bool cstring(std::string_view& s) {
    const auto rest = b_.subspan(pos_);
    const auto nul = std::find(rest.begin(), rest.end(), uint8_t{0});
    if (nul == rest.end()) return false;
    const auto n = static_cast<size_t>(nul - rest.begin());
    s = std::string_view(reinterpret_cast<const char*>(rest.data()), n);
    pos_ += n + 1;
    return true;
  }
  bool bytes(size_t n, std::span<const uint8_t>& s) {
    if (left() < n) return false;
    s = b_.subspan(pos_, n);
    pos_ += n;
    return true;
  }
  std::span<const uint8_t> rest() const { return b_.subspan(pos_); }

 private:
  std::span<const uint8_t> b_;
  size_t pos_ = 0;
};

}  // namespace pgmux::proto::wire

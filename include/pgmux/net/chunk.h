// Reference-counted receive buffers. A read lands in a chunk; forwarding writes slices of it to
// the peer without copying, each write holding a reference until its callback fires.
#pragma once

#include <cstddef>
#include <cstdint>

namespace pgmux::net {

class Chunk {
 public:
  static constexpr size_t kDefaultCapacity = 32 * 1024;

  // A chunk with at least `capacity` bytes, from the per-thread free list when it is the default size.
  static Chunk* acquire(size_t capacity = kDefaultCapacity);
  void ref() { ++refs_; }
  uint32_t refs() const { return refs_; }
  void unref() {
    if (--refs_ == 0) release();
  }
  char* data() { return data_; }
  size_t capacity() const { return capacity_; }
  size_t used() const { return used_; }
  size_t freeSpace() const { return capacity_ - used_; }
  char* tail() { return data_ + used_; }
  void commit(size_t n) { used_ += n; }

 private:
  Chunk() = default;
  void release();
  uint32_t refs_ = 1;
  size_t capacity_ = 0;
  size_t used_ = 0;
  Chunk* nextFree_ = nullptr;
  char* data_ = nullptr;
};

// A held slice of a chunk (the holder owns one reference).
struct Slice {
  Chunk* chunk = nullptr;
  size_t offset = 0;
  size_t length = 0;
};

}  // namespace pgmux::net

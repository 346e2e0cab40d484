// Reference-counted receive buffers. A read lands in a chunk; forwarding writes slices of it to
// the peer without copying, each write holding a reference until its callback fires.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace pgmux::net {

class Chunk {
 public:
  static constexpr size_t kDefaultCapacity = 32 * 1024;
  static constexpr size_t kSmallCapacity = 512;

  // A chunk of at least `capacity` bytes. Two sizes come from per-thread free lists: the
  // default (a read buffer), and small ones (up to kSmallCapacity: bytes copied out of a read,
  // such as a request that waits for a server). Any other size is allocated at that size and
  // freed when let go.
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

// A slice that holds its chunk: one reference taken when made, given back when dropped.
class HeldSlice {
 public:
  HeldSlice() = default;
  explicit HeldSlice(const Slice& s) : s_(s) {
    if (s_.chunk != nullptr) s_.chunk->ref();
  }
  HeldSlice(HeldSlice&& o) noexcept : s_(std::exchange(o.s_, Slice{})) {}
  HeldSlice& operator=(HeldSlice&& o) noexcept {
    if (this != &o) {
      reset();
      s_ = std::exchange(o.s_, Slice{});
    }
    return *this;
  }
  HeldSlice(const HeldSlice&) = delete;
  HeldSlice& operator=(const HeldSlice&) = delete;
  ~HeldSlice() { reset(); }
  void reset() {
    if (Chunk* c = std::exchange(s_.chunk, nullptr); c != nullptr) c->unref();
  }
  bool empty() const { return s_.chunk == nullptr; }
  const Slice& get() const { return s_; }

 private:
  Slice s_;
};

// Slices in order, the first one inline: a connection mostly holds none or one (a request
// waiting for a server), and then the list allocates nothing. It does not touch references.
class SliceList {
 public:
  bool empty() const { return first_.chunk == nullptr; }
  size_t size() const { return empty() ? 0 : 1 + more_.size(); }
  const Slice& operator[](size_t i) const { return i == 0 ? first_ : more_[i - 1]; }
  const Slice& front() const { return first_; }
  void push_back(const Slice& s) {
    if (empty()) {
      first_ = s;
    } else {
      more_.push_back(s);
    }
  }
  // Empties the list; the rare longer list gives its memory back too.
  void clear() {
    first_ = Slice{};
    if (more_.capacity() != 0) std::vector<Slice>().swap(more_);
  }

 private:
  Slice first_;
  std::vector<Slice> more_;
};

}  // namespace pgmux::net

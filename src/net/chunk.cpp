// Chunk allocation with a small per-thread free list of default-size chunks.
#include "pgmux/net/chunk.h"

#include <cstdlib>
#include <new>

namespace pgmux::net {
namespace {
constexpr size_t kMaxFree = 256;
thread_local Chunk* t_free = nullptr;
thread_local size_t t_freeCount = 0;
}  // namespace

Chunk* Chunk::acquire(size_t capacity) {
  if (capacity <= kDefaultCapacity && t_free != nullptr) {
    Chunk* c = t_free;
    t_free = c->nextFree_;
    --t_freeCount;
    c->refs_ = 1;
    c->used_ = 0;
    c->nextFree_ = nullptr;
    return c;
  }
  if (capacity < kDefaultCapacity) capacity = kDefaultCapacity;
  void* mem = std::malloc(sizeof(Chunk) + capacity);
  if (mem == nullptr) throw std::bad_alloc();
  auto* c = new (mem) Chunk();
  c->capacity_ = capacity;
  c->data_ = reinterpret_cast<char*>(c) + sizeof(Chunk);
  return c;
}

void Chunk::release() {
  if (capacity_ == kDefaultCapacity && t_freeCount < kMaxFree) {
    nextFree_ = t_free;
    t_free = this;
    ++t_freeCount;
    return;
  }
  this->~Chunk();
  std::free(this);
}

}  // namespace pgmux::net

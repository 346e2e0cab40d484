// Chunk allocation with per-thread free lists of read-buffer and small chunks.
#include "pgmux/net/chunk.h"

#include <cstdlib>
#include <new>

namespace pgmux::net {
namespace {
constexpr size_t kMaxFree = 256;
// A free list per pooled size. Chunks are never shared between threads.
struct FreeList {
  Chunk* head = nullptr;
  size_t count = 0;
};
thread_local FreeList t_free;
thread_local FreeList t_freeSmall;

FreeList* freeListFor(size_t capacity) {
  if (capacity == Chunk::kDefaultCapacity) return &t_free;
  if (capacity == Chunk::kSmallCapacity) return &t_freeSmall;
  return nullptr;
}
}  // namespace

Chunk* Chunk::acquire(size_t capacity) {
  if (capacity < kSmallCapacity) capacity = kSmallCapacity;
  FreeList* list = freeListFor(capacity);
  if (list != nullptr && list->head != nullptr) {
    Chunk* c = list->head;
    list->head = c->nextFree_;
    --list->count;
    c->refs_ = 1;
    c->used_ = 0;
    c->nextFree_ = nullptr;
    return c;
  }
  void* mem = std::malloc(sizeof(Chunk) + capacity);
  if (mem == nullptr) throw std::bad_alloc();
  auto* c = new (mem) Chunk();
  c->capacity_ = capacity;
  c->data_ = reinterpret_cast<char*>(c) + sizeof(Chunk);
  return c;
}

void Chunk::release() {
  FreeList* list = freeListFor(capacity_);
  if (list != nullptr && list->count < kMaxFree) {
    nextFree_ = list->head;
    list->head = this;
    ++list->count;
    return;
  }
  this->~Chunk();
  std::free(this);
}

}  // namespace pgmux::net

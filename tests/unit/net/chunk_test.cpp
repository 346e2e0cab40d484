// Chunk sizes and free lists, and SliceList: the buffers an idle or waiting connection holds.
#include <catch2/catch.hpp>

#include "pgmux/net/chunk.h"

using pgmux::net::Chunk;
using pgmux::net::Slice;
using pgmux::net::SliceList;

TEST_CASE("chunks come in a read size, a small size, and exact larger sizes", "[net][chunk]") {
  Chunk* read = Chunk::acquire();
  Chunk* tiny = Chunk::acquire(14);
  Chunk* small = Chunk::acquire(Chunk::kSmallCapacity);
  Chunk* mid = Chunk::acquire(2000);
  Chunk* big = Chunk::acquire(100 * 1024);
  CHECK(read->capacity() == Chunk::kDefaultCapacity);
  CHECK(tiny->capacity() == Chunk::kSmallCapacity);
  CHECK(small->capacity() == Chunk::kSmallCapacity);
  CHECK(mid->capacity() == 2000);
  CHECK(big->capacity() == 100 * 1024);
  for (Chunk* c : {read, tiny, small, mid, big}) {
    CHECK(c->used() == 0);
    CHECK(c->refs() == 1);
    c->unref();
  }
}

TEST_CASE("a let-go chunk of a pooled size is the next one of that size, reset", "[net][chunk]") {
  for (size_t size : {Chunk::kDefaultCapacity, Chunk::kSmallCapacity}) {
    Chunk* c = Chunk::acquire(size);
    c->commit(10);
    c->ref();
    c->unref();  // still held once
    CHECK(c->refs() == 1);
    c->unref();  // back on the free list
    Chunk* again = Chunk::acquire(size);
    CHECK(again == c);
    CHECK(again->used() == 0);
    CHECK(again->refs() == 1);
    again->unref();
  }
}

TEST_CASE("a slice list keeps its slices in order, the first inline", "[net][chunk]") {
  SliceList list;
  CHECK(list.empty());
  CHECK(list.size() == 0);
  Chunk* c = Chunk::acquire(Chunk::kSmallCapacity);
  list.push_back(Slice{c, 0, 5});
  CHECK_FALSE(list.empty());
  CHECK(list.size() == 1);
  CHECK(list.front().length == 5);
  for (size_t i = 1; i < 5; ++i) list.push_back(Slice{c, i * 10, i});
  REQUIRE(list.size() == 5);
  CHECK(list[0].offset == 0);
  for (size_t i = 1; i < 5; ++i) {
    CHECK(list[i].offset == i * 10);
    CHECK(list[i].length == i);
  }
  list.clear();
  CHECK(list.empty());
  CHECK(list.size() == 0);
  list.push_back(Slice{c, 7, 1});  // usable again after a clear
  CHECK(list.size() == 1);
  CHECK(list.front().offset == 7);
  c->unref();
}

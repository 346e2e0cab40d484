// PoolSlots: pool_size taken by compare-and-swap from many threads never passes the cap, and the
// worker with the most idle servers is found (never the asking one).
#include <catch2/catch.hpp>
#include <atomic>
#include <thread>
#include <vector>

#include "pgmux/pool/shared.h"

using pgmux::pool::PoolSlots;

TEST_CASE("threads taking slots never open more than the cap") {
  PoolSlots slots(4);
  constexpr int kCap = 7;
  std::atomic<int> open{0};
  std::atomic<int> most{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20000; ++i) {
        if (!slots.tryTake(kCap)) continue;
        const int n = open.fetch_add(1) + 1;
        int m = most.load();
        while (n > m && !most.compare_exchange_weak(m, n)) {
        }
        open.fetch_sub(1);
        slots.give();
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(most.load() <= kCap);
  CHECK(most.load() >= 1);
  CHECK(slots.servers.load() == 0);
  for (int i = 0; i < kCap; ++i) REQUIRE(slots.tryTake(kCap));
  CHECK_FALSE(slots.tryTake(kCap));
}

TEST_CASE("the worker with the most idle servers lends, never the one asking") {
  PoolSlots slots(3);
  CHECK(slots.workerWithIdle(0) == -1);
  slots.shares[0].idle = 5;
  CHECK(slots.workerWithIdle(0) == -1);
  CHECK(slots.workerWithIdle(1) == 0);
  slots.shares[2].idle = 6;
  CHECK(slots.workerWithIdle(1) == 2);
  CHECK(slots.workerWithIdle(2) == 0);
}

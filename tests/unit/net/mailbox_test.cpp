// Mailbox: tasks posted from other threads run on the loop's thread, each exactly once, in the
// order each thread posted them, and a loop with nothing else to do is not kept alive by it.
#include <uv.h>

#include <catch2/catch.hpp>
#include <atomic>
#include <thread>
#include <vector>

#include "pgmux/net/mailbox.h"

using pgmux::net::Mailbox;

TEST_CASE("tasks from several threads all run on the loop thread, in each thread's order") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  constexpr int kThreads = 4;
  constexpr int kTasks = 2000;
  std::vector<std::vector<int>> seen(kThreads);
  int ran = 0;
  bool wrongThread = false;
  const auto loopThread = std::this_thread::get_id();
  {
    Mailbox box(&loop);
    // The loop runs until the last task stops it; a timer keeps it alive meanwhile.
    uv_timer_t keepAlive;
    uv_timer_init(&loop, &keepAlive);
    uv_timer_start(&keepAlive, [](uv_timer_t*) {}, 60000, 0);
    std::vector<std::thread> posters;
    for (int t = 0; t < kThreads; ++t) {
      posters.emplace_back([&, t] {
        for (int i = 0; i < kTasks; ++i) {
          box.post([&, t, i] {
            wrongThread |= std::this_thread::get_id() != loopThread;
            seen[t].push_back(i);
            if (++ran == kThreads * kTasks) uv_stop(&loop);
          });
        }
      });
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    for (auto& p : posters) p.join();
    uv_close(reinterpret_cast<uv_handle_t*>(&keepAlive), nullptr);
  }
  uv_run(&loop, UV_RUN_DEFAULT);  // the close callbacks
  REQUIRE(uv_loop_close(&loop) == 0);
  CHECK_FALSE(wrongThread);
  CHECK(ran == kThreads * kTasks);
  for (int t = 0; t < kThreads; ++t) {
    REQUIRE(seen[t].size() == static_cast<size_t>(kTasks));
    for (int i = 0; i < kTasks; ++i) CHECK(seen[t][i] == i);
  }
}

TEST_CASE("an idle mailbox does not keep the loop running") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    Mailbox box(&loop);
    // Returns at once: the only handle is the mailbox's, which is unreferenced.
    CHECK(uv_run(&loop, UV_RUN_DEFAULT) == 0);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0);
}

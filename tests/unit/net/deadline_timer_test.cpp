// DeadlineTimer and DeadlineQueue on a real libuv loop: a deadline fires once, never before its
// time; one moved later or cleared is honoured; many timers fire in deadline order on one queue.
#include <algorithm>
#include <memory>
#include <vector>

#include <catch2/catch.hpp>

#include "pgmux/net/deadline_timer.h"

using pgmux::net::DeadlineQueue;
using pgmux::net::DeadlineTimer;

namespace {
struct Recorder : pgmux::net::DeadlineHandler {
  uv_loop_t* loop = nullptr;
  int fired = 0;
  uint64_t firedAt = 0;
  void onDeadline() override {
    ++fired;
    firedAt = uv_now(loop);
  }
};

struct Loop {
  uv_loop_t loop{};
  Loop() { uv_loop_init(&loop); }
  ~Loop() {
    uv_run(&loop, UV_RUN_DEFAULT);  // lets close callbacks run
    CHECK(uv_loop_close(&loop) == 0);
  }
};
}  // namespace

TEST_CASE("a deadline fires once, not before its time", "[net][timer]") {
  Loop l;
  DeadlineQueue q(&l.loop);
  Recorder r;
  r.loop = &l.loop;
  DeadlineTimer t(q, &r);
  const uint64_t due = uv_now(&l.loop) + 20;
  t.set(due);
  uv_run(&l.loop, UV_RUN_DEFAULT);
  CHECK(r.fired == 1);
  CHECK(r.firedAt >= due);
  CHECK(t.deadline() == 0);
}

TEST_CASE("a deadline moved later fires at the later time only", "[net][timer]") {
  Loop l;
  DeadlineQueue q(&l.loop);
  Recorder r;
  r.loop = &l.loop;
  DeadlineTimer t(q, &r);
  const uint64_t start = uv_now(&l.loop);
  t.set(start + 10);
  t.set(start + 60);  // stored; the armed timer wakes at +10 and sleeps again
  uv_run(&l.loop, UV_RUN_DEFAULT);
  CHECK(r.fired == 1);
  CHECK(r.firedAt >= start + 60);
}

TEST_CASE("a cleared deadline never fires, and an earlier one re-arms", "[net][timer]") {
  Loop l;
  DeadlineQueue q(&l.loop);
  Recorder r;
  r.loop = &l.loop;
  DeadlineTimer t(q, &r);
  const uint64_t start = uv_now(&l.loop);
  t.set(start + 30);
  t.clear();
  uv_run(&l.loop, UV_RUN_DEFAULT);
  CHECK(r.fired == 0);

  const uint64_t late = uv_now(&l.loop) + 5000;
  t.set(late);
  const uint64_t early = uv_now(&l.loop) + 5;
  t.set(early);
  uv_run(&l.loop, UV_RUN_DEFAULT);
  CHECK(r.fired == 1);
  CHECK(r.firedAt >= early);
  CHECK(r.firedAt < late);  // the earlier deadline re-armed the timer
  t.close();
}

namespace {
// Records its own index into a shared log when it fires.
struct Numbered : pgmux::net::DeadlineHandler {
  std::vector<int>* log = nullptr;
  int index = 0;
  void onDeadline() override { log->push_back(index); }
};
}  // namespace

TEST_CASE("many timers on one queue fire in deadline order, closed ones never", "[net][timer]") {
  Loop l;
  DeadlineQueue q(&l.loop);
  constexpr int kCount = 40;
  std::vector<int> log;
  std::vector<Numbered> handlers(kCount);
  std::vector<std::unique_ptr<DeadlineTimer>> timers;
  const uint64_t start = uv_now(&l.loop);
  for (int i = 0; i < kCount; ++i) {
    handlers[i].log = &log;
    handlers[i].index = i;
    timers.push_back(std::make_unique<DeadlineTimer>(q, &handlers[i]));
  }
  // Deadlines in a scrambled order: timer i is due at start + 2 * ((i * 7) % kCount) + 5.
  for (int i = 0; i < kCount; ++i) timers[i]->set(start + 5 + 2 * static_cast<uint64_t>((i * 7) % kCount));
  CHECK(q.size() == kCount);
  timers[3]->close();   // leaves the heap at once
  timers[8]->clear();   // leaves it when its old time comes
  timers[11]->set(start + 1);  // moved earlier: first
  CHECK(q.size() == kCount - 1);
  uv_run(&l.loop, UV_RUN_DEFAULT);
  REQUIRE(log.size() == kCount - 2);
  CHECK(log.front() == 11);
  for (size_t k = 2; k < log.size(); ++k) {  // after 11, the others in their order
    CHECK((log[k - 1] * 7) % kCount < (log[k] * 7) % kCount);
  }
  CHECK(std::find(log.begin(), log.end(), 3) == log.end());
  CHECK(std::find(log.begin(), log.end(), 8) == log.end());
  CHECK(q.size() == 0);  // the loop ended because nothing was left to wait for
}

TEST_CASE("a handler may re-arm and close timers of its queue", "[net][timer]") {
  Loop l;
  DeadlineQueue q(&l.loop);
  struct Rearming : pgmux::net::DeadlineHandler {
    DeadlineTimer* self = nullptr;
    DeadlineTimer* other = nullptr;
    uv_loop_t* loop = nullptr;
    int fired = 0;
    void onDeadline() override {
      if (++fired < 3) self->set(uv_now(loop) + 2);
      if (other != nullptr) other->close();
    }
  };
  Rearming a;
  Recorder b;
  b.loop = &l.loop;
  DeadlineTimer ta(q, &a);
  DeadlineTimer tb(q, &b);
  a.self = &ta;
  a.other = &tb;
  a.loop = &l.loop;
  ta.set(uv_now(&l.loop) + 2);
  tb.set(uv_now(&l.loop) + 200);
  uv_run(&l.loop, UV_RUN_DEFAULT);
  CHECK(a.fired == 3);
  CHECK(b.fired == 0);  // closed by the first firing of a
  CHECK(q.size() == 0);
}

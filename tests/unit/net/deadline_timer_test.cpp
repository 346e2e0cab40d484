// DeadlineTimer on a real libuv loop: fires once, never before its deadline, and a deadline
// moved later or cleared is honoured without re-arming libuv's timer each time.
#include <catch2/catch.hpp>

#include "pgmux/net/deadline_timer.h"

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
    uv_loop_close(&loop);
  }
};
}  // namespace

TEST_CASE("a deadline fires once, not before its time", "[net][timer]") {
  Loop l;
  Recorder r;
  r.loop = &l.loop;
  DeadlineTimer t(&l.loop, &r);
  const uint64_t due = uv_now(&l.loop) + 20;
  t.set(due);
  uv_run(&l.loop, UV_RUN_DEFAULT);
  CHECK(r.fired == 1);
  CHECK(r.firedAt >= due);
  CHECK(t.deadline() == 0);
}

TEST_CASE("a deadline moved later fires at the later time only", "[net][timer]") {
  Loop l;
  Recorder r;
  r.loop = &l.loop;
  DeadlineTimer t(&l.loop, &r);
  const uint64_t start = uv_now(&l.loop);
  t.set(start + 10);
  t.set(start + 60);  // stored; the armed timer wakes at +10 and sleeps again
  uv_run(&l.loop, UV_RUN_DEFAULT);
  CHECK(r.fired == 1);
  CHECK(r.firedAt >= start + 60);
}

TEST_CASE("a cleared deadline never fires, and an earlier one re-arms", "[net][timer]") {
  Loop l;
  Recorder r;
  r.loop = &l.loop;
  DeadlineTimer t(&l.loop, &r);
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

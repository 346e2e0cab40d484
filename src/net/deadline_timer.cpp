// DeadlineTimer: one uv timer per owner, re-armed only when a deadline moves earlier.
#include "pgmux/net/deadline_timer.h"

namespace pgmux::net {

void DeadlineTimer::arm(uint64_t atMs) {
  if (timer_ == nullptr) {
    timer_ = new uv_timer_t;
    uv_timer_init(loop_, timer_);
    timer_->data = this;
  }
  const uint64_t now = uv_now(loop_);
  uv_timer_start(timer_, fireCb, atMs > now ? atMs - now : 0, 0);
  armedAt_ = atMs;
}

void DeadlineTimer::set(uint64_t atMs) {
  deadline_ = atMs;
  if (atMs == 0) return;  // a running timer finds no deadline and stops
  if (armedAt_ == 0 || atMs < armedAt_) arm(atMs);
}

void DeadlineTimer::fireCb(uv_timer_t* t) {
  auto* self = static_cast<DeadlineTimer*>(t->data);
  if (self == nullptr) return;
  self->armedAt_ = 0;
  if (self->deadline_ == 0) {
    // Nothing is due any more: an owner that stays idle keeps no uv timer (the next deadline
    // makes one again), which is 160 bytes of every idle client.
    self->close();
    return;
  }
  if (uv_now(self->loop_) < self->deadline_) {
    self->arm(self->deadline_);
    return;
  }
  self->deadline_ = 0;
  self->handler_->onDeadline();
}

void DeadlineTimer::close() {
  deadline_ = 0;
  armedAt_ = 0;
  if (timer_ == nullptr) return;
  timer_->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(timer_), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
  timer_ = nullptr;
}

}  // namespace pgmux::net

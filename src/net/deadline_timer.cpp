// DeadlineQueue: a binary heap of DeadlineTimers by wake-up time, and one uv timer for its top.
#include "pgmux/net/deadline_timer.h"

namespace pgmux::net {

DeadlineQueue::DeadlineQueue(uv_loop_t* loop) : loop_(loop), timer_(new uv_timer_t) {
  uv_timer_init(loop_, timer_);
  timer_->data = this;
}

DeadlineQueue::~DeadlineQueue() {
  for (DeadlineTimer* t : heap_) t->slot_ = DeadlineTimer::kNoSlot;
  timer_->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(timer_), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
}

void DeadlineQueue::place(size_t i, DeadlineTimer* t) {
  heap_[i] = t;
  t->slot_ = static_cast<uint32_t>(i);
}

void DeadlineQueue::siftUp(size_t i) {
  DeadlineTimer* t = heap_[i];
  while (i > 0) {
    const size_t parent = (i - 1) / 2;
    if (heap_[parent]->wakeAt_ <= t->wakeAt_) break;
    place(i, heap_[parent]);
    i = parent;
  }
  place(i, t);
}

void DeadlineQueue::siftDown(size_t i) {
  DeadlineTimer* t = heap_[i];
  const size_t n = heap_.size();
  for (;;) {
    size_t child = 2 * i + 1;
    if (child >= n) break;
    if (child + 1 < n && heap_[child + 1]->wakeAt_ < heap_[child]->wakeAt_) ++child;
    if (t->wakeAt_ <= heap_[child]->wakeAt_) break;
    place(i, heap_[child]);
    i = child;
  }
  place(i, t);
}

void DeadlineQueue::push(DeadlineTimer* t) {
  heap_.push_back(t);
  siftUp(heap_.size() - 1);
}

void DeadlineQueue::insert(DeadlineTimer* t) {
  push(t);
  rearm();
}

void DeadlineQueue::moveEarlier(DeadlineTimer* t) {
  siftUp(t->slot_);
  rearm();
}

void DeadlineQueue::removeAt(size_t i) {
  heap_[i]->slot_ = DeadlineTimer::kNoSlot;
  DeadlineTimer* last = heap_.back();
  heap_.pop_back();
  if (i == heap_.size()) return;
  place(i, last);
  if (i > 0 && heap_[(i - 1) / 2]->wakeAt_ > last->wakeAt_) {
    siftUp(i);
  } else {
    siftDown(i);
  }
}

void DeadlineQueue::erase(DeadlineTimer* t) {
  removeAt(t->slot_);
  // An earlier top is never made by a removal: the uv timer at worst wakes early and re-arms.
  if (heap_.empty()) rearm();
}

void DeadlineQueue::rearm() {
  if (heap_.empty()) {
    if (armedAt_ != 0) uv_timer_stop(timer_);
    armedAt_ = 0;
    return;
  }
  const uint64_t first = heap_.front()->wakeAt_;
  if (armedAt_ != 0 && armedAt_ <= first) return;
  const uint64_t now = uv_now(loop_);
  uv_timer_start(timer_, wakeCb, first > now ? first - now : 0, 0);
  armedAt_ = first;
}

void DeadlineQueue::wakeCb(uv_timer_t* h) noexcept {
  auto* self = static_cast<DeadlineQueue*>(h->data);
  if (self != nullptr) self->wake();
}

void DeadlineQueue::wake() {
  armedAt_ = 0;
  const uint64_t now = uv_now(loop_);
  // At most one look at each timer that was in the heap: a handler that sets a deadline already
  // due is run on the next wake-up, not in a loop here.
  for (size_t budget = heap_.size(); budget > 0 && !heap_.empty() && heap_.front()->wakeAt_ <= now; --budget) {
    DeadlineTimer* t = heap_.front();
    removeAt(0);
    if (t->deadline_ == 0) continue;  // cleared since: it leaves the heap
    if (t->deadline_ > now) {         // moved later since: back in at its new time
      t->wakeAt_ = t->deadline_;
      push(t);
      continue;
    }
    t->deadline_ = 0;
    t->handler_->onDeadline();  // may set or close any timer of this queue
  }
  rearm();
}

void DeadlineTimer::set(uint64_t atMs) {
  deadline_ = atMs;
  if (atMs == 0) return;  // the heap slot finds no deadline when it wakes, and goes
  if (slot_ == kNoSlot) {
    wakeAt_ = atMs;
    queue_.insert(this);
  } else if (atMs < wakeAt_) {
    wakeAt_ = atMs;
    queue_.moveEarlier(this);
  }
}

void DeadlineTimer::close() {
  deadline_ = 0;
  if (slot_ != kNoSlot) queue_.erase(this);
}

}  // namespace pgmux::net

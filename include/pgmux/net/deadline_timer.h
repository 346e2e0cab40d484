// Deadlines of many owners on one uv timer per loop. A DeadlineQueue keeps its loop's armed
// DeadlineTimers in a binary heap ordered by when each must wake, and runs one uv timer for the
// earliest. An owner costs no uv handle of its own, so ten thousand idle clients with a timeout
// pending cost a heap slot each rather than a uv timer each.
//
// Re-arming is lazy: moving a deadline later only stores it. The timer wakes at the old time,
// sees the new deadline and goes back into the heap. So a connection can move its deadline on
// every request without touching the heap.
#pragma once

#include <uv.h>

#include <cstdint>
#include <vector>

namespace pgmux::net {

class DeadlineHandler {
 public:
  virtual ~DeadlineHandler() = default;
  // The deadline passed. The timer is disarmed; the handler may set a new deadline.
  virtual void onDeadline() = 0;
};

class DeadlineTimer;

// One per loop, outliving every DeadlineTimer made with it.
class DeadlineQueue {
 public:
  explicit DeadlineQueue(uv_loop_t* loop);
  ~DeadlineQueue();
  DeadlineQueue(const DeadlineQueue&) = delete;
  DeadlineQueue& operator=(const DeadlineQueue&) = delete;

  uv_loop_t* loop() const { return loop_; }
  // Timers in the heap: armed ones, and cleared ones not yet woken.
  size_t size() const { return heap_.size(); }

 private:
  friend class DeadlineTimer;
  void insert(DeadlineTimer* t);  // push, then rearm
  void push(DeadlineTimer* t);
  void moveEarlier(DeadlineTimer* t);
  void erase(DeadlineTimer* t);
  void removeAt(size_t i);
  void siftUp(size_t i);
  void siftDown(size_t i);
  void place(size_t i, DeadlineTimer* t);
  // Starts the uv timer for the heap's first wake-up unless it already wakes by then; stops it
  // when the heap is empty, so that an idle loop can end.
  void rearm();
  static void wakeCb(uv_timer_t* h) noexcept;
  void wake();

  uv_loop_t* loop_;
  uv_timer_t* timer_;
  std::vector<DeadlineTimer*> heap_;
  uint64_t armedAt_ = 0;  // when the uv timer wakes; 0 when it is stopped
};

class DeadlineTimer {
 public:
  DeadlineTimer(DeadlineQueue& queue, DeadlineHandler* handler) : queue_(queue), handler_(handler) {}
  ~DeadlineTimer() { close(); }
  DeadlineTimer(const DeadlineTimer&) = delete;
  DeadlineTimer& operator=(const DeadlineTimer&) = delete;

  // Fires at `atMs` on the loop's clock (uv_now); 0 disarms.
  void set(uint64_t atMs);
  // Disarms; the heap slot goes when the old wake-up time comes.
  void clear() { deadline_ = 0; }
  uint64_t deadline() const { return deadline_; }
  // Disarms and leaves the heap now.
  void close();

 private:
  friend class DeadlineQueue;
  static constexpr uint32_t kNoSlot = UINT32_MAX;

  DeadlineQueue& queue_;
  DeadlineHandler* handler_;
  uint64_t deadline_ = 0;
  uint64_t wakeAt_ = 0;       // its key in the heap
  uint32_t slot_ = kNoSlot;  // its index in the heap
};

// Milliseconds for a timeout in (fractional) seconds; 0 stays 0 (off).
inline uint64_t timeoutMs(double seconds) {
  return seconds <= 0 ? 0 : static_cast<uint64_t>(seconds * 1000.0 + 0.5);
}

}  // namespace pgmux::net

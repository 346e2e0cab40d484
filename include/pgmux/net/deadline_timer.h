// A lazily re-armed one-shot timer. Moving the deadline later only stores it: the uv timer
// wakes at the old time, sees the new deadline and sleeps again. So a connection can move its
// deadline on every request without touching libuv's timer heap.
#pragma once

#include <uv.h>

#include <cstdint>

namespace pgmux::net {

class DeadlineHandler {
 public:
  virtual ~DeadlineHandler() = default;
  // The deadline passed. The timer is disarmed; the handler may set a new deadline.
  virtual void onDeadline() = 0;
};

class DeadlineTimer {
 public:
  DeadlineTimer(uv_loop_t* loop, DeadlineHandler* handler) : loop_(loop), handler_(handler) {}
  ~DeadlineTimer() { close(); }
  DeadlineTimer(const DeadlineTimer&) = delete;
  DeadlineTimer& operator=(const DeadlineTimer&) = delete;

  // Fires at `atMs` on the loop's clock (uv_now); 0 disarms.
  void set(uint64_t atMs);
  void clear() { deadline_ = 0; }
  uint64_t deadline() const { return deadline_; }
  void close();

 private:
  static void fireCb(uv_timer_t* t);
  void arm(uint64_t atMs);

  uv_loop_t* loop_;
  DeadlineHandler* handler_;
  uv_timer_t* timer_ = nullptr;  // made when a deadline is set, freed once it wakes to none
  uint64_t deadline_ = 0;
  uint64_t armedAt_ = 0;  // when the uv timer will wake; 0 when it is not running
};

// Milliseconds for a timeout in (fractional) seconds; 0 stays 0 (off).
inline uint64_t timeoutMs(double seconds) {
  return seconds <= 0 ? 0 : static_cast<uint64_t>(seconds * 1000.0 + 0.5);
}

}  // namespace pgmux::net

// Work for a loop from other threads: tasks posted from any thread run on the loop's own thread,
// in the order they were posted, at its next turn. A task carries data, never a pointer to a
// connection: the connection may be gone by the time it runs.
#pragma once

#include <uv.h>

#include <functional>
#include <mutex>
#include <vector>

namespace pgmux::net {

class Mailbox {
 public:
  using Task = std::function<void()>;

  // Made and destroyed on the loop's thread; it does not keep the loop alive.
  explicit Mailbox(uv_loop_t* loop);
  ~Mailbox();
  Mailbox(const Mailbox&) = delete;
  Mailbox& operator=(const Mailbox&) = delete;

  // Any thread.
  void post(Task task);

 private:
  static void wakeCb(uv_async_t* h);

  uv_async_t* async_;
  std::mutex mu_;
  std::vector<Task> tasks_;
};

}  // namespace pgmux::net

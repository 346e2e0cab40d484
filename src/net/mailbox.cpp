// Mailbox: a mutex-guarded task list and a uv_async_t to wake the loop.
#include "pgmux/net/mailbox.h"

namespace pgmux::net {

Mailbox::Mailbox(uv_loop_t* loop) : async_(new uv_async_t) {
  uv_async_init(loop, async_, wakeCb);
  async_->data = this;
  uv_unref(reinterpret_cast<uv_handle_t*>(async_));
}

Mailbox::~Mailbox() {
  async_->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(async_), [](uv_handle_t* h) { delete reinterpret_cast<uv_async_t*>(h); });
}

void Mailbox::post(Task task) {
  {
    std::lock_guard lock(mu_);
    tasks_.push_back(std::move(task));
  }
  uv_async_send(async_);  // wakes are coalesced: one wakeCb runs every task posted before it
}

void Mailbox::wakeCb(uv_async_t* h) {
  auto* self = static_cast<Mailbox*>(h->data);
  if (self == nullptr) return;
  std::vector<Task> tasks;
  {
    std::lock_guard lock(self->mu_);
    tasks.swap(self->tasks_);
  }
  for (auto& t : tasks) t();
}

}  // namespace pgmux::net

// A one-shot connection that carries a CancelRequest to the server a client's query runs on.
// While it is in flight the server is not handed to another client, so the cancel can only hit
// the query it was meant for.
#pragma once

#include <cstdint>

#include "pgmux/net/deadline_timer.h"
#include "pgmux/net/stream.h"
#include "pgmux/pool/pooler.h"

namespace pgmux::pool {

class ServerConn;

class CancelConn final : public net::StreamHandler, public net::DeadlineHandler, public Deferred {
 public:
  CancelConn(Pooler& pooler, ServerConn* server);
  // Connects to the server's address; the server learns the end through cancelFinished().
  void start();
  // The server closed first: nobody to tell at the end.
  void serverGone() { server_ = nullptr; }

  void onStreamConnected(int status) override;
  void onStreamRead(net::Slice) override {}
  void onStreamEnd(int) override { finish(); }
  // cancel_wait_timeout: a cancel that has not got through by then is given up.
  void onDeadline() override { finish(); }

 private:
  void finish();

  Pooler& pooler_;
  net::Stream stream_;
  net::DeadlineTimer timer_;
  ServerConn* server_;
  uint32_t pid_;
  uint32_t key_;
  bool done_ = false;
};

}  // namespace pgmux::pool

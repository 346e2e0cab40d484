// A one-shot connection that carries a CancelRequest to the server a client's query runs on.
// While it is in flight the server is not handed to another client, and its client's next
// request is not written to it, so the cancel can only hit the query it was meant for.
//
// PostgreSQL ignores a cancel that arrives while the backend is between commands. A cancel
// sent as a query starts (a pipelined follower's, the moment its turn comes) can arrive before
// the backend has read that query, and be lost. So a cancel whose query is still unanswered a
// moment after PostgreSQL has closed the cancel connection (by then it has signalled the
// backend) is sent again: after 10 ms, then 20, 40, 80 and 160, kMaxSends times in all.
#pragma once

#include <cstdint>

#include "pgmux/net/deadline_timer.h"
#include "pgmux/net/stream.h"
#include "pgmux/pool/pooler.h"

namespace pgmux::pool {

class ServerConn;

class CancelConn final : public net::StreamHandler, public net::DeadlineHandler, public Deferred {
 public:
  static constexpr int kMaxSends = 6;
  static constexpr uint64_t kFirstRecheckMs = 10;  // how long the first one is given to work

  // The `send`th CancelRequest for the query `server` runs (from 1).
  CancelConn(Pooler& pooler, ServerConn* server, int send);
  // Connects to the server's address; the server learns the end through cancelFinished().
  void start();
  // The server closed first: nobody to tell at the end.
  void serverGone() { server_ = nullptr; }
  // The server's query was answered. A cancel already delivered ends here, without telling
  // the server (which drops it itself); true then.
  bool endIfDelivered();

  void onStreamConnected(int status) override;
  void onStreamRead(net::Slice) override {}
  void onStreamEnd(int) override;
  // cancel_wait_timeout: a cancel that has not got through by then is given up. After
  // delivery: the time to see whether it worked.
  void onDeadline() override;

 private:
  void finish();
  bool unanswered() const;

  Pooler& pooler_;
  net::Stream stream_;
  net::DeadlineTimer timer_;
  ServerConn* server_;
  uint32_t pid_;
  uint32_t key_;
  uint32_t answersAtStart_;  // the server's answers() when it was sent
  int send_;
  bool delivered_ = false;
  bool done_ = false;
};

}  // namespace pgmux::pool

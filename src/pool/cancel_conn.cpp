// CancelRequest forwarding over a fresh connection to the server, sent again while it
// leaves its query unanswered.
#include "pgmux/pool/cancel_conn.h"

#include "pgmux/pool/server_conn.h"
#include "pgmux/proto/messages.h"

namespace pgmux::pool {

CancelConn::CancelConn(Pooler& pooler, ServerConn* server, int send)
    : pooler_(pooler),
      stream_(pooler.loop(), this),
      timer_(pooler.deadlines(), this),
      server_(server),
      pid_(server->backendPid()),
      key_(server->backendKey()),
      answersAtStart_(server->answers()),
      send_(send) {}

void CancelConn::start() {
  const ServerTarget& t = server_->target();
  if (const uint64_t ms = net::timeoutMs(pooler_.config().cancelWaitTimeout); ms > 0) {
    timer_.set(uv_now(pooler_.loop()) + ms);
  }
  const int rc = t.isUnix ? stream_.connectUnix(t.unixPath)
                          : stream_.connectTcp(reinterpret_cast<const sockaddr*>(&t.addr));
  if (rc != 0) finish();
}

void CancelConn::onStreamConnected(int status) {
  if (status != 0) {
    finish();
    return;
  }
  std::string out;
  proto::encodeCancelRequest(out, pid_, key_);
  if (stream_.write(std::move(out)) != 0) {
    finish();
    return;
  }
  // PostgreSQL closes the connection once it has signalled the backend.
  stream_.startRead();
}

bool CancelConn::unanswered() const { return server_ != nullptr && server_->awaitsAnswerSince(answersAtStart_); }

void CancelConn::onStreamEnd(int) {
  if (done_) return;
  if (send_ >= kMaxSends || !unanswered()) {
    finish();
    return;
  }
  // Delivered, and the query has not answered yet: give the signal a moment to work.
  delivered_ = true;
  stream_.close();
  timer_.set(uv_now(pooler_.loop()) + (kFirstRecheckMs << (send_ - 1)));
}

void CancelConn::onDeadline() {
  if (delivered_ && unanswered()) {
    // Still running: the backend had not read its query yet when the signal came, or has
    // not reached a point where it looks. The next cancel is in the server's list before
    // this one leaves it.
    pooler_.cancelServerQuery(server_, send_ + 1);
  }
  finish();
}

bool CancelConn::endIfDelivered() {
  if (!delivered_) return false;
  server_ = nullptr;
  finish();
  return true;
}

void CancelConn::finish() {
  if (done_) return;
  done_ = true;
  stream_.close();
  timer_.close();
  pooler_.deferDelete(this);
  if (ServerConn* s = server_) {
    server_ = nullptr;
    s->cancelFinished(this);
  }
}

}  // namespace pgmux::pool

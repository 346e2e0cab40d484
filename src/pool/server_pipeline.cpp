// The server half of cross-client pipelining (server_pipelining, pipeline.h): when a busy
// server may take a follower, taking followers from the pool, writing them with the server's
// request accounting kept for its client, making the next one its client, and running a query
// again that a cancel meant for the one before it stopped.
#include <string_view>
#include <utility>

#include "pgmux/pool/client_conn.h"
#include "pgmux/pool/server_conn.h"
#include "pgmux/util/log.h"

namespace pgmux::pool {

using config::PoolMode;

bool ServerConn::pipelining() const {
  // server_reset_query_always wants a reset between any two clients: no pipelining then.
  const auto& cfg = pool_.pooler().config();
  return cfg.serverPipelining > 0 && pool_.mode() == PoolMode::Transaction && !cfg.serverResetQueryAlways;
}

bool ServerConn::mayTakeFollower() const {
  const int depth = pool_.pooler().config().serverPipelining;
  return pipelining() && state_ == ServerState::Active &&
         static_cast<int>(followers_.size()) < depth && headPipelinable_ && outstanding_ == 1 &&
         internalPending_ == 0 && !unsynced_ && !dirty_ && !copyIn_ && !holding_ && cancels_.empty() &&
         replies_.plainOnly() && txStatus_ == 'I' && generation_ == pool_.generation() &&
         !expired(uv_now(pool_.pooler().loop())) &&
         (orphan_ || (client_ != nullptr && client_->atMessageBoundary()));
}

void ServerConn::pullFollowers() {
  while (mayTakeFollower()) {
    ClientConn* c = pool_.takeFollower(*this);
    if (c == nullptr) {
      // The next client to come may follow here instead of waiting.
      if (!listedOpen_) {
        listedOpen_ = true;
        pool_.pipelineOpen(this);
      }
      return;
    }
    addFollower(c);
  }
}

void ServerConn::addFollower(ClientConn* c) {
  followers_.push_back(Follower{c, {}, cancelsAtHead_, {}});
  Follower& f = followers_.back();
  c->followOn(this, f.expected, f.request);  // writes its request here (a failure closes the server)
}

ServerConn::FollowerWrite ServerConn::beginFollowerWrite(std::vector<Expected>* expected) {
  FollowerWrite saved{outstanding_, unsynced_, syncsSinceExecute_, headPipelinable_};
  outstanding_ = 0;
  unsynced_ = false;
  divert_ = expected;
  return saved;
}

bool ServerConn::endFollowerWrite(const FollowerWrite& saved) {
  const bool whole = outstanding_ == 1 && !unsynced_;
  outstanding_ = saved.outstanding;
  unsynced_ = saved.unsynced;
  syncsSinceExecute_ = saved.syncsSinceExecute;
  headPipelinable_ = saved.headPipelinable;
  divert_ = nullptr;
  return whole;
}

bool ServerConn::promoteFollower() {
  Follower f = std::move(followers_.front());
  followers_.erase(followers_.begin());
  ClientConn* next = f.client;
  outstanding_ = 1;  // its Query or Sync
  unsynced_ = false;
  headPipelinable_ = true;
  replies_.clear();  // what a departed client's request was owed
  uncorkClient();
  if (next == nullptr) {
    orphan_ = true;
    return true;
  }
  client_ = next;
  if (cancelsSent_ != f.cancelsBefore) {
    // A cancel went out for a query ahead of this one: it may reach this one instead.
    exposed_.emplace();
    exposed_->request = std::move(f.request);
  }
  cancelsAtHead_ = cancelsSent_;
  for (Expected& e : f.expected) replies_.push(std::move(e), scope());
  next->corkWrites();
  corked_ = next;
  next->onFollowerRunning();  // may forward what it sent meanwhile, or close
  if (state_ == ServerState::Closing) return false;
  pullFollowers();
  return state_ != ServerState::Closing;
}

bool ServerConn::settleExposed(bool& retried) {
  Exposed e = std::move(*exposed_);
  exposed_.reset();
  retried = e.retry && e.cancelled && txStatus_ == 'I';
  if (!retried) {
    if (!e.answer.empty() && client_->writeToClient(e.answer) != 0) {
      clientWriteFailed();
      return false;
    }
    return true;
  }
  // Stopped by a cancel meant for the query before it: its client never sees that answer, and
  // its request runs again, behind the followers already written.
  LOG_INFO("%s: a cancel for the query before it stopped a pipelined query; running it again", label().c_str());
  ClientConn* c = std::exchange(client_, nullptr);
  uncorkClient();
  followers_.push_back(Follower{c, {}, cancelsAtHead_, std::move(e.request)});
  Follower& f = followers_.back();
  if (!c->followAgain(this, f.expected, f.request.get())) return false;  // the server closed
  return promoteFollower();
}

int ServerConn::toClient(const net::Slice& s) {
  if (!exposed_) return client_->writeToClient(s);
  return toClient(std::string_view(s.chunk->data() + s.offset, s.length));
}

int ServerConn::toClient(std::string_view bytes) {
  if (!exposed_) return client_->writeToClient(bytes);
  exposed_->answer.append(bytes);
  if (exposed_->answer.size() <= kMaxHeldAnswer) return 0;
  // Too much to hold: it goes to the client as it comes, and is not run again.
  const std::string answer = std::move(exposed_->answer);
  exposed_.reset();
  return client_->writeToClient(answer);
}

}  // namespace pgmux::pool

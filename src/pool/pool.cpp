// Pool: server lists, the FIFO wait queue, and handing servers to clients.
#include "pgmux/pool/pool.h"

#include <algorithm>

#include "pgmux/pool/client_conn.h"
#include "pgmux/pool/pooler.h"
#include "pgmux/pool/server_conn.h"
#include "pgmux/util/log.h"

namespace pgmux::pool {

Pool::Pool(Pooler& pooler, std::string dbName, std::string userName, ServerTarget target,
           config::PoolMode mode, int poolSize)
    : pooler_(pooler),
      dbName_(std::move(dbName)),
      userName_(std::move(userName)),
      target_(std::move(target)),
      mode_(mode),
      poolSize_(std::max(poolSize, 1)) {}

Pool::~Pool() = default;

void Pool::learnWelcome(const ParamList& params) {
  if (haveWelcome_) return;
  welcome_ = params;
  haveWelcome_ = true;
  std::list<ClientConn*> waiters;
  waiters.swap(welcomeWaiters_);
  for (ClientConn* c : waiters) c->sendWelcome();
}

void Pool::clientNeedsWelcome(ClientConn* c) {
  if (haveWelcome_) {
    c->sendWelcome();
    return;
  }
  welcomeWaiters_.push_back(c);
  if (connecting_ == 0) launchServers();
}

void Pool::clientNeedsServer(ClientConn* c) {
  if (!idle_.empty()) {
    ServerConn* s = idle_.back();
    idle_.pop_back();
    link(c, s);
    return;
  }
  waiting_.push_back(c);
  launchServers();
}

void Pool::forgetClient(ClientConn* c) {
  waiting_.remove(c);
  welcomeWaiters_.remove(c);
}

void Pool::link(ClientConn* c, ServerConn* s) {
  s->link(c);
  // A failed write in link() closes the server, and the client with it.
  if (s->state() == ServerState::Closing) return;
  c->onServerLinked(s);
}

void Pool::launchServers() {
  // One new server per waiting client not already covered by a login in progress, within
  // pool_size. A connect that fails at once runs serverLoginFailed before connect() returns,
  // which may fail the waiting clients: so recount each time, and stop at the first failure.
  for (;;) {
    const size_t wanted = waiting_.size() + (!haveWelcome_ && !welcomeWaiters_.empty() ? 1 : 0);
    if (serverCount_ >= poolSize_ || static_cast<size_t>(connecting_) >= wanted) return;
    auto* s = new ServerConn(*this, pooler_.nextId());
    ++serverCount_;
    ++connecting_;
    s->connect();
    if (s->state() == ServerState::Closing) return;
  }
}

void Pool::serverReady(ServerConn* s) {
  idle_.erase(std::remove(idle_.begin(), idle_.end(), s), idle_.end());
  if (!waiting_.empty()) {
    ClientConn* c = waiting_.front();
    waiting_.pop_front();
    link(c, s);
    return;
  }
  idle_.push_back(s);
}

void Pool::serverLoggedIn(ServerConn* s) {
  --connecting_;
  // The server is placed first, so that a welcomed client's request finds it idle.
  serverReady(s);
  learnWelcome(s->params());
}

void Pool::serverLoginFailed(ServerConn* s, const Status& why) {
  --connecting_;
  --serverCount_;
  (void)s;
  // Clients that wait for this pool's first login, or for any server while none is left, get
  // the server's error instead of waiting for ever.
  std::list<ClientConn*> failed;
  failed.swap(welcomeWaiters_);
  if (serverCount_ == 0) failed.splice(failed.end(), waiting_);
  for (ClientConn* c : failed) c->close(why);
}

void Pool::serverGone(ServerConn* s) {
  --serverCount_;
  idle_.erase(std::remove(idle_.begin(), idle_.end(), s), idle_.end());
  // Clients still waiting need a replacement.
  if (!waiting_.empty()) launchServers();
}

}  // namespace pgmux::pool

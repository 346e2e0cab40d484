// Pool: server lists, the FIFO wait queue, handing servers to clients, and the pool's own
// limits (pool_size, reserve, min_pool_size, server_login_retry).
#include "pgmux/pool/pool.h"

#include <algorithm>

#include "pgmux/pool/client_conn.h"
#include "pgmux/pool/pooler.h"
#include "pgmux/pool/server_conn.h"
#include "pgmux/util/log.h"

namespace pgmux::pool {

Pool::Pool(Pooler& pooler, std::string dbName, std::string userName, ServerTarget target, PoolSettings settings)
    : pooler_(pooler),
      dbName_(std::move(dbName)),
      userName_(std::move(userName)),
      target_(std::move(target)),
      settings_(settings),
      timer_(pooler.loop(), this) {
  settings_.poolSize = std::max(settings_.poolSize, 1);
}

Pool::~Pool() = default;

void Pool::learnWelcome(const ParamList& params) {
  if (haveWelcome_) return;
  welcome_ = params;
  haveWelcome_ = true;
  std::list<ClientConn*> waiters;
  waiters.swap(welcomeWaiters_);
  for (ClientConn* c : waiters) c->sendWelcome();
}

Status Pool::fastFail() const {
  // A database that is down or restarting (connection refused, "starting up") is waited for,
  // within query_wait_timeout; one that rejects the login, or a pool that never logged in, fails
  // new clients at once while server_login_retry runs.
  if (loginFailedAt_ == 0 || serverCount_ > 0) return Status::ok();
  if (haveWelcome_ && !loginRejected_) return Status::ok();
  const uint64_t retry = net::timeoutMs(pooler_.config().serverLoginRetry);
  if (uv_now(pooler_.loop()) >= loginFailedAt_ + retry) return Status::ok();
  return Status::error(sqlstate::kProtocolViolation,
                       "server login has been failing, try again later (server_login_retry)");
}

void Pool::clientNeedsWelcome(ClientConn* c) {
  used_ = true;
  if (haveWelcome_) {
    c->sendWelcome();
    return;
  }
  if (Status st = fastFail(); !st) {
    c->close(st);
    return;
  }
  welcomeWaiters_.push_back(c);
  launchServers();
}

void Pool::clientNeedsServer(ClientConn* c) {
  const uint64_t now = uv_now(pooler_.loop());
  const uint64_t checkDelay = net::timeoutMs(pooler_.config().serverCheckDelay);
  while (!idle_.empty()) {
    ServerConn* s = idle_.back();
    idle_.pop_back();
    if (s->expired(now)) {
      s->close("server lifetime");
      continue;
    }
    if (s->generation() != generation_) {
      s->close("database configuration changed");
      continue;
    }
    if (checkDelay > 0 && now - s->idleSince() >= checkDelay) {
      // Long idle: make sure it still works before the client's request goes to it. The
      // client waits first in line; a server that fails the check is replaced.
      waiting_.push_front(c);
      s->startCheck(pooler_.config().serverCheckQuery);
      return;
    }
    link(c, s);
    return;
  }
  if (Status st = fastFail(); !st) {
    c->close(st);
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
  const uint64_t now = uv_now(pooler_.loop());
  const auto& cfg = pooler_.config();
  // After a failed login no new one is tried for server_login_retry.
  if (loginFailedAt_ != 0) {
    const uint64_t retryAt = loginFailedAt_ + net::timeoutMs(cfg.serverLoginRetry);
    if (now < retryAt) {
      if (!waiting_.empty() || !welcomeWaiters_.empty() || (used_ && serverCount_ < settings_.minPoolSize)) {
        timer_.set(retryAt);
      }
      return;
    }
  }
  for (;;) {
    const size_t wanted = waiting_.size() + (!haveWelcome_ && !welcomeWaiters_.empty() ? 1 : 0);
    const bool forMin = used_ && serverCount_ < settings_.minPoolSize;
    if (static_cast<size_t>(connecting_) >= wanted && !forMin) return;
    int cap = settings_.poolSize;
    if (settings_.reservePoolSize > 0 && !waiting_.empty()) {
      // The reserve opens to a client that has waited reserve_pool_timeout.
      const uint64_t due = waiting_.front()->waitingSince() + net::timeoutMs(settings_.reservePoolTimeout);
      if (now >= due) {
        cap += settings_.reservePoolSize;
      } else if (serverCount_ >= cap) {
        timer_.set(due);
      }
    }
    if (serverCount_ >= cap) return;
    // The pooler calls back when room is made; only clients (not min_pool_size) evict.
    if (!pooler_.mayOpenServer(*this, static_cast<size_t>(connecting_) < wanted)) return;
    auto* s = new ServerConn(*this, pooler_.nextId());
    ++serverCount_;
    ++connecting_;
    pooler_.serverOpened(*this);
    s->connect();
    if (s->state() == ServerState::Closing) return;  // failed at once: retry later
  }
}

void Pool::onDeadline() { launchServers(); }

void Pool::serverReady(ServerConn* s) {
  idle_.erase(std::remove(idle_.begin(), idle_.end(), s), idle_.end());
  if (s->expired(uv_now(pooler_.loop()))) {
    s->close("server lifetime");  // serverGone() opens a replacement if clients wait
    return;
  }
  if (s->generation() != generation_) {
    s->close("database configuration changed");
    return;
  }
  if (!waiting_.empty()) {
    ClientConn* c = waiting_.front();
    waiting_.pop_front();
    link(c, s);
    return;
  }
  if (pooler_.siblingWaitsForSlot(*this)) {
    s->close("max_db_connections/max_user_connections: slot given to another pool");
    return;
  }
  if (pooler_.config().serverRoundRobin) {
    idle_.insert(idle_.begin(), s);  // FIFO reuse spreads load over all servers
  } else {
    idle_.push_back(s);  // LIFO: the most recently used server is the warmest
  }
}

void Pool::serverLoggedIn(ServerConn* s) {
  --connecting_;
  loginFailedAt_ = 0;
  // The server is placed first, so that a welcomed client's request finds it idle.
  serverReady(s);
  learnWelcome(s->params());
  launchServers();  // min_pool_size, or more waiting clients
}

void Pool::serverLoginFailed(ServerConn* s, const Status& why) {
  --connecting_;
  --serverCount_;
  pooler_.serverClosed(*this);
  if (s->generation() != generation_) {
    launchServers();  // a login to the server the pool has moved away from says nothing
    return;
  }
  loginFailedAt_ = std::max<uint64_t>(uv_now(pooler_.loop()), 1);
  // Auth (28), unknown database (3D) and permission (42) errors are the database refusing
  // this login; anything else (no connection, shutting down, starting up) is an outage.
  const std::string& code = why.sqlstate();
  loginRejected_ = code.rfind("28", 0) == 0 || code.rfind("3D", 0) == 0 || code.rfind("42", 0) == 0;
  // Clients waiting for the pool's first login get the server's error. Clients with a request
  // wait through an outage (retried every server_login_retry, bounded by query_wait_timeout)
  // but not through a refusal once no server is left.
  std::list<ClientConn*> failed;
  failed.swap(welcomeWaiters_);
  if (serverCount_ == 0 && loginRejected_) failed.splice(failed.end(), waiting_);
  for (ClientConn* c : failed) c->close(why);
  launchServers();  // arms the retry timer if clients still wait
}

void Pool::serverGone(ServerConn* s) {
  --serverCount_;
  idle_.erase(std::remove(idle_.begin(), idle_.end(), s), idle_.end());
  pooler_.serverClosed(*this);
  // Clients still waiting (or min_pool_size) need a replacement.
  launchServers();
}

void Pool::retarget(ServerTarget t) {
  target_ = std::move(t);
  ++generation_;
  std::vector<ServerConn*> idle;
  idle.swap(idle_);
  for (ServerConn* s : idle) s->close("database configuration changed");
}

bool Pool::hasWaiting() const { return !waiting_.empty() || (!haveWelcome_ && !welcomeWaiters_.empty()); }

bool Pool::closeOneIdle(const char* reason) {
  if (idle_.empty()) return false;
  ServerConn* s = idle_.front();  // the coldest
  s->close(reason);
  return true;
}

}  // namespace pgmux::pool

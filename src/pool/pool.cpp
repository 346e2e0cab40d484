// Pool: server lists, the FIFO wait queue, handing servers to clients, the pool's own limits
// (pool_size, reserve, min_pool_size, server_login_retry), and moving idle servers between the
// workers' shares.
#include "pgmux/pool/pool.h"

#include <unistd.h>

#include <algorithm>

#include "pgmux/pool/client_conn.h"
#include "pgmux/pool/pooler.h"
#include "pgmux/pool/server_conn.h"
#include "pgmux/util/log.h"

namespace pgmux::pool {

namespace {
// How long a client of a full pool waits for its own worker's servers before one idle on
// another worker is borrowed for it.
constexpr uint64_t kBorrowAfterMs = 5;
}  // namespace

bool sameServer(const ServerTarget& a, const ServerTarget& b) {
  return a.host == b.host && a.port == b.port && a.database == b.database && a.user == b.user &&
         a.password == b.password && a.startupParams == b.startupParams;
}

Pool::Pool(Pooler& pooler, std::string dbName, std::string userName, ServerTarget target, PoolSettings settings)
    : pooler_(pooler),
      dbName_(std::move(dbName)),
      userName_(std::move(userName)),
      target_(std::move(target)),
      settings_(settings),
      timer_(pooler.deadlines(), this),
      slots_(pooler.shared().slots(dbName_, userName_)) {
  settings_.poolSize = std::max(settings_.poolSize, 1);
}

int Pool::totalServerCount() const { return slots_.servers.load(std::memory_order_relaxed); }

Pool::~Pool() = default;

void Pool::learnWelcome(const ParamList& params) {
  if (haveWelcome_) return;
  welcome_ = params;
  for (const auto& [name, value] : params.items()) {
    if (!pooler_.tracked().canonical(name).empty()) trackedWelcome_.set(name, value);
  }
  haveWelcome_ = true;
  if (slots_.workers > 1) slots_.setWelcome(params);
  std::list<ClientConn*> waiters;
  waiters.swap(welcomeWaiters_);
  publish();
  for (ClientConn* c : waiters) c->sendWelcome();
}

Status Pool::fastFail() const {
  // A database that is down or restarting (connection refused, "starting up") is waited for,
  // within query_wait_timeout; one that rejects the login, or a pool that never logged in, fails
  // new clients at once while server_login_retry runs.
  const uint64_t loginFailedAt = slots_.loginFailedAt.load(std::memory_order_relaxed);
  if (loginFailedAt == 0 || totalServerCount() > 0) return Status::ok();
  if (haveWelcome_ && !slots_.loginRejected.load(std::memory_order_relaxed)) return Status::ok();
  const uint64_t retry = net::timeoutMs(pooler_.config().serverLoginRetry);
  if (uv_now(pooler_.loop()) >= loginFailedAt + retry) return Status::ok();
  return Status::error(sqlstate::kProtocolViolation,
                       "server login has been failing, try again later (server_login_retry)");
}

void Pool::clientNeedsWelcome(ClientConn* c) {
  used_ = true;
  if (!haveWelcome_ && slots_.workers > 1) {
    if (auto w = slots_.welcome(); w) learnWelcome(*w);  // another worker's share had a login
  }
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
    publish();
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
      publish();
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
  if (waiting_.empty() && follow(c)) return;
  waiting_.push_back(c);
  launchServers();
}

bool Pool::follow(ClientConn* c) {
  while (!pipelineOpen_.empty()) {
    ServerConn* s = pipelineOpen_.back();
    if (!s->mayTakeFollower()) {
      pipelineOpen_.pop_back();
      s->unlistOpen();
      continue;
    }
    if (!c->mayFollow(*s)) return false;
    s->addFollower(c);  // a server with no room left comes off the list when next looked at
    return true;
  }
  return false;
}

void Pool::forgetClient(ClientConn* c) {
  waiting_.remove(c);
  welcomeWaiters_.remove(c);
  publish();
}

ClientConn* Pool::takeFollower(const ServerConn& s) {
  if (waiting_.empty() || !waiting_.front()->mayFollow(s)) return nullptr;
  ClientConn* c = waiting_.front();
  waiting_.pop_front();
  publish();
  return c;
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
  if (const uint64_t failedAt = slots_.loginFailedAt.load(std::memory_order_relaxed); failedAt != 0) {
    const uint64_t retryAt = failedAt + net::timeoutMs(cfg.serverLoginRetry);
    if (now < retryAt) {
      if (!waiting_.empty() || !welcomeWaiters_.empty() || (used_ && serverCount_ < settings_.minPoolSize)) {
        timer_.set(retryAt);
      }
      return;
    }
  }
  publish();  // this share's waiting clients are seen before it looks for idle servers
  for (;;) {
    const size_t wanted = waiting_.size() + (!haveWelcome_ && !welcomeWaiters_.empty() ? 1 : 0);
    const bool forMin = used_ && totalServerCount() < settings_.minPoolSize;
    const size_t coming = static_cast<size_t>(connecting_) + (borrowing_ ? 1 : 0);
    if (coming >= wanted && !forMin) return;
    int cap = settings_.poolSize;
    if (settings_.reservePoolSize > 0 && !waiting_.empty()) {
      // The reserve opens to a client that has waited reserve_pool_timeout.
      const uint64_t due = waiting_.front()->waitingSince() + net::timeoutMs(settings_.reservePoolTimeout);
      if (now >= due) {
        cap += settings_.reservePoolSize;
      } else if (totalServerCount() >= cap) {
        timer_.set(due);
      }
    }
    // Borrowing an idle server of another worker: microseconds where a login takes
    // milliseconds. Once the pool is full, only for a share with no server or a client that has
    // waited kBorrowAfterMs: a server idle there for an instant would otherwise keep moving
    // between two busy shares (each move of a server with prepared statements costs a
    // DEALLOCATE ALL and new Parses); servers also move at release, where the shares' counts
    // are weighed (serverReady).
    bool mayBorrow = coming < wanted && !borrowing_ && slots_.workers > 1;
    if (mayBorrow && totalServerCount() >= cap && serverCount_ > 0 && !waiting_.empty()) {
      const uint64_t due = waiting_.front()->waitingSince() + kBorrowAfterMs;
      if (now < due) {
        mayBorrow = false;
        if (timer_.deadline() == 0 || due < timer_.deadline()) timer_.set(due);
      }
    }
    if (mayBorrow) {
      if (const int w = slots_.workerWithIdle(pooler_.index()); w >= 0) {
        borrowing_ = true;
        pooler_.postTo(w, [db = dbName_, user = userName_, me = pooler_.index()](Pooler& other) {
          if (Pool* p = other.findPool(db, user); p != nullptr) p->lendServer(me);
        });
        continue;
      }
    }
    // Every server of the pool open: a share releasing one sees this one's waiting clients.
    if (!slots_.tryTake(cap)) return;
    // The pooler calls back when room is made; only clients (not min_pool_size) evict.
    if (!pooler_.takeServerSlot(*this, static_cast<size_t>(connecting_) < wanted)) {
      slots_.give();
      return;
    }
    auto* s = new ServerConn(*this, pooler_.nextId());
    ++serverCount_;
    ++connecting_;
    publish();
    s->connect();
    if (s->state() == ServerState::Closing) return;  // failed at once: retry later
  }
}

void Pool::onDeadline() { launchServers(); }

void Pool::serverReady(ServerConn* s) {
  idle_.erase(std::remove(idle_.begin(), idle_.end(), s), idle_.end());  // every way out publishes
  if (s->expired(uv_now(pooler_.loop()))) {
    s->close("server lifetime");  // serverGone() opens a replacement if clients wait
    return;
  }
  if (s->generation() != generation_) {
    s->close("database configuration changed");
    return;
  }
  if (const int w = waiting_.empty() || !s->justArrived() ? shareDue() : -1; w >= 0) {
    (void)handOver(s, w);  // closed if it could not go
    return;
  }
  if (!waiting_.empty()) {
    ClientConn* c = waiting_.front();
    waiting_.pop_front();
    publish();
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
  publish();
  // A share that started waiting meanwhile may have looked for idle servers before this one
  // was published: having published, look again for it.
  if (const int w = shareDue(); w >= 0) (void)lendIdle(w);
}

void Pool::serverLoggedIn(ServerConn* s) {
  --connecting_;
  slots_.loginFailedAt.store(0, std::memory_order_relaxed);
  // The server is placed first, so that a welcomed client's request finds it idle.
  serverReady(s);
  learnWelcome(s->params());
  launchServers();  // min_pool_size, or more waiting clients
}

void Pool::serverLoginFailed(ServerConn* s, const Status& why) {
  --connecting_;
  --serverCount_;
  serverSlotGone();
  if (s->generation() != generation_) {
    launchServers();  // a login to the server the pool has moved away from says nothing
    return;
  }
  slots_.loginFailedAt.store(std::max<uint64_t>(uv_now(pooler_.loop()), 1), std::memory_order_relaxed);
  // Auth (28), unknown database (3D) and permission (42) errors are the database refusing
  // this login; anything else (no connection, shutting down, starting up) is an outage.
  const std::string& code = why.sqlstate();
  const bool rejected = code.rfind("28", 0) == 0 || code.rfind("3D", 0) == 0 || code.rfind("42", 0) == 0;
  slots_.loginRejected.store(rejected, std::memory_order_relaxed);
  // Clients waiting for the pool's first login get the server's error. Clients with a request
  // wait through an outage (retried every server_login_retry, bounded by query_wait_timeout)
  // but not through a refusal once no server is left.
  std::list<ClientConn*> failed;
  failed.swap(welcomeWaiters_);
  if (totalServerCount() == 0 && rejected) failed.splice(failed.end(), waiting_);
  for (ClientConn* c : failed) c->close(why);
  launchServers();  // arms the retry timer if clients still wait
}

void Pool::serverGone(ServerConn* s) {
  --serverCount_;
  idle_.erase(std::remove(idle_.begin(), idle_.end(), s), idle_.end());
  pipelineOpen_.erase(std::remove(pipelineOpen_.begin(), pipelineOpen_.end(), s), pipelineOpen_.end());
  publish();
  serverSlotGone();
  // Clients still waiting (or min_pool_size) need a replacement.
  launchServers();
}

void Pool::retarget(ServerTarget t) {
  target_ = std::move(t);
  ++generation_;
  std::vector<ServerConn*> idle;
  idle.swap(idle_);
  publish();
  for (ServerConn* s : idle) s->close("database configuration changed");
}

bool Pool::hasWaiting() const { return !waiting_.empty() || (!haveWelcome_ && !welcomeWaiters_.empty()); }

bool Pool::closeOneIdle(const char* reason) {
  if (idle_.empty()) return false;
  ServerConn* s = idle_.front();  // the coldest
  s->close(reason);
  return true;
}

void Pool::serverSlotGone() {
  slots_.give();
  pooler_.serverClosed(*this);
}

void Pool::slotFreed() { launchServers(); }

// ---- servers moving between the workers' shares ----

bool Pool::lendIdle(int w) {
  const uint64_t now = uv_now(pooler_.loop());
  while (!idle_.empty()) {
    ServerConn* s = idle_.back();
    idle_.pop_back();
    publish();
    if (s->expired(now) || s->generation() != generation_) {
      s->close(s->expired(now) ? "server lifetime" : "database configuration changed");
      continue;
    }
    if (handOver(s, w)) return true;
  }
  return false;
}

void Pool::lendServer(int w) {
  if (lendIdle(w)) return;
  pooler_.postTo(w, [db = dbName_, user = userName_](Pooler& other) {
    if (Pool* p = other.findPool(db, user); p != nullptr) p->lendRefused();
  });
}

void Pool::lendRefused() {
  borrowing_ = false;
  launchServers();
}

int Pool::waitingCount() const {
  return static_cast<int>(waiting_.size() + (haveWelcome_ ? 0 : welcomeWaiters_.size()));
}

void Pool::publish() {
  if (slots_.workers == 1) return;
  auto& share = slots_.shares[pooler_.index()];
  // Only changes are written: the other workers read this line. `idle` and `waiting` are
  // sequentially consistent: a share that publishes its waiting clients and then looks for idle
  // servers, and one that publishes an idle server and then looks for waiting clients
  // (serverReady), must not both miss each other. The rest are hints.
  const auto update = [](auto& field, auto value, std::memory_order order) {
    if (field.load(std::memory_order_relaxed) != value) field.store(value, order);
  };
  update(share.servers, serverCount_, std::memory_order_relaxed);
  update(share.idle, static_cast<int>(idle_.size()), std::memory_order_seq_cst);
  update(share.waitingSince, waiting_.empty() ? uint64_t{0} : waiting_.front()->waitingSince(),
         std::memory_order_relaxed);
  update(share.waiting, waitingCount(), std::memory_order_seq_cst);
}

int Pool::shareDue() const {
  if (slots_.workers == 1) return -1;
  int best = -1;
  int fewest = 0;
  const uint64_t now = uv_now(pooler_.loop());
  for (int w = 0; w < slots_.workers; ++w) {
    const auto& share = slots_.shares[w];
    if (w == pooler_.index() || share.waiting.load() == 0) continue;
    const int theirs = share.servers.load();
    // Due: a share with no server, or fewer by two or more; with no client waiting here, also a
    // share whose client has waited kBorrowAfterMs (sooner, its own servers serve it).
    const uint64_t since = share.waitingSince.load();
    const bool waitedLong = since == 0 || now >= since + kBorrowAfterMs;
    if (theirs != 0 && serverCount_ <= theirs + 1 && (!waiting_.empty() || !waitedLong)) continue;
    if (best < 0 || theirs < fewest) {
      best = w;
      fewest = theirs;
    }
  }
  return best;
}

bool Pool::handOver(ServerConn* s, int w) {
  ServerHandoff h;
  if (!s->handOff(h)) {
    s->close("could not hand the server to another worker");
    return false;
  }
  pipelineOpen_.erase(std::remove(pipelineOpen_.begin(), pipelineOpen_.end(), s), pipelineOpen_.end());
  --serverCount_;
  publish();
  // A server handed over straight from its login comes before this share learned the welcome
  // from it: its own parameters are the welcome then.
  h.welcome = haveWelcome_ ? welcome_.clone() : h.params.clone();
  pooler_.postTo(w, [db = dbName_, user = userName_, h = std::move(h)](Pooler& other) {
    if (Pool* p = other.findPool(db, user); p != nullptr) {
      p->adoptServer(h);
      return;
    }
    ::close(h.fd);  // no share there (one that waits or borrows has one): give the slots back
    other.shared().slots(db, user).give();
    other.shared().serverSlotFreed(db, user);
  });
  return true;
}

void Pool::adoptServer(ServerHandoff h) {
  ++serverCount_;
  borrowing_ = false;
  publish();
  if (!h.welcome.empty()) learnWelcome(h.welcome);
  auto* s = new ServerConn(*this, h.id);
  s->adopt(std::move(h));  // comes to serverReady(), or closes
}

}  // namespace pgmux::pool

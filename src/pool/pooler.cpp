// Pooler: accepting clients, creating pools, cancel forwarding and deferred deletion.
#include "pgmux/pool/pooler.h"

#include <fcntl.h>
#include <netdb.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "pgmux/config/settings.h"
#include "pgmux/pool/cancel_conn.h"
#include "pgmux/pool/client_conn.h"
#include "pgmux/pool/server_conn.h"
#include "pgmux/proto/messages.h"
#include "pgmux/util/log.h"

namespace pgmux::pool {

namespace {

// Resolves where the servers of a [databases] entry live.
Status resolveTarget(const config::DatabaseEntry& db, ServerTarget& t) {
  t.host = db.host;
  t.port = db.port;
  if (db.host.empty() || db.host[0] == '/') {
    t.isUnix = true;
    const std::string dir = db.host.empty() ? "/var/run/postgresql" : db.host;
    t.unixPath = dir + "/.s.PGSQL." + std::to_string(db.port);
    if (t.host.empty()) t.host = dir;
    return Status::ok();
  }
  if (uv_ip4_addr(db.host.c_str(), db.port, reinterpret_cast<sockaddr_in*>(&t.addr)) == 0) return Status::ok();
  if (uv_ip6_addr(db.host.c_str(), db.port, reinterpret_cast<sockaddr_in6*>(&t.addr)) == 0) return Status::ok();
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const std::string port = std::to_string(db.port);
  if (getaddrinfo(db.host.c_str(), port.c_str(), &hints, &res) != 0 || res == nullptr) {
    return Status::error(sqlstate::kConnectionFailure, "could not resolve host \"" + db.host + "\"");
  }
  std::memcpy(&t.addr, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  return Status::ok();
}

// Where and as whom the servers of a pool for `dbName` as `user` log in.
Status makeTarget(const config::DatabaseEntry& db, const std::string& dbName, const std::string& user,
                  ServerTarget& t) {
  if (Status st = resolveTarget(db, t); !st) return st;
  t.database = db.dbname.empty() ? dbName : db.dbname;
  t.user = db.user.empty() ? user : db.user;
  t.password = db.password;
  if (!db.clientEncoding.empty()) t.startupParams.emplace_back("client_encoding", db.clientEncoding);
  if (!db.datestyle.empty()) t.startupParams.emplace_back("DateStyle", db.datestyle);
  if (!db.timezone.empty()) t.startupParams.emplace_back("TimeZone", db.timezone);
  if (!db.applicationName.empty()) t.startupParams.emplace_back("application_name", db.applicationName);
  return Status::ok();
}

}  // namespace

Pooler::Pooler(uv_loop_t* loop, Shared& shared, int index, std::shared_ptr<const config::Config> cfg,
               std::shared_ptr<const auth::AuthFile> authFile)
    : loop_(loop),
      shared_(shared),
      index_(index),
      deadlines_(loop),
      mailbox_(loop),
      cfg_(std::move(cfg)),
      authFile_(std::move(authFile)),
      tracked_(cfg_->trackExtraParameters),
      listener_(loop, [this](uv_stream_t* server, bool isPipe) { onAccept(server, isPipe); }) {
  check_ = new uv_check_t;
  uv_check_init(loop_, check_);
  check_->data = this;
  uv_check_start(check_, checkCb);
  uv_unref(reinterpret_cast<uv_handle_t*>(check_));
  // Writes deferred by forwarding (net::Stream::uncorkDeferred) go out at the end of each round
  // of events (checkCb) and, for those made by timers and close callbacks, before the loop
  // polls again.
  prepare_ = new uv_prepare_t;
  uv_prepare_init(loop_, prepare_);
  uv_prepare_start(prepare_, [](uv_prepare_t*) noexcept { net::Stream::flushDeferred(); });
  uv_unref(reinterpret_cast<uv_handle_t*>(prepare_));
}

Pooler::~Pooler() {
  check_->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(check_), [](uv_handle_t* h) { delete reinterpret_cast<uv_check_t*>(h); });
  uv_close(reinterpret_cast<uv_handle_t*>(prepare_),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_prepare_t*>(h); });
  for (Deferred* d : graveyard_) delete d;
}

std::string Pooler::start(const Pooler* first) {
  const auto& cfg = *cfg_;
  const int backlog = cfg.listenBacklog;
  const bool reusePort = cfg.soReuseport || shared_.workerCount() > 1;
  std::string addrs = cfg.listenAddr;
  size_t pos = 0;
  while (pos <= addrs.size() && !addrs.empty()) {
    size_t comma = addrs.find(',', pos);
    std::string a = addrs.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    a.erase(0, a.find_first_not_of(' '));
    a.erase(a.find_last_not_of(' ') + 1);
    if (!a.empty()) {
      if (a == "*") {
        if (auto err = listener_.listenTcp("0.0.0.0", cfg.listenPort, backlog, reusePort); !err.empty()) return err;
      } else if (auto err = listener_.listenTcp(a, cfg.listenPort, backlog, reusePort); !err.empty()) {
        return err;
      }
    }
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  if (first != nullptr && first != this) {
    for (int fd : first->listener_.unixFds()) {
      const int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
      if (copy < 0) return std::string("could not share the unix socket: ") + std::strerror(errno);
      if (auto err = listener_.listenUnixShared(copy, backlog); !err.empty()) return err;
    }
  } else if (!cfg.unixSocketDir.empty()) {
    const std::string path = cfg.unixSocketDir + "/.s.PGSQL." + std::to_string(cfg.listenPort);
    if (auto err = listener_.listenUnix(path, cfg.unixSocketMode, backlog); !err.empty()) return err;
  }
  if (listener_.empty()) return "nothing to listen on: set listen_addr or unix_socket_dir";
  return {};
}

void Pooler::reload(std::shared_ptr<const config::Config> cfg, std::shared_ptr<const auth::AuthFile> authFile) {
  for (const auto* s = config::settings().data(); s != config::settings().data() + config::settings().size(); ++s) {
    if (!s->reloadable && s->show(*cfg) != s->show(*cfg_)) {
      LOG_WARNING("RELOAD: %s changed; it takes effect after a restart", s->name);
    }
  }
  cfg_ = std::move(cfg);
  authFile_ = std::move(authFile);
  // A pool whose [databases] entry now names another server (host, port, database, user,
  // password, startup settings) moves to it: its servers are closed as they come free.
  for (auto& [key, pool] : pools_) {
    const config::DatabaseEntry* db = cfg_->findDatabase(key.first);
    ServerTarget t;
    if (db == nullptr || !makeTarget(*db, key.first, key.second, t)) continue;
    if (!sameServer(t, pool->target())) {
      LOG_INFO("RELOAD: pool %s/%s moves to %s:%d", key.first.c_str(), key.second.c_str(), t.host.c_str(), t.port);
      pool->retarget(std::move(t));
    }
  }
  LOG_INFO("RELOAD: config %s and auth file reloaded", cfg_->path.c_str());
}

void Pooler::stop() {
  stopping_ = true;
  listener_.closeAll();
}

void Pooler::postTo(int w, std::function<void(Pooler&)> task) {
  Pooler& target = shared_.worker(w);
  if (&target == this) {
    task(*this);
    return;
  }
  target.mailbox_.post([&target, task = std::move(task)] { task(target); });
}

Pool* Pooler::findPool(const std::string& dbName, const std::string& user) {
  auto it = pools_.find(std::make_pair(dbName, user));
  return it == pools_.end() ? nullptr : it->second.get();
}

void Pooler::onAccept(uv_stream_t* server, bool isPipe) {
  auto* c = new ClientConn(*this, nextId());
  c->accept(server, isPipe);
}

Result<Pool*> Pooler::poolFor(const config::DatabaseEntry& db, const std::string& dbName, const std::string& user) {
  auto key = std::make_pair(dbName, user);
  if (auto it = pools_.find(key); it != pools_.end()) return it->second.get();
  const auto& cfg = *cfg_;
  ServerTarget t;
  if (Status st = makeTarget(db, dbName, user, t); !st) return st;
  const config::UserEntry* u = cfg.findUser(user);
  PoolSettings ps;
  ps.mode = u != nullptr && u->poolMode ? *u->poolMode : db.poolMode ? *db.poolMode : cfg.poolMode;
  ps.poolSize = u != nullptr && u->poolSize ? *u->poolSize : db.poolSize ? *db.poolSize : cfg.defaultPoolSize;
  ps.minPoolSize = db.minPoolSize.value_or(cfg.minPoolSize);
  ps.reservePoolSize =
      u != nullptr && u->reservePoolSize ? *u->reservePoolSize : db.reservePoolSize.value_or(cfg.reservePoolSize);
  ps.reservePoolTimeout = cfg.reservePoolTimeout;
  ps.maxDbConnections = db.maxDbConnections.value_or(cfg.maxDbConnections);
  ps.maxUserConnections =
      u != nullptr && u->maxUserConnections ? *u->maxUserConnections : cfg.maxUserConnections;
  ps.queryWaitTimeout = u != nullptr && u->queryWaitTimeout ? *u->queryWaitTimeout
                                                             : db.queryWaitTimeout.value_or(cfg.queryWaitTimeout);
  ps.serverLifetime = db.serverLifetime.value_or(cfg.serverLifetime);
  ps.queryTimeout = u != nullptr && u->queryTimeout ? *u->queryTimeout : cfg.queryTimeout;
  ps.idleTransactionTimeout =
      u != nullptr && u->idleTransactionTimeout ? *u->idleTransactionTimeout : cfg.idleTransactionTimeout;
  ps.transactionTimeout = u != nullptr && u->transactionTimeout ? *u->transactionTimeout : cfg.transactionTimeout;
  ps.clientIdleTimeout = u != nullptr && u->clientIdleTimeout ? *u->clientIdleTimeout : cfg.clientIdleTimeout;
  auto pool = std::make_unique<Pool>(*this, dbName, user, std::move(t), ps);
  Pool* p = pool.get();
  pools_.emplace(std::move(key), std::move(pool));
  LOG_DEBUG("new pool %s/%s: mode=%s size=%d", dbName.c_str(), user.c_str(), config::toString(ps.mode),
            ps.poolSize);
  return p;
}

Pooler::FullLimit Pooler::fullLimit(const Pool& p) {
  const auto& s = p.settings();
  const auto [dbFull, userFull] =
      shared_.serverLimits(p.dbName(), p.userName(), s.maxDbConnections, s.maxUserConnections);
  return {p.dbName(), p.userName(), dbFull, userFull};
}

bool Pooler::closeIdleUnder(const FullLimit& limit, const Pool* except) {
  for (auto& [key, other] : pools_) {
    if (other.get() != except && limit.covers(*other) &&
        other->closeOneIdle(limit.dbFull ? "max_db_connections" : "max_user_connections")) {
      return true;
    }
  }
  return false;
}

bool Pooler::siblingWaitsForSlot(Pool& p) {
  const auto& s = p.settings();
  if (s.maxDbConnections <= 0 && s.maxUserConnections <= 0) return false;
  const FullLimit limit = fullLimit(p);
  if (!limit.dbFull && !limit.userFull) return false;
  for (auto& [key, other] : pools_) {
    if (other.get() != &p && other->hasWaiting() && limit.covers(*other)) return true;
  }
  for (auto it = roomWanted_.begin(); it != roomWanted_.end(); ++it) {
    if (it->covers(p)) {
      roomWanted_.erase(it);
      return true;
    }
  }
  return false;
}

bool Pooler::takeServerSlot(Pool& p, bool evict) {
  const auto& s = p.settings();
  if (shared_.takeServerSlot(p.dbName(), p.userName(), s.maxDbConnections, s.maxUserConnections)) return true;
  if (!evict) return false;
  // Make room by closing an idle server of another pool that shares the full limit: here if
  // this worker has one, else on the other workers.
  const FullLimit limit = fullLimit(p);
  if (closeIdleUnder(limit, &p)) return false;
  for (int w = 0; w < shared_.workerCount(); ++w) {
    if (w != index_) postTo(w, [limit](Pooler& other) { other.evictIdleFor(limit); });
  }
  return false;
}

void Pooler::evictIdleFor(const FullLimit& limit) {
  if (closeIdleUnder(limit, nullptr)) return;
  if (std::find(roomWanted_.begin(), roomWanted_.end(), limit) == roomWanted_.end()) roomWanted_.push_back(limit);
}

void Pooler::serverClosed(Pool& p) {
  shared_.serverSlotFreed(p.dbName(), p.userName());
  if (stopping_) return;
  // A slot is free (pool_size, max_db_connections, max_user_connections): pools of the same
  // database or user that wait may use it, on this worker and the others.
  wakePoolsOf(p.dbName(), p.userName(), &p);
  for (int w = 0; w < shared_.workerCount(); ++w) {
    if (w == index_) continue;
    postTo(w, [db = p.dbName(), user = p.userName()](Pooler& other) { other.wakePoolsOf(db, user, nullptr); });
  }
}

void Pooler::wakePoolsOf(const std::string& db, const std::string& user, const Pool* except) {
  for (auto& [key, other] : pools_) {
    if (other.get() == except || !other->hasWaiting()) continue;
    if (other->dbName() == db || other->userName() == user) other->slotFreed();
  }
}

void Pooler::forwardCancel(uint32_t pid, uint32_t key) {
  const int w = shared_.workerOf(pid, key);
  if (w < 0) return;  // unknown key: ignored, as PostgreSQL does
  postTo(w, [pid, key](Pooler& owner) { owner.cancelOwnClient(pid, key); });
}

void Pooler::cancelOwnClient(uint32_t pid, uint32_t key) {
  ClientConn* c = shared_.clientOf(index_, pid, key);
  if (c != nullptr) c->onCancelRequest();  // else gone meanwhile
}

void Pooler::cancelServerQuery(ServerConn* s, int send) {
  auto* cc = new CancelConn(*this, s, send);
  s->cancelStarted(cc);
  cc->start();
}

void Pooler::deferDelete(Deferred* obj) { graveyard_.push_back(obj); }

void Pooler::checkCb(uv_check_t* h) {
  auto* self = static_cast<Pooler*>(h->data);
  if (self == nullptr) return;
  net::Stream::flushDeferred();  // this round's forwarded writes, before anything is deleted
  // Deleting may queue more (a destructor never does today), so swap first.
  std::vector<Deferred*> dead;
  dead.swap(self->graveyard_);
  for (Deferred* d : dead) delete d;
}

}  // namespace pgmux::pool

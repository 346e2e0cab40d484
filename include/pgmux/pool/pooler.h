// One worker's pooler: its loop, listeners, the current config and auth file, its share of every
// pool, its mailbox for the other workers, and the deferred-delete list for connections that die
// inside their own callbacks. What the workers share (limits, cancel keys) is in Shared.
#pragma once

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "pgmux/auth/auth_file.h"
#include "pgmux/auth/scram.h"
#include "pgmux/config/config.h"
#include "pgmux/net/deadline_timer.h"
#include "pgmux/net/listener.h"
#include "pgmux/net/mailbox.h"
#include "pgmux/pool/params.h"
#include "pgmux/pool/statements.h"
#include "pgmux/pool/pool.h"
#include "pgmux/pool/shared.h"

namespace pgmux::pool {

class ClientConn;
class ServerConn;

// Something freed by the loop after the current callback returns.
class Deferred {
 public:
  virtual ~Deferred() = default;
};

class Pooler {
 public:
  // Worker `index` of `shared`, running on `loop`; made on the main thread before any loop runs.
  Pooler(uv_loop_t* loop, Shared& shared, int index, std::shared_ptr<const config::Config> cfg,
         std::shared_ptr<const auth::AuthFile> authFile);
  ~Pooler();

  // Opens the listeners; a message on failure, empty on success. With several workers each has
  // its own TCP listeners (SO_REUSEPORT: the kernel spreads connections over them); the unix
  // socket is bound by the first worker and listened on by every worker.
  std::string start(const Pooler* first);
  // Closes the listeners (connections end with the process).
  void stop();

  uv_loop_t* loop() { return loop_; }
  // The worker's timeouts: every connection's and pool's deadline, on one uv timer.
  net::DeadlineQueue& deadlines() { return deadlines_; }
  int index() const { return index_; }
  Shared& shared() { return shared_; }
  // Runs `task` on worker `w`'s thread (at once when it is this worker).
  void postTo(int w, std::function<void(Pooler&)> task);
  // The current config and auth file. A connection that must keep using one snapshot across
  // callbacks (a login in progress) holds the shared pointer.
  const config::Config& config() const { return *cfg_; }
  const auth::AuthFile& authFile() const { return *authFile_; }
  std::shared_ptr<const config::Config> configSnapshot() const { return cfg_; }
  std::shared_ptr<const auth::AuthFile> authFileSnapshot() const { return authFile_; }
  // RELOAD: new clients and new pools use the new config and auth file; pools already made keep
  // their server address and size. Settings that need a restart are reported, not applied.
  void reload(std::shared_ptr<const config::Config> cfg, std::shared_ptr<const auth::AuthFile> authFile);
  const TrackedParams& tracked() const { return tracked_; }
  // Prepared statements by definition, pooler-wide (one server-side name each).
  StatementRegistry& statements() { return statements_; }

  // The pool for a client of `dbName` as `user` (configured entry `db`); creates it on first use.
  Result<Pool*> poolFor(const config::DatabaseEntry& db, const std::string& dbName, const std::string& user);

  // This worker's share of the pool for `dbName` as `user`, if it has one.
  Pool* findPool(const std::string& dbName, const std::string& user);

  // Cancel keys: each client gets a unique random (pid, key) pair.
  void registerClient(ClientConn* c, uint32_t& pid, uint32_t& key) { shared_.registerClient(index_, c, pid, key); }
  void unregisterClient(ClientConn* c, uint32_t pid, uint32_t key) { shared_.unregisterClient(c, pid, key); }
  // Forwards a CancelRequest for a client's (pid, key) to the server it is linked to, through
  // the worker that owns the client.
  void forwardCancel(uint32_t pid, uint32_t key);
  // Sends a CancelRequest for whatever `s` is running, over a new connection (sent again while
  // that query stays unanswered, cancel_conn.h); `send` counts the sends for it, from 1.
  void cancelServerQuery(ServerConn* s, int send = 1);

  // SCRAM pass-through: keys recovered from a client's login, for logging in to servers as it.
  void rememberScramKeys(const std::string& user, const auth::ScramKey& clientKey,
                         const auth::ScramKey& serverKey) {
    shared_.rememberScramKeys(user, clientKey, serverKey);
  }
  std::optional<std::pair<auth::ScramKey, auth::ScramKey>> scramKeys(const std::string& user) {
    return shared_.scramKeys(user);
  }

  // Server counts per database and user, for max_db_connections and max_user_connections.
  // takeServerSlot counts a new server of `p` in when both allow it; otherwise, with `evict`, it
  // closes an idle server of another pool sharing the full limit (on any worker) to make room,
  // and the pool is called back through launchServers once that one is gone.
  bool takeServerSlot(Pool& p, bool evict);
  // True when a pool sharing a full max_db/user_connections limit with `p` has clients
  // waiting: one of this worker, or one of another worker that asked for room here.
  bool siblingWaitsForSlot(Pool& p);
  // A server of `p` closed: its slots are free for the pools (of every worker) that wait.
  void serverClosed(Pool& p);
  // Client counts per database and user, for max_db_client_connections and
  // max_user_client_connections; admitClient counts the client in when it is allowed.
  Status admitClient(const std::string& db, const std::string& user, int maxDb, int maxUser) {
    return shared_.admitClient(db, user, maxDb, maxUser);
  }
  void clientLeft(const std::string& db, const std::string& user) { shared_.clientLeft(db, user); }

  // Connection counting for max_client_conn, over every worker.
  int clientCount() const { return shared_.clientCount(); }
  void clientOpened() { shared_.clientOpened(); }
  void clientClosed() { shared_.clientClosed(); }
  uint64_t nextId() { return shared_.nextId(); }

  // Frees `obj` after the current callback has returned.
  void deferDelete(Deferred* obj);

 private:
  // A database and/or user at its max_db/max_user_connections limit (`db` and `user` being the
  // pool's that found it so).
  struct FullLimit {
    std::string db;
    std::string user;
    bool dbFull;
    bool userFull;
    // Whether `p`'s servers count against the full limit.
    bool covers(const Pool& p) const { return (dbFull && p.dbName() == db) || (userFull && p.userName() == user); }
    bool operator==(const FullLimit&) const = default;
  };
  FullLimit fullLimit(const Pool& p);
  // Closes an idle server of a pool (not `except`) under `limit`; false when there is none.
  bool closeIdleUnder(const FullLimit& limit, const Pool* except);

  void onAccept(uv_stream_t* server, bool isPipe);
  static void checkCb(uv_check_t* h);
  // On this worker: the cancel for a client it owns; making room under a server limit; a slot
  // freed elsewhere.
  void cancelOwnClient(uint32_t pid, uint32_t key);
  void evictIdleFor(const FullLimit& limit);
  void wakePoolsOf(const std::string& db, const std::string& user, const Pool* except);

  uv_loop_t* loop_;
  Shared& shared_;
  int index_;
  net::DeadlineQueue deadlines_;
  net::Mailbox mailbox_;
  std::shared_ptr<const config::Config> cfg_;
  std::shared_ptr<const auth::AuthFile> authFile_;
  TrackedParams tracked_;
  StatementRegistry statements_;
  net::Listener listener_;
  std::map<std::pair<std::string, std::string>, std::unique_ptr<Pool>> pools_;
  // Other workers' pools waiting for room under max_db/max_user_connections when this one had
  // no idle server to close: the next server of a pool sharing the limit that comes free closes.
  std::vector<FullLimit> roomWanted_;
  std::vector<Deferred*> graveyard_;
  uv_check_t* check_ = nullptr;
  uv_prepare_t* prepare_ = nullptr;
  bool stopping_ = false;
};

}  // namespace pgmux::pool

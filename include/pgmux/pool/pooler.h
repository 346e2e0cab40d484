// The pooler: listeners, the current config and auth file, every pool, the cancel-key registry,
// and the deferred-delete list for connections that die inside their own callbacks.
#pragma once

#include <uv.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "pgmux/auth/auth_file.h"
#include "pgmux/auth/scram.h"
#include "pgmux/config/config.h"
#include "pgmux/net/listener.h"
#include "pgmux/pool/params.h"
#include "pgmux/pool/statements.h"
#include "pgmux/pool/pool.h"

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
  Pooler(uv_loop_t* loop, std::shared_ptr<const config::Config> cfg,
         std::shared_ptr<const auth::AuthFile> authFile);
  ~Pooler();

  // Opens the listeners; a message on failure, empty on success.
  std::string start();
  // Closes the listeners (connections end with the process).
  void stop();

  uv_loop_t* loop() { return loop_; }
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

  // Cancel keys: each client gets a unique random (pid, key) pair.
  void registerClient(ClientConn* c, uint32_t& pid, uint32_t& key);
  void unregisterClient(ClientConn* c, uint32_t pid, uint32_t key);
  // Forwards a CancelRequest for a client's (pid, key) to the server it is linked to.
  void forwardCancel(uint32_t pid, uint32_t key);
  // Sends a CancelRequest for whatever `s` is running, over a new connection.
  void cancelServerQuery(ServerConn* s);

  // SCRAM pass-through: keys recovered from a client's login, for logging in to servers as it.
  void rememberScramKeys(const std::string& user, const auth::ScramKey& clientKey,
                         const auth::ScramKey& serverKey);
  const std::pair<auth::ScramKey, auth::ScramKey>* scramKeys(const std::string& user) const;

  // Server counts per database and user, for max_db_connections and max_user_connections.
  // mayOpenServer may close an idle server of another pool to make room (the pool is then
  // called back through launchServers once it is gone).
  bool mayOpenServer(Pool& p, bool evict);
  // True when a pool sharing a full max_db/user_connections limit with `p` has clients waiting.
  bool siblingWaitsForSlot(Pool& p);
  void serverOpened(Pool& p);
  void serverClosed(Pool& p);
  // Client counts per database and user, for max_db_client_connections and
  // max_user_client_connections; admitClient counts the client in when it is allowed.
  Status admitClient(const std::string& db, const std::string& user, int maxDb, int maxUser);
  void clientLeft(const std::string& db, const std::string& user);

  // Connection counting for max_client_conn.
  int clientCount() const { return clientCount_; }
  void clientOpened() { ++clientCount_; }
  void clientClosed() { --clientCount_; }
  uint64_t nextId() { return ++lastId_; }

  // Frees `obj` after the current callback has returned.
  void deferDelete(Deferred* obj);

 private:
  void onAccept(uv_stream_t* server, bool isPipe);
  static void checkCb(uv_check_t* h);

  uv_loop_t* loop_;
  std::shared_ptr<const config::Config> cfg_;
  std::shared_ptr<const auth::AuthFile> authFile_;
  TrackedParams tracked_;
  StatementRegistry statements_;
  net::Listener listener_;
  std::map<std::pair<std::string, std::string>, std::unique_ptr<Pool>> pools_;
  std::unordered_map<uint64_t, ClientConn*> byCancelKey_;
  std::unordered_map<std::string, std::pair<auth::ScramKey, auth::ScramKey>> scramKeys_;
  std::unordered_map<std::string, int> serversPerDb_;
  std::unordered_map<std::string, int> serversPerUser_;
  std::unordered_map<std::string, int> clientsPerDb_;
  std::unordered_map<std::string, int> clientsPerUser_;
  std::vector<Deferred*> graveyard_;
  uv_check_t* check_ = nullptr;
  int clientCount_ = 0;
  uint64_t lastId_ = 0;
  bool stopping_ = false;
};

}  // namespace pgmux::pool

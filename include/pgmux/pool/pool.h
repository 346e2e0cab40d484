// A pool: the server connections for one (database, user) pair, the FIFO of clients waiting
// for one, and the welcome (ParameterStatus set) learned from the first server login.
#pragma once

#include <sys/socket.h>

#include <list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "pgmux/auth/auth_file.h"
#include "pgmux/config/config.h"
#include "pgmux/pool/params.h"
#include "pgmux/proto/messages.h"
#include "pgmux/util/status.h"

namespace pgmux::pool {

class Pooler;
class ClientConn;
class ServerConn;

// Where and as whom the pool's servers log in.
struct ServerTarget {
  std::string host;  // as configured
  int port = 5432;
  bool isUnix = false;
  std::string unixPath;  // socket file when isUnix
  sockaddr_storage addr{};
  std::string database;  // server-side name
  std::string user;      // server-side user
  std::optional<std::string> password;  // from the [databases] entry
  std::vector<std::pair<std::string, std::string>> startupParams;  // from the entry
};

class Pool {
 public:
  Pool(Pooler& pooler, std::string dbName, std::string userName, ServerTarget target,
       config::PoolMode mode, int poolSize);
  ~Pool();

  const std::string& dbName() const { return dbName_; }
  const std::string& userName() const { return userName_; }
  const ServerTarget& target() const { return target_; }
  config::PoolMode mode() const { return mode_; }
  Pooler& pooler() { return pooler_; }

  // The welcome parameters once a server has logged in.
  bool hasWelcome() const { return haveWelcome_; }
  const ParamList& welcomeParams() const { return welcome_; }

  // A client finished auth and needs the welcome; it gets it now or when a server has logged in.
  void clientNeedsWelcome(ClientConn* c);
  // A client has a request: it is linked to an idle server now or queued (FIFO).
  void clientNeedsServer(ClientConn* c);
  // The client leaves every queue of this pool (it is closing).
  void forgetClient(ClientConn* c);

  // A server finished login, reset, or its client's transaction: give it to the next waiting
  // client or keep it idle.
  void serverReady(ServerConn* s);
  // A server finished its login (the first one also sets the welcome).
  void serverLoggedIn(ServerConn* s);
  // A server failed to connect or log in.
  void serverLoginFailed(ServerConn* s, const Status& why);
  // A server is closing: drop it from the pool's lists (it is deleted later).
  void serverGone(ServerConn* s);
  // Learned from a server's login.
  void learnWelcome(const ParamList& params);

  int serverCount() const { return serverCount_; }
  size_t waitingCount() const { return waiting_.size(); }
  size_t idleCount() const { return idle_.size(); }

 private:
  void launchServers();
  void link(ClientConn* c, ServerConn* s);

  Pooler& pooler_;
  std::string dbName_;
  std::string userName_;
  ServerTarget target_;
  config::PoolMode mode_;
  int poolSize_;

  bool haveWelcome_ = false;
  ParamList welcome_;
  std::vector<ServerConn*> idle_;        // LIFO: the most recently used server is the warmest
  std::list<ClientConn*> waiting_;       // FIFO of clients with a request and no server
  std::list<ClientConn*> welcomeWaiters_;
  int serverCount_ = 0;                  // every server of this pool, connecting ones included
  int connecting_ = 0;                   // servers not logged in yet
};

}  // namespace pgmux::pool

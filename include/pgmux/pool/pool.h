// A pool: the server connections for one (database, user) pair, the FIFO of clients waiting
// for one, and the welcome (ParameterStatus set) learned from the first server login. With
// several workers each has its own share of the pool (its servers, its waiting clients) and
// pool_size counts the servers of every share; an idle server moves to a share whose clients
// wait and that may open no more.
#pragma once

#include <sys/socket.h>

#include <list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "pgmux/auth/auth_file.h"
#include "pgmux/config/config.h"
#include "pgmux/net/deadline_timer.h"
#include "pgmux/pool/params.h"
#include "pgmux/proto/messages.h"
#include "pgmux/util/status.h"

namespace pgmux::pool {

class Pooler;
class ClientConn;
class ServerConn;
struct PoolSlots;
struct ServerHandoff;

// The settings of one pool, resolved once from the [users] entry, the [databases] entry and the
// main section (in that order of precedence) when the pool is made.
struct PoolSettings {
  config::PoolMode mode = config::PoolMode::Session;
  int poolSize = 20;
  int minPoolSize = 0;
  int reservePoolSize = 0;
  double reservePoolTimeout = 5;
  int maxDbConnections = 0;    // 0: no limit
  int maxUserConnections = 0;  // 0: no limit
  double queryWaitTimeout = 120;
  double serverLifetime = 3600;
  double queryTimeout = 0;
  double idleTransactionTimeout = 0;
  double transactionTimeout = 0;
  double clientIdleTimeout = 0;
};

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

// Whether two targets log in to the same server as the same user with the same settings.
bool sameServer(const ServerTarget& a, const ServerTarget& b);

class Pool final : public net::DeadlineHandler {
 public:
  Pool(Pooler& pooler, std::string dbName, std::string userName, ServerTarget target, PoolSettings settings);
  ~Pool() override;

  const std::string& dbName() const { return dbName_; }
  const std::string& userName() const { return userName_; }
  const ServerTarget& target() const { return target_; }
  config::PoolMode mode() const { return settings_.mode; }
  const PoolSettings& settings() const { return settings_; }
  Pooler& pooler() { return pooler_; }

  // The welcome parameters once a server has logged in.
  const ParamList& welcomeParams() const { return welcome_; }
  // The tracked ones among them: where a client's view of its values starts (shared, see ParamList).
  const ParamList& trackedWelcome() const { return trackedWelcome_; }

  // A client finished auth and needs the welcome; it gets it now or when a server has logged in.
  void clientNeedsWelcome(ClientConn* c);
  // A client has a request: it is linked to an idle server now or queued (FIFO). While server
  // logins keep failing and the pool has no server, the client is failed at once instead.
  void clientNeedsServer(ClientConn* c);
  // The client leaves every queue of this pool (it is closing).
  void forgetClient(ClientConn* c);
  // server_pipelining: the first waiting client, taken from the queue, when its request may
  // follow the one running on busy server `s`; null otherwise (the queue stays FIFO).
  ClientConn* takeFollower(const ServerConn& s);
  // Busy server `s` may take a follower and none waits: a client that comes may follow there.
  void pipelineOpen(ServerConn* s) { pipelineOpen_.push_back(s); }

  // A server finished login, reset, or its client's transaction: give it to the next waiting
  // client or keep it idle.
  void serverReady(ServerConn* s);
  // A server finished its login (the first one also sets the welcome).
  void serverLoggedIn(ServerConn* s);
  // A server failed to connect or log in.
  void serverLoginFailed(ServerConn* s, const Status& why);
  // A server is closing: drop it from the pool's lists (it is deleted later).
  void serverGone(ServerConn* s);
  // RELOAD changed where the servers are: new logins go to `t`; every server now open is closed
  // when it comes free (idle ones at once; session-mode ones at the end of their transaction
  // with server_fast_close, else when their client leaves).
  void retarget(ServerTarget t);
  // Learned from a server's login.
  void learnWelcome(const ParamList& params);

  // Opens servers if clients wait, min_pool_size is not met, or the reserve is due; called
  // again by the pooler when a server of the same database or user closes.
  void launchServers();
  // Clients that need a server (a request, or the pool's first login).
  bool hasWaiting() const;
  // Closes one idle server to make room for another pool under max_db/user_connections.
  bool closeOneIdle(const char* reason);
  // A server slot came free (here or on another worker): clients waiting may get a server.
  void slotFreed();

  // Worker `w`'s share needs a server and may open one: it gets an idle one if there is one,
  // else it is told to open its own (lendRefused).
  void lendServer(int w);
  void lendRefused();
  // A server handed over by another worker's share.
  void adoptServer(ServerHandoff h);

  // The servers of every worker's share (for pool_size, min_pool_size, server_idle_timeout).
  int totalServerCount() const;
  // Bumped by retarget(): servers of an older generation are not reused.
  uint32_t generation() const { return generation_; }

 private:
  void link(ClientConn* c, ServerConn* s);
  // A client that found no idle server and no queue: written behind a busy server's query when
  // one may take it. False when none may.
  bool follow(ClientConn* c);
  // Another worker's share that waits and is due a server this share releases: the other has
  // no server, or fewer by two or more (so shares even out without trading back), or this one
  // has no client waiting and the other's oldest has waited kBorrowAfterMs; -1 if none.
  int shareDue() const;
  // Moves idle server `s` to worker `w`'s share; false (and `s` closed) when it could not go.
  bool handOver(ServerConn* s, int w);
  // Hands an idle server to worker `w`; false when there is none.
  bool lendIdle(int w);
  // Tells the other workers what this share has: servers, idle ones, waiting clients.
  void publish();
  int waitingCount() const;
  // Gives up one pool_size slot and the max_db/max_user ones of a server that closed.
  void serverSlotGone();
  void onDeadline() override;
  // Failing login, no server left: the error for a client that needs one now; ok otherwise.
  Status fastFail() const;

  Pooler& pooler_;
  std::string dbName_;
  std::string userName_;
  ServerTarget target_;
  PoolSettings settings_;
  net::DeadlineTimer timer_;  // login retry, reserve pool, min_pool_size
  bool used_ = false;         // min_pool_size applies once a client has come
  uint32_t generation_ = 0;     // bumped when RELOAD moves the pool to another server

  bool haveWelcome_ = false;
  ParamList welcome_;
  ParamList trackedWelcome_;
  std::vector<ServerConn*> idle_;        // LIFO: the most recently used server is the warmest
  std::list<ClientConn*> waiting_;       // FIFO of clients with a request and no server
  // Busy servers that may take a follower (server_pipelining); checked again when used.
  std::vector<ServerConn*> pipelineOpen_;
  std::list<ClientConn*> welcomeWaiters_;
  int serverCount_ = 0;                  // every server of this share, connecting ones included
  int connecting_ = 0;                   // servers not logged in yet
  PoolSlots& slots_;                     // servers of every share, for pool_size
  bool borrowing_ = false;               // a borrowed server (or a refusal) is on its way
};

}  // namespace pgmux::pool

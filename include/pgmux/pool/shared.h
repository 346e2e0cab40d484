// What the workers share. Each worker thread runs its own loop with its own clients, servers and
// share of every pool; the limits are global (adding workers never adds server connections), and
// a client may cancel through any worker. Everything here may be called from any worker thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "pgmux/auth/scram.h"
#include "pgmux/pool/params.h"
#include "pgmux/util/status.h"

namespace pgmux::pool {

class ClientConn;
class Pooler;

// The servers of one (database, user) pool over all its worker shares: how many are open, for
// pool_size, and what each share has (servers, idle ones, waiting clients), so that a share
// short of a server borrows an idle one rather than logging in a new one, and a share releasing
// a server sees who else waits for one.
struct PoolSlots {
  // Written by its own worker on every server taken or given back and read by the others: one
  // cache line each, so that two workers' writes do not keep taking a line from each other.
  struct alignas(64) Share {
    std::atomic<int> servers{0};
    std::atomic<int> idle{0};
    std::atomic<int> waiting{0};
    std::atomic<uint64_t> waitingSince{0};  // loop time of its oldest waiting client, 0: none
  };

  explicit PoolSlots(int workerCount)
      : workers(workerCount), shares(std::make_unique<Share[]>(static_cast<size_t>(workerCount))) {}

  // Counts one more server when fewer than `cap` are open.
  bool tryTake(int cap) {
    int n = servers.load(std::memory_order_relaxed);
    while (n < cap) {
      if (servers.compare_exchange_weak(n, n + 1, std::memory_order_acq_rel)) return true;
    }
    return false;
  }
  void give() { servers.fetch_sub(1, std::memory_order_acq_rel); }
  // The worker (other than `except`) with the most idle servers, or -1.
  int workerWithIdle(int except) const {
    int best = -1;
    int most = 0;
    for (int w = 0; w < workers; ++w) {
      const int n = shares[w].idle.load();
      if (w != except && n > most) {
        best = w;
        most = n;
      }
    }
    return best;
  }

  // The welcome (ParameterStatus set) of the first login, for shares that have had none.
  void setWelcome(const ParamList& params) {
    std::lock_guard lock(welcomeMu_);
    if (!welcome_) welcome_ = params.clone();
  }
  std::optional<ParamList> welcome() {
    std::lock_guard lock(welcomeMu_);
    if (!welcome_) return std::nullopt;
    return welcome_->clone();
  }

  const int workers;
  std::atomic<int> servers{0};
  std::unique_ptr<Share[]> shares;  // by worker; kept only with more than one
  // server_login_retry: when a login last failed (loop milliseconds, 0: it has not or a later
  // one worked), and whether the server refused it (rather than being unreachable).
  std::atomic<uint64_t> loginFailedAt{0};
  std::atomic<bool> loginRejected{false};

 private:
  std::mutex welcomeMu_;
  std::optional<ParamList> welcome_;
};

class Shared {
 public:
  Shared() = default;
  Shared(const Shared&) = delete;
  Shared& operator=(const Shared&) = delete;

  // The workers, registered before any of them runs.
  void addWorker(Pooler* w) { workers_.push_back(w); }
  int workerCount() const { return static_cast<int>(workers_.size()); }
  Pooler& worker(int i) const { return *workers_[static_cast<size_t>(i)]; }

  // Connection ids, unique over the workers.
  uint64_t nextId() { return lastId_.fetch_add(1, std::memory_order_relaxed) + 1; }

  // Cancel keys: each client gets a unique random (pid, key) pair.
  void registerClient(int worker, ClientConn* c, uint32_t& pid, uint32_t& key);
  void unregisterClient(ClientConn* c, uint32_t pid, uint32_t key);
  // The worker of the client holding (pid, key), or -1. Only that worker may touch the client.
  int workerOf(uint32_t pid, uint32_t key);
  // The client of `worker` holding (pid, key); only for that worker's thread.
  ClientConn* clientOf(int worker, uint32_t pid, uint32_t key);

  // SCRAM pass-through: keys recovered from a client's login, for logging in to servers as it.
  void rememberScramKeys(const std::string& user, const auth::ScramKey& clientKey, const auth::ScramKey& serverKey);
  std::optional<std::pair<auth::ScramKey, auth::ScramKey>> scramKeys(const std::string& user);

  // pool_size: the servers of one pool, over every worker's share (the reference stays valid).
  PoolSlots& slots(const std::string& db, const std::string& user);

  // max_db_connections / max_user_connections: counts one more server of `db` and `user` when
  // neither limit (0: none) is reached; false otherwise.
  bool takeServerSlot(const std::string& db, const std::string& user, int maxDb, int maxUser);
  void serverSlotFreed(const std::string& db, const std::string& user);
  // Which of the two limits is reached.
  struct ServerLimits {
    bool dbFull = false;
    bool userFull = false;
  };
  ServerLimits serverLimits(const std::string& db, const std::string& user, int maxDb, int maxUser);

  // max_db_client_connections / max_user_client_connections: counts the client in when allowed.
  Status admitClient(const std::string& db, const std::string& user, int maxDb, int maxUser);
  void clientLeft(const std::string& db, const std::string& user);

  // max_client_conn.
  int clientCount() const { return clients_.load(std::memory_order_relaxed); }
  void clientOpened() { clients_.fetch_add(1, std::memory_order_relaxed); }
  void clientClosed() { clients_.fetch_sub(1, std::memory_order_relaxed); }

 private:
  struct CancelEntry {
    int worker;
    ClientConn* client;
  };

  std::vector<Pooler*> workers_;
  std::atomic<uint64_t> lastId_{0};
  std::atomic<int> clients_{0};

  std::mutex cancelMu_;
  std::unordered_map<uint64_t, CancelEntry> byCancelKey_;

  std::mutex scramMu_;
  std::unordered_map<std::string, std::pair<auth::ScramKey, auth::ScramKey>> scramKeys_;

  std::mutex countMu_;
  std::map<std::pair<std::string, std::string>, PoolSlots> slots_;  // node-based: references stay valid
  std::unordered_map<std::string, int> serversPerDb_;
  std::unordered_map<std::string, int> serversPerUser_;
  std::unordered_map<std::string, int> clientsPerDb_;
  std::unordered_map<std::string, int> clientsPerUser_;
};

}  // namespace pgmux::pool

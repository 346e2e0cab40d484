// Shared: the cancel-key registry, SCRAM keys and global counts, each under its own mutex. None
// of this is on the per-transaction path: it is touched when clients and servers come and go.
#include "pgmux/pool/shared.h"

#include "pgmux/auth/random.h"

namespace pgmux::pool {

namespace {
uint64_t cancelId(uint32_t pid, uint32_t key) { return (static_cast<uint64_t>(pid) << 32) | key; }
}  // namespace

void Shared::registerClient(int worker, ClientConn* c, uint32_t& pid, uint32_t& key) {
  for (;;) {
    uint32_t v[2];
    auth::fillRandom(v, sizeof v);
    if (v[0] == 0 && v[1] == 0) continue;
    std::lock_guard lock(cancelMu_);
    if (byCancelKey_.emplace(cancelId(v[0], v[1]), CancelEntry{worker, c}).second) {
      pid = v[0];
      key = v[1];
      return;
    }
  }
}

void Shared::unregisterClient(ClientConn* c, uint32_t pid, uint32_t key) {
  std::lock_guard lock(cancelMu_);
  auto it = byCancelKey_.find(cancelId(pid, key));
  if (it != byCancelKey_.end() && it->second.client == c) byCancelKey_.erase(it);
}

int Shared::workerOf(uint32_t pid, uint32_t key) {
  std::lock_guard lock(cancelMu_);
  auto it = byCancelKey_.find(cancelId(pid, key));
  return it == byCancelKey_.end() ? -1 : it->second.worker;
}

ClientConn* Shared::clientOf(int worker, uint32_t pid, uint32_t key) {
  std::lock_guard lock(cancelMu_);
  auto it = byCancelKey_.find(cancelId(pid, key));
  return it == byCancelKey_.end() || it->second.worker != worker ? nullptr : it->second.client;
}

void Shared::rememberScramKeys(const std::string& user, const auth::ScramKey& clientKey,
                               const auth::ScramKey& serverKey) {
  std::lock_guard lock(scramMu_);
  scramKeys_[user] = {clientKey, serverKey};
}

std::optional<std::pair<auth::ScramKey, auth::ScramKey>> Shared::scramKeys(const std::string& user) {
  std::lock_guard lock(scramMu_);
  auto it = scramKeys_.find(user);
  if (it == scramKeys_.end()) return std::nullopt;
  return it->second;
}

PoolSlots& Shared::slots(const std::string& db, const std::string& user) {
  std::lock_guard lock(countMu_);
  return slots_.try_emplace({db, user}, workerCount()).first->second;
}

Shared::ServerLimits Shared::serverLimits(const std::string& db, const std::string& user, int maxDb, int maxUser) {
  std::lock_guard lock(countMu_);
  return {maxDb > 0 && serversPerDb_[db] >= maxDb, maxUser > 0 && serversPerUser_[user] >= maxUser};
}

bool Shared::takeServerSlot(const std::string& db, const std::string& user, int maxDb, int maxUser) {
  std::lock_guard lock(countMu_);
  int& perDb = serversPerDb_[db];
  int& perUser = serversPerUser_[user];
  if ((maxDb > 0 && perDb >= maxDb) || (maxUser > 0 && perUser >= maxUser)) return false;
  ++perDb;
  ++perUser;
  return true;
}

void Shared::serverSlotFreed(const std::string& db, const std::string& user) {
  std::lock_guard lock(countMu_);
  --serversPerDb_[db];
  --serversPerUser_[user];
}

Status Shared::admitClient(const std::string& db, const std::string& user, int maxDb, int maxUser) {
  std::lock_guard lock(countMu_);
  int& perDb = clientsPerDb_[db];
  int& perUser = clientsPerUser_[user];
  if (maxDb > 0 && perDb >= maxDb) {
    return Status::error(sqlstate::kTooManyConnections, "no more connections allowed (max_db_client_connections)");
  }
  if (maxUser > 0 && perUser >= maxUser) {
    return Status::error(sqlstate::kTooManyConnections, "no more connections allowed (max_user_client_connections)");
  }
  ++perDb;
  ++perUser;
  return Status::ok();
}

void Shared::clientLeft(const std::string& db, const std::string& user) {
  std::lock_guard lock(countMu_);
  --clientsPerDb_[db];
  --clientsPerUser_[user];
}

}  // namespace pgmux::pool

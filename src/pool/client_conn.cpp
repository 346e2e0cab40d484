// Client connection: startup packet, auth, welcome, and the client-to-server half of forwarding.
#include "pgmux/pool/client_conn.h"

#include <strings.h>

#include <algorithm>
#include <cstring>

#include "pgmux/pool/reset_query.h"
#include "pgmux/pool/server_conn.h"
#include "pgmux/proto/messages.h"
#include "pgmux/util/log.h"

namespace pgmux::pool {

namespace {
bool listHas(const std::vector<std::string>& list, std::string_view name) {
  return std::any_of(list.begin(), list.end(), [&](const std::string& s) {
    return s.size() == name.size() && strncasecmp(s.data(), name.data(), name.size()) == 0;
  });
}
}  // namespace

ClientConn::ClientConn(Pooler& pooler, uint64_t id)
    : pooler_(pooler),
      id_(id),
      stream_(pooler.loop(), this),
      timer_(pooler.deadlines(), this),
      scanner_(static_cast<uint32_t>(std::min<int64_t>(pooler.config().maxPacketSize, 0x7fffffff))) {}

ClientConn::~ClientConn() { dropPending(); }

namespace {
const std::string kNoName;
}  // namespace

const std::string& ClientConn::userName() const {
  return pool_ != nullptr ? pool_->userName() : login_ != nullptr ? login_->user : kNoName;
}

const std::string& ClientConn::databaseName() const {
  return pool_ != nullptr ? pool_->dbName() : login_ != nullptr ? login_->database : kNoName;
}

std::string ClientConn::label() const {
  std::string s = "C-" + std::to_string(id_) + " ";
  if (!userName().empty()) s += userName() + "@";
  s += peer_.toString();
  if (!databaseName().empty()) s += " db=" + databaseName();
  return s;
}

void ClientConn::accept(uv_stream_t* server, bool isPipe) {
  if (int rc = stream_.accept(server, isPipe); rc != 0) {
    LOG_WARNING("accept failed: %s", uv_strerror(rc));
    state_ = ClientState::Closing;
    pooler_.deferDelete(this);
    return;
  }
  pooler_.clientOpened();
  counted_ = true;
  connectedAt_ = uv_now(pooler_.loop());
  armTimeouts();
  login_ = std::make_unique<Login>();
  peer_ = stream_.peerAddress();
  stream_.setNoDelay();
  if (pooler_.config().tcpKeepalive) stream_.setKeepalive(true, 60);
  stream_.startRead();
}

void ClientConn::close(const Status& reason, bool tell) {
  if (state_ == ClientState::Closing) return;
  const bool quiet = reason.isOk();
  if (!quiet) {
    if (pooler_.config().logDisconnections || pooler_.config().logPoolerErrors) {
      LOG_INFO("%s: closing: %s", label().c_str(), reason.message().c_str());
    }
    if (tell && stream_.isOpen()) {
      std::string out;
      proto::encodeErrorResponse(out, "FATAL", reason.sqlstate(), reason.message());
      (void)stream_.write(std::move(out));
    }
  } else if (pooler_.config().logDisconnections && state_ != ClientState::Startup) {
    LOG_INFO("%s: closing: client close request", label().c_str());
  }
  state_ = ClientState::Closing;
  timer_.close();
  if (pool_ != nullptr) pool_->forgetClient(this);
  if (server_ != nullptr) detachServer(true);
  dropPending();
  if (registered_) {
    pooler_.unregisterClient(this, cancelPid_, cancelKey_);
    registered_ = false;
  }
  if (counted_) {
    pooler_.clientClosed();
    counted_ = false;
  }
  if (admitted_) {
    pooler_.clientLeft(databaseName(), userName());
    admitted_ = false;
  }
  stream_.close();
  pooler_.deferDelete(this);
}

void ClientConn::onStreamEnd(int status) {
  if (status == UV_EOF) {
    close(Status::ok(), false);
  } else {
    close(Status::error("08006", std::string("client connection error: ") + uv_strerror(status)), false);
  }
}

void ClientConn::onStreamDrained() {
  if (server_ != nullptr) server_->resumeRead();
}

void ClientConn::resumeRead() {
  if (state_ == ClientState::Active || state_ == ClientState::Idle) stream_.startRead();
}

void ClientConn::onStreamRead(net::Slice data) {
  switch (state_) {
    case ClientState::Startup:
    case ClientState::Auth:
      login_->buf.append(data.chunk->data() + data.offset, data.length);
      processLogin();
      return;
    case ClientState::WaitWelcome:
    case ClientState::Waiting:
      // Still reading while queued, so that a client that leaves is noticed (and its request
      // never runs); only a client that keeps sending is paused.
      keepPending(data);
      if (pendingBytes_ > kMaxPendingBytes) stream_.stopRead();
      return;
    case ClientState::Idle:
      keepPending(data);
      onRequest();
      return;
    case ClientState::Active:
      if (server_->holdsClientInput() || !pending_.empty()) {
        // Pipelined (this client follows, or others follow it, or its request may run again),
        // or a cancel is on its way: what it sends now waits for its own turn to end
        // (onServerReleased) or the cancel to arrive (forwardHeldInput), and so does anything
        // after what already waits.
        keepPending(data);
        if (pendingBytes_ > kMaxPendingBytes) stream_.stopRead();
        return;
      }
      forwardToServer(data);
      return;
    case ClientState::Closing:
      return;
  }
}

void ClientConn::keepPending(const net::Slice& s) {
  s.chunk->ref();
  pending_.push_back(s);
  pendingBytes_ += static_cast<uint32_t>(s.length);
}

void ClientConn::dropPending() {
  for (size_t i = 0; i < pending_.size(); ++i) pending_[i].chunk->unref();
  pending_.clear();
  pendingBytes_ = 0;
}

void ClientConn::onRequest() {
  if (pending_.empty()) return;
  // A lone Terminate needs no server.
  if (scanner_.atBoundary()) {
    const auto& first = pending_.front();
    if (first.length >= 1 && first.chunk->data()[first.offset] == 'X') {
      close(Status::ok(), false);
      return;
    }
    if (answerResetLocally()) return;
  }
  setState(ClientState::Waiting);
  pool_->clientNeedsServer(this);
  if (state_ != ClientState::Waiting) return;
  compactPending();
  if (pendingBytes_ > kMaxPendingBytes) stream_.stopRead();
}

bool ClientConn::answerResetLocally() {
  if (pool_->mode() == config::PoolMode::Session || !pooler_.config().localResetQuery) return false;
  // One whole simple Query, alone in one read: what a driver sends to reset a connection.
  if (pending_.size() != 1) return false;
  const net::Slice& s = pending_.front();
  const std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(s.chunk->data() + s.offset), s.length);
  proto::FrameHeader h;
  if (bytes[0] != 'Q' || proto::peekFrame(bytes, h) != proto::DecodeStatus::Ok || h.totalSize() != s.length ||
      h.bodySize() == 0 || bytes.back() != 0) {
    return false;
  }
  // The query text up to its terminating NUL; one inside it fails the match as a foreign byte.
  const std::string_view sql(reinterpret_cast<const char*>(bytes.data()) + proto::kFrameHeaderSize, h.bodySize() - 1);
  std::string reply;
  bool resetAll = false;
  if (!answerResetQuery(sql, reply, resetAll)) return false;
  if (resetAll && !resetToDefaults(pooler_.tracked(), params_, defaults_, reply)) return false;
  proto::encodeReadyForQuery(reply, 'I');
  dropPending();
  if (stream_.write(std::move(reply)) != 0) {
    close(Status::error(sqlstate::kConnectionFailure, "client write failed"), false);
    return true;
  }
  setState(ClientState::Idle);  // a request answered: idle from now (client_idle_timeout)
  return true;
}

void ClientConn::compactPending() {
  if (pendingBytes_ > kCompactBytes) return;
  // Already a copy: only reads land in default-size chunks.
  if (pending_.size() == 1 && pending_.front().chunk->capacity() != net::Chunk::kDefaultCapacity) return;
  net::Chunk* c = net::Chunk::acquire(pendingBytes_);
  for (size_t i = 0; i < pending_.size(); ++i) {
    const net::Slice& sl = pending_[i];
    std::memcpy(c->tail(), sl.chunk->data() + sl.offset, sl.length);
    c->commit(sl.length);
    sl.chunk->unref();
  }
  pending_.clear();
  pending_.push_back(net::Slice{c, 0, pendingBytes_});
  stream_.dropReadBuffer();
}

void ClientConn::onServerLinked(ServerConn* s) {
  if (state_ == ClientState::Closing) return;
  server_ = s;
  setState(ClientState::Active);
  forwardPending(s);
  if (state_ == ClientState::Active && s->mayTakeFollower()) s->pullFollowers();
}

void ClientConn::forwardPending(ServerConn* s) {
  for (size_t i = 0; i < pending_.size(); ++i) {
    const net::Slice slice = pending_[i];  // a close empties the list under the call
    forwardToServer(slice);
    // Only a close leaves Active here, and it has dropped the pending slices already.
    if (state_ != ClientState::Active) return;
  }
  dropPending();
  if (!s->stream().aboveHighWater()) stream_.startRead();
}

void ClientConn::onServerReleased() {
  server_ = nullptr;
  if (prepared_) {  // the unnamed statement and the portals stayed on that server
    prepared_->unnamed = Unnamed::None;
    prepared_->deallocatePortals.clear();
  }
  if (state_ == ClientState::Closing) return;
  setState(ClientState::Idle);
  // A request sent while others' queries were pipelined behind its own (or a cancel was on its
  // way): it needs a server again, unless the client has cancelled it meanwhile.
  if (std::exchange(cancelDeferred_, false) && pendingIsOneRequest()) {
    answerPendingAsCancelled();
    return;
  }
  if (!pending_.empty()) {
    onRequest();
    return;
  }
  // A request that waited for a server left its read's chunk with the stream: an idle client
  // holds no buffer.
  stream_.dropReadBuffer();
  stream_.startRead();
}

void ClientConn::onServerLost(const Status& why, bool tell) {
  server_ = nullptr;
  close(why, tell);
}

void ClientConn::detachServer(bool clientGone) {
  ServerConn* s = server_;
  server_ = nullptr;
  if (s != nullptr && clientGone) s->clientGone(this, scanner_.atBoundary());
}

void ClientConn::forwardToServer(const net::Slice& s) {
  ServerConn* srv = server_;
  Status failure = Status::ok();
  bool terminate = false;
  // A request that others may follow (server_pipelining) is known before it is rewritten.
  const bool pipelinable = srv->pipelining() && srv->atRequestStart() && pipelinableRequest(s, *srv);
  srv->stream().cork();
  scanMessages(srv, s, failure, terminate);
  if (pipelinable) srv->markPipelinable();
  const int rc = srv->stream().uncorkDeferred();
  if (!failure.isOk()) {
    srv->markDirty();
    close(failure);
    return;
  }
  if (terminate) {
    close(Status::ok(), false);
    return;
  }
  if (rc != 0) {
    srv->markDirty();
    close(Status::error(sqlstate::kConnectionFailure, "server connection write failed"));
    return;
  }
  if (srv->stream().aboveHighWater()) {
    stream_.stopRead();
    srv->stream().wantDrain();
    return;
  }
  if (srv->mayTakeFollower()) srv->pullFollowers();
}

void ClientConn::scanMessages(ServerConn* srv, const net::Slice& s, Status& failure, bool& terminate) {
  const std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(s.chunk->data() + s.offset), s.length);
  size_t pos = 0;
  size_t start = 0;  // bytes from here to pos go out as they are
  proto::ScannedMessage m;
  for (;;) {
    if (prepared_ && prepared_->held.active) {
      continueHeld(srv, s, bytes, pos, start, failure);
      if (!failure.isOk()) return;
      if (pos == bytes.size()) break;
      continue;
    }
    if (trackStatements_ && scanner_.atBoundary() && pos < bytes.size()) {
      const char type = static_cast<char>(bytes[pos]);
      if (type == 'P' || type == 'B' || type == 'D' || type == 'C') {
        srv->extendedSent();
        if (!interceptMessage(srv, s, bytes, pos, start, failure)) return;
        continue;
      }
      if (type == 'Q' && deallocateStatement(srv, s, bytes, pos, start)) continue;
    }
    const auto st = scanner_.next(bytes, pos, m);
    if (st == proto::DecodeStatus::NeedMore) break;
    if (st == proto::DecodeStatus::Invalid) {
      failure = Status::error(sqlstate::kProtocolViolation, "invalid packet length from client");
      return;
    }
    switch (m.type) {
      case 'Q':
        if (activeTimeouts_) requestStarted();
        srv->requestSent();
        if (trackStatements_) srv->expect(Expected(Expect::Query));
        break;
      case 'F':
        if (activeTimeouts_) requestStarted();
        srv->requestSent();
        if (trackStatements_) srv->expect(Expected(Expect::Query));
        break;
      case 'S':
        if (activeTimeouts_) requestStarted();
        if (srv->syncSent() && trackStatements_) srv->expect(Expected(Expect::Sync));
        break;
      case 'E':
        srv->executeSent();
        if (trackStatements_) executeSent(srv, m);
        break;
      case 'c':
      case 'f':
        srv->copyEnded();
        break;
      case 'P':
      case 'B':
      case 'D':
      case 'C':
      case 'H':
        srv->extendedSent();
        break;
      case 'X': {
        // Terminate ends the client, never the pooled server.
        const size_t total = static_cast<size_t>(m.length) + 1;
        if (pos < total) {
          srv->markDirty();  // its first bytes went out with an earlier read
        } else if (pos - total > start) {
          (void)srv->write(net::Slice{s.chunk, s.offset + start, pos - total - start});
        }
        terminate = true;
        return;
      }
      default:
        break;
    }
  }
  if (start < bytes.size()) (void)srv->write(net::Slice{s.chunk, s.offset + start, bytes.size() - start});
}

// ---- timeouts ----

void ClientConn::setState(ClientState to) {
  const bool loggingIn = state_ == ClientState::Startup || state_ == ClientState::Auth ||
                         state_ == ClientState::WaitWelcome;
  state_ = to;
  stateSince_ = uv_now(pooler_.loop());
  if (to != ClientState::Active) {
    queryStart_ = 0;
    txStart_ = 0;
    idleInTxSince_ = 0;
  }
  armTimeouts();
  // Logged in with nothing due (no client_idle_timeout): the login timeout leaves the queue now
  // rather than when it would have woken, so a client that stays idle holds no heap slot.
  if (loggingIn && to == ClientState::Idle && timer_.deadline() == 0) timer_.close();
}

void ClientConn::armTimeouts() {
  uint64_t due = 0;
  const auto consider = [&due](uint64_t since, double seconds) {
    const uint64_t ms = net::timeoutMs(seconds);
    if (since == 0 || ms == 0) return;
    if (due == 0 || since + ms < due) due = since + ms;
  };
  switch (state_) {
    case ClientState::Startup:
    case ClientState::Auth:
      consider(connectedAt_, pooler_.config().clientLoginTimeout);
      break;
    case ClientState::WaitWelcome:
    case ClientState::Waiting:
      consider(stateSince_, pool_->settings().queryWaitTimeout);
      break;
    case ClientState::Idle:
      consider(stateSince_, pool_->settings().clientIdleTimeout);
      break;
    case ClientState::Active:
      consider(queryStart_, pool_->settings().queryTimeout);
      consider(idleInTxSince_, pool_->settings().idleTransactionTimeout);
      consider(txStart_, pool_->settings().transactionTimeout);
      break;
    case ClientState::Closing:
      return;
  }
  timer_.set(due);
}

void ClientConn::requestStarted() {
  if (queryStart_ == 0) queryStart_ = uv_now(pooler_.loop());
  idleInTxSince_ = 0;
  armTimeouts();
}

void ClientConn::trackTransaction(char txStatus, bool idle) {
  const uint64_t now = uv_now(pooler_.loop());
  if (idle) queryStart_ = 0;
  if (txStatus == 'I') {
    txStart_ = 0;
    idleInTxSince_ = 0;
  } else {
    if (txStart_ == 0) txStart_ = queryStart_ != 0 ? queryStart_ : now;
    idleInTxSince_ = idle ? now : 0;
  }
  armTimeouts();
}

void ClientConn::onDeadline() {
  const uint64_t now = uv_now(pooler_.loop());
  const auto passed = [now](uint64_t since, double seconds) {
    const uint64_t ms = net::timeoutMs(seconds);
    return since != 0 && ms != 0 && now >= since + ms;
  };
  const auto timeout = [this](const char* what) {
    close(Status::error(sqlstate::kProtocolViolation, what));
  };
  switch (state_) {
    case ClientState::Startup:
    case ClientState::Auth:
      if (passed(connectedAt_, pooler_.config().clientLoginTimeout)) return timeout("client_login_timeout");
      break;
    case ClientState::WaitWelcome:
    case ClientState::Waiting:
      if (passed(stateSince_, pool_->settings().queryWaitTimeout)) return timeout("query_wait_timeout");
      break;
    case ClientState::Idle:
      if (passed(stateSince_, pool_->settings().clientIdleTimeout)) return timeout("client_idle_timeout");
      break;
    case ClientState::Active: {
      const auto& s = pool_->settings();
      const char* what = passed(queryStart_, s.queryTimeout)                 ? "query timeout"
                         : passed(idleInTxSince_, s.idleTransactionTimeout) ? "idle transaction timeout"
                         : passed(txStart_, s.transactionTimeout)            ? "transaction timeout"
                                                                             : nullptr;
      if (what != nullptr) {
        // A query still running is cancelled first: closing the connection alone would leave
        // the backend working until it next writes.
        // A query still waiting behind another client's is not cancelled: that one would be.
        if (queryStart_ != 0 && server_ != nullptr && !following()) pooler_.cancelServerQuery(server_);
        return timeout(what);
      }
      break;
    }
    case ClientState::Closing:
      return;
  }
  armTimeouts();
}

void ClientConn::onCancelRequest() {
  switch (state_) {
    case ClientState::Waiting:
      // A queued pipeline of several requests is left to run.
      if (pendingIsOneRequest()) {
        pool_->forgetClient(this);
        answerPendingAsCancelled();
      }
      return;
    case ClientState::Active:
      // Its request waits behind another client's query on the server, or in pgmux while the
      // server holds its input: a cancel now would stop another query, or find none.
      if (following() || (!pending_.empty() && server_->atRequestStart())) {
        cancelDeferred_ = true;
        return;
      }
      pooler_.cancelServerQuery(server_);
      return;
    default:
      return;  // nothing runs (an idle client has nothing to cancel)
  }
}

void ClientConn::sendDeferredCancel() {
  if (std::exchange(cancelDeferred_, false)) pooler_.cancelServerQuery(server_);
}

bool ClientConn::pendingIsOneRequest() const {
  // Only whole messages can be answered for: count the requests the client awaits answers to.
  proto::FrameScanner scan(proto::kDefaultMaxPacketSize, 0);
  int requests = 0;
  for (size_t i = 0; i < pending_.size(); ++i) {
    const net::Slice& sl = pending_[i];
    const std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(sl.chunk->data() + sl.offset), sl.length);
    size_t pos = 0;
    proto::ScannedMessage m;
    for (;;) {
      const auto st = scan.next(bytes, pos, m);
      if (st == proto::DecodeStatus::NeedMore) break;
      if (st == proto::DecodeStatus::Invalid) return false;
      if (m.type == 'Q' || m.type == 'F' || m.type == 'S') ++requests;
      if (m.type == 'X') return false;
    }
  }
  // One request (a Query, or one extended batch ending in Sync) is answered exactly as
  // PostgreSQL would; a queued pipeline of several is left to run.
  return scan.atBoundary() && requests == 1;
}

void ClientConn::answerPendingAsCancelled() {
  dropPending();
  setState(ClientState::Idle);
  stream_.startRead();
  std::string out;
  proto::encodeErrorResponse(out, "ERROR", sqlstate::kQueryCanceled, sqlstate::kCancelRequestMessage);
  proto::encodeReadyForQuery(out, 'I');
  if (stream_.write(std::move(out)) != 0) close(Status::error(sqlstate::kConnectionFailure, "client write failed"), false);
}

// ---- login ----

void ClientConn::processLogin() {
  while (state_ == ClientState::Startup || state_ == ClientState::Auth) {
    std::string& loginBuf = login_->buf;
    const std::span<const uint8_t> buf(reinterpret_cast<const uint8_t*>(loginBuf.data()), loginBuf.size());
    if (state_ == ClientState::Startup) {
      proto::StartupPacket pkt;
      size_t used = 0;
      const auto st = proto::parseStartupPacket(buf, pkt, used);
      if (st == proto::DecodeStatus::NeedMore) return;
      if (st == proto::DecodeStatus::Invalid) {
        close(Status::error(sqlstate::kProtocolViolation, "invalid startup packet"));
        return;
      }
      loginBuf.erase(0, used);
      switch (pkt.kind) {
        case proto::StartupKind::SSLRequest:
        case proto::StartupKind::GSSENCRequest: {
          std::string out;
          proto::encodeSSLResponse(out, 'N');  // no TLS yet: the client goes on in plain text
          (void)stream_.write(std::move(out));
          continue;
        }
        case proto::StartupKind::CancelRequest:
          pooler_.forwardCancel(pkt.cancelPid, pkt.cancelKey);
          close(Status::ok(), false);
          return;
        case proto::StartupKind::Startup:
          if (!handleStartup(pkt)) return;
          continue;
      }
    } else {
      proto::FrameHeader h;
      const auto st = proto::peekFrame(buf, h, 65536);
      if (st == proto::DecodeStatus::NeedMore) return;
      if (st == proto::DecodeStatus::Invalid || h.type != 'p') {
        close(Status::error(sqlstate::kProtocolViolation, "expected a password response"));
        return;
      }
      if (buf.size() < h.totalSize()) return;
      std::string out;
      const auto step = login_->auth->onPasswordMessage(buf.subspan(proto::kFrameHeaderSize, h.bodySize()), out);
      loginBuf.erase(0, h.totalSize());
      if (step == ClientAuth::Step::Failed) {
        close(login_->auth->error());
        return;
      }
      if (!out.empty()) (void)stream_.write(std::move(out));
      if (step == ClientAuth::Step::Done) authDone();
    }
  }
}

bool ClientConn::handleStartup(const proto::StartupPacket& pkt) {
  Login& login = *login_;
  login.cfg = pooler_.configSnapshot();
  login.authFile = pooler_.authFileSnapshot();
  const auto& cfg = *login.cfg;
  const std::string* user = pkt.find("user");
  if (user == nullptr || user->empty()) {
    close(Status::error(sqlstate::kProtocolViolation, "no username supplied"));
    return false;
  }
  login.user = *user;
  const std::string* db = pkt.find("database");
  login.database = (db != nullptr && !db->empty()) ? *db : login.user;

  if (pooler_.clientCount() > cfg.maxClientConn) {
    close(Status::error(sqlstate::kTooManyConnections, "no more connections allowed (max_client_conn)"));
    return false;
  }
  for (const auto& [name, value] : pkt.params) {
    if (name == "user" || name == "database") continue;
    const std::string_view canon = pooler_.tracked().canonical(name);
    if (!canon.empty()) {
      login.startupParams.set(canon, value);
      continue;
    }
    if (name == "options" && parseOptions(value)) continue;
    if (listHas(cfg.ignoreStartupParameters, name)) continue;
    close(Status::error(sqlstate::kProtocolViolation, "unsupported startup parameter: " + name));
    return false;
  }
  login.db = cfg.findDatabase(login.database);
  if (login.db == nullptr) {
    close(Status::error(sqlstate::kInvalidCatalogName, "no such database: " + login.database));
    return false;
  }
  const config::UserEntry* userEntry = cfg.findUser(login.user);
  const int maxUserClients = userEntry != nullptr && userEntry->maxUserClientConnections
                                 ? *userEntry->maxUserClientConnections
                                 : cfg.maxUserClientConnections;
  if (Status st = pooler_.admitClient(login.database, login.user,
                                      login.db->maxDbClientConnections.value_or(cfg.maxDbClientConnections),
                                      maxUserClients);
      !st) {
    close(st);
    return false;
  }
  admitted_ = true;
  if (cfg.logConnections) LOG_INFO("%s: login attempt", label().c_str());

  auto it = login.authFile->find(login.user);
  const auth::UserSecret* secret = it == login.authFile->end() ? nullptr : &it->second;
  std::string out;
  login.auth = std::make_unique<ClientAuth>();
  const auto step = login.auth->begin(cfg.authType, secret, login.user, cfg.scramIterations, out);
  if (step == ClientAuth::Step::Failed) {
    close(login.auth->error());
    return false;
  }
  if (!out.empty()) (void)stream_.write(std::move(out));
  state_ = ClientState::Auth;
  if (step == ClientAuth::Step::Done) authDone();
  return state_ != ClientState::Closing;
}

void ClientConn::authDone() {
  Login& login = *login_;
  auto pool = pooler_.poolFor(*login.db, login.database, login.user);
  if (!pool) {
    close(pool.status());
    return;
  }
  pool_ = *pool;
  // The snapshots and the exchange's state are not needed once logged in; the startup values
  // are, until the welcome.
  login.db = nullptr;
  login.cfg.reset();
  login.authFile.reset();
  if (login.auth->clientKey()) pooler_.rememberScramKeys(login.user, *login.auth->clientKey(), login.auth->serverKey());
  login.auth.reset();
  pooler_.registerClient(this, cancelPid_, cancelKey_);
  registered_ = true;
  // Bytes the client sent after its last login message wait for the first request.
  if (!login.buf.empty()) {
    net::Chunk* c = net::Chunk::acquire(login.buf.size());
    std::memcpy(c->tail(), login.buf.data(), login.buf.size());
    c->commit(login.buf.size());
    pending_.push_back(net::Slice{c, 0, login.buf.size()});
    pendingBytes_ += static_cast<uint32_t>(login.buf.size());
  }
  login.buf = std::string();
  // Session mode keeps a server for the whole session: its statements stay where they were made.
  trackStatements_ = pool_->mode() != config::PoolMode::Session && pooler_.config().maxPreparedStatements > 0;
  activeTimeouts_ = pool_->settings().queryTimeout > 0 || pool_->settings().idleTransactionTimeout > 0 ||
                    pool_->settings().transactionTimeout > 0;
  setState(ClientState::WaitWelcome);
  pool_->clientNeedsWelcome(this);
}

// The `options` startup parameter: "-c name=value" (or "-cname=value", "--name=value") items
// separated by spaces, a backslash escaping the next character. Tracked names become startup
// values; true when every item was one (nothing else is left to refuse).
bool ClientConn::parseOptions(const std::string& value) {
  std::vector<std::string> words;
  std::string cur;
  bool inWord = false;
  for (size_t i = 0; i < value.size(); ++i) {
    const char ch = value[i];
    if (ch == '\\' && i + 1 < value.size()) {
      cur.push_back(value[++i]);
      inWord = true;
    } else if (ch == ' ' || ch == '\t') {
      if (inWord) words.push_back(std::move(cur));
      cur.clear();
      inWord = false;
    } else {
      cur.push_back(ch);
      inWord = true;
    }
  }
  if (inWord) words.push_back(std::move(cur));
  bool allTracked = true;
  for (size_t i = 0; i < words.size(); ++i) {
    std::string item;
    if (words[i] == "-c" && i + 1 < words.size()) {
      item = words[++i];
    } else if (words[i].rfind("-c", 0) == 0 && words[i].size() > 2) {
      item = words[i].substr(2);
    } else if (words[i].rfind("--", 0) == 0) {
      item = words[i].substr(2);
      const size_t eq = item.find('=');
      std::replace(item.begin(), item.begin() + static_cast<std::ptrdiff_t>(eq == std::string::npos ? item.size() : eq),
                   '-', '_');
    } else {
      return false;
    }
    const size_t eq = item.find('=');
    if (eq == std::string::npos) return false;
    const std::string_view canon = pooler_.tracked().canonical(std::string_view(item).substr(0, eq));
    if (canon.empty()) {
      allTracked = false;
      continue;
    }
    login_->startupParams.set(canon, item.substr(eq + 1));
  }
  return allTracked;
}

void ClientConn::sendWelcome() {
  std::string out;
  proto::encodeAuthenticationOk(out);
  const ParamList& startupParams = login_->startupParams;
  for (const auto& [name, value] : pool_->welcomeParams().items()) {
    const std::string* mine = startupParams.get(name);
    proto::encodeParameterStatus(out, name, mine != nullptr ? *mine : value);
  }
  // The pool's values, shared with its other clients until one differs; then the tracked values
  // the client asked for (those the server did not report still apply).
  params_ = pool_->trackedWelcome();
  for (const auto& [name, value] : startupParams.items()) params_.set(name, value);
  defaults_ = params_;
  login_.reset();  // logged in: the rest of the client's life needs none of it
  proto::encodeBackendKeyData(out, cancelPid_, cancelKey_);
  proto::encodeReadyForQuery(out, 'I');
  if (stream_.write(std::move(out)) != 0) {
    close(Status::error(sqlstate::kConnectionFailure, "client write failed"), false);
    return;
  }
  setState(ClientState::Idle);
  if (!pending_.empty()) {
    onRequest();
  } else {
    stream_.startRead();
  }
}

}  // namespace pgmux::pool

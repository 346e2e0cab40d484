// Server connection: connect, login (trust, cleartext, md5, SCRAM incl. pass-through), and the
// server-to-client half of forwarding with request accounting.
#include "pgmux/pool/server_conn.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

#include "pgmux/auth/md5.h"
#include "pgmux/pool/cancel_conn.h"
#include "pgmux/pool/client_conn.h"
#include "pgmux/proto/messages.h"
#include "pgmux/util/log.h"

namespace pgmux::pool {

using config::PoolMode;

ServerConn::ServerConn(Pool& pool, uint64_t id)
    : pool_(pool),
      id_(id),
      stream_(pool.pooler().loop(), this),
      scanner_(proto::kDefaultMaxPacketSize, 1024),  // an ErrorResponse with its CONTEXT
      timer_(pool.pooler().deadlines(), this) {}

ServerConn::~ServerConn() = default;

std::string ServerConn::label() const {
  return "S-" + std::to_string(id_) + " " + target_.user + "@" + target_.host + ":" + std::to_string(target_.port) +
         " db=" + target_.database;
}

void ServerConn::connect() {
  target_ = pool_.target();
  const auto& t = target_;
  connectedAt_ = uv_now(pool_.pooler().loop());
  generation_ = pool_.generation();
  if (const uint64_t ms = net::timeoutMs(pool_.pooler().config().serverConnectTimeout); ms > 0) {
    timer_.set(connectedAt_ + ms);
  }
  const int rc = t.isUnix ? stream_.connectUnix(t.unixPath)
                          : stream_.connectTcp(reinterpret_cast<const sockaddr*>(&t.addr));
  if (rc != 0) loginFailed(Status::error(sqlstate::kConnectionFailure,
                                         std::string("could not connect to server: ") + uv_strerror(rc)));
}

bool ServerConn::handOff(ServerHandoff& h) {
  if (state_ != ServerState::Idle || client_ != nullptr || !scanner_.atBoundary() || holding_ ||
      !cancels_.empty() || internalPending_ != 0 || stream_.queuedBytes() != 0) {
    return false;
  }
  const int fd = stream_.fileno();
  const int copy = fd < 0 ? -1 : fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) return false;
  h.id = id_;
  h.fd = copy;
  h.target = target_;
  h.params = params_.clone();
  h.backendPid = backendPid_;
  h.backendKey = backendKey_;
  h.connectedAt = connectedAt_;
  h.hadStatements = statements_.size() != 0 || !statements_.known().empty();
  LOG_DEBUG("%s: handed to another worker", label().c_str());
  // Closing our descriptor leaves the connection open on the duplicate; libuv takes it out of
  // this loop's epoll set first.
  state_ = ServerState::Closing;
  timer_.close();
  stream_.close();
  pool_.pooler().deferDelete(this);
  return true;
}

void ServerConn::adopt(ServerHandoff h) {
  target_ = std::move(h.target);
  params_ = std::move(h.params);
  backendPid_ = h.backendPid;
  backendKey_ = h.backendKey;
  connectedAt_ = h.connectedAt;
  // A pool that RELOAD moved elsewhere does not reuse it (serverReady closes it).
  generation_ = sameServer(target_, pool_.target()) ? pool_.generation() : pool_.generation() - 1;
  state_ = ServerState::Idle;
  justArrived_ = true;
  if (stream_.open(h.fd, target_.isUnix) != 0) {
    ::close(h.fd);
    close("could not take over the server's socket");
    return;
  }
  LOG_DEBUG("%s: taken over from another worker", label().c_str());
  if (h.hadStatements) {
    // Its statements carry the other worker's names: start this worker's bookkeeping afresh.
    state_ = ServerState::Resetting;
    stream_.startRead();
    sendInternal("DEALLOCATE ALL");
    return;
  }
  becomeIdle();
  pool_.serverReady(this);
}

void ServerConn::onStreamConnected(int status) {
  if (state_ != ServerState::Connecting) return;
  if (status != 0) {
    loginFailed(Status::error(sqlstate::kConnectionFailure,
                              std::string("could not connect to server: ") + uv_strerror(status)));
    return;
  }
  stream_.setNoDelay();
  const auto& t = target_;
  std::vector<std::pair<std::string, std::string>> params{{"user", t.user}, {"database", t.database}};
  for (const auto& p : t.startupParams) params.push_back(p);
  std::string out;
  proto::encodeStartupMessage(out, params);
  state_ = ServerState::Login;
  if (stream_.write(std::move(out)) != 0) {
    loginFailed(Status::error(sqlstate::kConnectionFailure, "could not send startup packet to server"));
    return;
  }
  stream_.startRead();
}

void ServerConn::loginFailed(const Status& why) {
  if (state_ == ServerState::Closing) return;
  LOG_WARNING("%s: login failed: %s", label().c_str(), why.message().c_str());
  state_ = ServerState::Closing;
  stream_.close();
  timer_.close();
  pool_.serverLoginFailed(this, why);
  pool_.pooler().deferDelete(this);
}

void ServerConn::close(const std::string& reason) {
  if (state_ == ServerState::Closing) return;
  if (pool_.pooler().config().logDisconnections) LOG_INFO("%s: closing: %s", label().c_str(), reason.c_str());
  if (state_ == ServerState::Connecting || state_ == ServerState::Login) {
    loginFailed(Status::error(sqlstate::kConnectionFailure, reason));
    return;
  }
  state_ = ServerState::Closing;
  for (CancelConn* cc : cancels_) cc->serverGone();
  cancels_.clear();
  timer_.close();
  if (stream_.isOpen()) {
    std::string out;
    proto::encodeTerminate(out);
    (void)stream_.write(std::move(out));
  }
  stream_.close();
  ClientConn* c = client_;
  client_ = nullptr;
  std::vector<Follower> followers;
  followers.swap(followers_);
  if (c != nullptr && exposed_ && !exposed_->answer.empty()) {
    (void)c->writeToClient(exposed_->answer);  // what it would have had (a FATAL, say)
  }
  exposed_.reset();
  orphan_ = false;
  pool_.serverGone(this);
  if (c != nullptr) {
    // An error message may follow only whole messages: a client cut mid-message is just closed.
    c->onServerLost(Status::error(sqlstate::kConnectionFailure, "server conn crashed?"), scanner_.atBoundary());
  }
  // Nothing of their answers was sent yet.
  for (Follower& f : followers) {
    if (f.client != nullptr) {
      f.client->onServerLost(Status::error(sqlstate::kConnectionFailure, "server conn crashed?"), true);
    }
  }
  pool_.pooler().deferDelete(this);
}

void ServerConn::onStreamEnd(int status) {
  close(status == UV_EOF ? "server closed the connection" : std::string("server connection error: ") + uv_strerror(status));
}

void ServerConn::onStreamDrained() {
  if (client_ != nullptr) client_->resumeRead();
}

void ServerConn::resumeRead() {
  if (state_ != ServerState::Closing) stream_.startRead();
}

void ServerConn::onStreamRead(net::Slice data) {
  switch (state_) {
    case ServerState::Connecting:
    case ServerState::Closing:
      return;
    case ServerState::Login:
      loginBuf_.append(data.chunk->data() + data.offset, data.length);
      processLogin();
      return;
    case ServerState::Idle:
    case ServerState::Active:
    case ServerState::Resetting:
    case ServerState::Testing:
      processData(data);
      return;
  }
}

// ---- login ----

void ServerConn::processLogin() {
  size_t off = 0;
  while (state_ == ServerState::Login) {
    const std::span<const uint8_t> buf(reinterpret_cast<const uint8_t*>(loginBuf_.data()) + off,
                                       loginBuf_.size() - off);
    proto::FrameHeader h;
    const auto st = proto::peekFrame(buf, h, 1 << 20);
    if (st == proto::DecodeStatus::NeedMore) break;
    if (st == proto::DecodeStatus::Invalid) {
      loginFailed(Status::error(sqlstate::kProtocolViolation, "server sent an invalid message during login"));
      return;
    }
    if (buf.size() < h.totalSize()) break;
    const auto body = buf.subspan(proto::kFrameHeaderSize, h.bodySize());
    off += h.totalSize();
    switch (h.type) {
      case 'R':
        if (!handleAuthRequest(body)) return;
        break;
      case 'S': {
        std::string name, value;
        if (proto::parseParameterStatus(body, name, value) == proto::DecodeStatus::Ok) params_.set(name, value);
        break;
      }
      case 'K':
        (void)proto::parseBackendKeyData(body, backendPid_, backendKey_);
        break;
      case 'E': {
        proto::ErrorFields f;
        (void)proto::parseErrorResponse(body, f);
        loginFailed(Status::error(f.sqlstate.empty() ? sqlstate::kConnectionFailure : f.sqlstate, f.message));
        return;
      }
      case 'Z':
        loginBuf_.clear();
        loginBuf_.shrink_to_fit();
        scram_.reset();
        if (pool_.pooler().config().logConnections) LOG_INFO("%s: new connection to server", label().c_str());
        becomeIdle();
        pool_.serverLoggedIn(this);
        return;
      default:  // NoticeResponse, NegotiateProtocolVersion: nothing to do
        break;
    }
  }
  loginBuf_.erase(0, off);
}

bool ServerConn::handleAuthRequest(std::span<const uint8_t> body) {
  proto::AuthRequest req;
  if (proto::parseAuthenticationRequest(body, req) != proto::DecodeStatus::Ok) {
    loginFailed(Status::error(sqlstate::kProtocolViolation, "invalid authentication request from server"));
    return false;
  }
  const auto& t = target_;
  Pooler& pooler = pool_.pooler();
  // The password: the [databases] entry's, else the auth file's secret for the server user.
  const auth::UserSecret* secret = nullptr;
  auth::UserSecret fromEntry;
  if (t.password) {
    fromEntry = auth::classifySecret(*t.password);
    secret = &fromEntry;
  } else if (auto it = pooler.authFile().find(t.user); it != pooler.authFile().end()) {
    secret = &it->second;
  }
  const auto noPassword = [&](const char* what) {
    loginFailed(Status::error(sqlstate::kInvalidPassword,
                              std::string("server login failed: ") + what + " for user \"" + t.user + "\""));
    return false;
  };
  std::string out;
  switch (req.code) {
    case proto::AuthCode::Ok:
      return true;
    case proto::AuthCode::CleartextPassword:
      if (secret == nullptr || secret->kind != auth::SecretKind::Plain) {
        return noPassword("server asks for a cleartext password and none is known");
      }
      proto::encodePasswordMessage(out, secret->text);
      break;
    case proto::AuthCode::MD5Password: {
      if (req.data.size() != 4) return noPassword("invalid md5 salt");
      if (secret == nullptr || secret->kind == auth::SecretKind::Scram) {
        return noPassword("server asks for md5 and no plain or md5 password is known");
      }
      const std::string stored =
          secret->kind == auth::SecretKind::Md5 ? secret->text : auth::md5Secret(t.user, secret->text);
      proto::encodePasswordMessage(out, auth::md5SaltedResponse(stored, req.data.data()));
      break;
    }
    case proto::AuthCode::SASL: {
      bool scramOffered = false;
      for (const auto& m : proto::parseSASLMechanisms(req.data)) scramOffered |= m == "SCRAM-SHA-256";
      if (!scramOffered) return noPassword("server offers no supported SASL mechanism");
      if (secret != nullptr && secret->kind == auth::SecretKind::Plain) {
        scram_ = std::make_unique<auth::ScramClient>(auth::ScramClient::withPassword(secret->text));
      } else if (secret != nullptr && secret->kind == auth::SecretKind::Scram) {
        const auto keys = pooler.scramKeys(t.user);
        if (!keys) return noPassword("no client has logged in yet to pass its SCRAM keys through");
        scram_ = std::make_unique<auth::ScramClient>(auth::ScramClient::withKeys(keys->first, keys->second));
      } else {
        return noPassword("server asks for SCRAM and no plain or SCRAM secret is known");
      }
      proto::encodeSASLInitialResponse(out, "SCRAM-SHA-256", scram_->clientFirst());
      break;
    }
    case proto::AuthCode::SASLContinue: {
      if (!scram_) return noPassword("unexpected SASL continue");
      auto r = scram_->handleServerFirst(
          std::string_view(reinterpret_cast<const char*>(req.data.data()), req.data.size()));
      if (!r) {
        loginFailed(r.status());
        return false;
      }
      proto::encodeSASLResponse(out, *r);
      break;
    }
    case proto::AuthCode::SASLFinal: {
      if (!scram_) return noPassword("unexpected SASL final");
      Status st = scram_->handleServerFinal(
          std::string_view(reinterpret_cast<const char*>(req.data.data()), req.data.size()));
      if (!st) {
        loginFailed(st);
        return false;
      }
      return true;
    }
  }
  if (!out.empty() && stream_.write(std::move(out)) != 0) {
    loginFailed(Status::error(sqlstate::kConnectionFailure, "could not write to server"));
    return false;
  }
  return true;
}

// ---- pooled use ----

void ServerConn::becomeIdle() {
  state_ = ServerState::Idle;
  client_ = nullptr;
  outstanding_ = 0;
  unsynced_ = false;
  headPipelinable_ = false;
  orphan_ = false;
  copyIn_ = false;
  syncsSinceExecute_ = 0;
  parkedForCancel_ = false;
  idleSince_ = uv_now(pool_.pooler().loop());
  armIdleTimer(idleSince_);
  // Keep reading: an idle server that closes or reports an error is noticed at once.
  stream_.startRead();
}

void ServerConn::armIdleTimer(uint64_t from) {
  // The earlier of server_idle_timeout and server_lifetime; reuse only moves it later.
  const uint64_t idleMs = net::timeoutMs(pool_.pooler().config().serverIdleTimeout);
  const uint64_t lifeMs = net::timeoutMs(pool_.settings().serverLifetime);
  uint64_t due = idleMs > 0 ? from + idleMs : 0;
  if (lifeMs > 0 && (due == 0 || connectedAt_ + lifeMs < due)) due = connectedAt_ + lifeMs;
  timer_.set(due);
}

bool ServerConn::expired(uint64_t now) const {
  const uint64_t lifeMs = net::timeoutMs(pool_.settings().serverLifetime);
  return lifeMs > 0 && now >= connectedAt_ + lifeMs;
}

void ServerConn::startCheck(const std::string& query) {
  state_ = ServerState::Testing;
  sendInternal(query);
}

void ServerConn::onDeadline() {
  const uint64_t now = uv_now(pool_.pooler().loop());
  switch (state_) {
    case ServerState::Connecting:
    case ServerState::Login:
      loginFailed(Status::error(sqlstate::kConnectionFailure, "server connect timeout (server_connect_timeout)"));
      return;
    case ServerState::Idle: {
      if (expired(now)) {
        close("server lifetime");
        return;
      }
      const uint64_t idleMs = net::timeoutMs(pool_.pooler().config().serverIdleTimeout);
      if (idleMs > 0 && now >= idleSince_ + idleMs && pool_.totalServerCount() > pool_.settings().minPoolSize) {
        close("server idle timeout");
        return;
      }
      armIdleTimer(now);  // kept for min_pool_size: look again one idle period later
      return;
    }
    case ServerState::Active:
    case ServerState::Resetting:
    case ServerState::Testing:
    case ServerState::Closing:
      return;  // lifetime is checked when the server comes back to the pool
  }
}

void ServerConn::sendInternal(const std::string& sql) {
  std::string out;
  proto::encodeQuery(out, sql);
  ++internalPending_;
  if (stream_.write(std::move(out)) != 0) close("write to server failed");
}

void ServerConn::link(ClientConn* c) {
  client_ = c;
  cancelsAtHead_ = cancelsSent_;
  justArrived_ = false;
  state_ = ServerState::Active;
  outstanding_ = 0;
  unsynced_ = false;
  headPipelinable_ = false;
  // Most links change nothing: compare the two lists' cached keys before building any SET.
  const TrackedParams& tracked = pool_.pooler().tracked();
  if (c->params().trackedKey(tracked) == params_.trackedKey(tracked)) return;
  const std::string set = buildSetQuery(tracked, c->params(), params_);
  if (!set.empty()) sendInternal(set);
}

bool ServerConn::canRelease() const {
  return pool_.mode() != PoolMode::Session && outstanding_ == 0 && internalPending_ == 0 && !unsynced_ &&
         replies_.empty() && !holding_ &&
         !dirty_ && !copyIn_ && txStatus_ == 'I' && cancels_.empty() && client_ != nullptr &&
         client_->scannedToBoundary();
}

void ServerConn::release() {
  ClientConn* c = client_;
  client_ = nullptr;
  c->onServerReleased();
  const auto& cfg = pool_.pooler().config();
  if (cfg.serverResetQueryAlways && !cfg.serverResetQuery.empty()) {
    state_ = ServerState::Resetting;
    stream_.startRead();  // reading may have been paused for the client's backpressure
    sendInternal(cfg.serverResetQuery);
    return;
  }
  becomeIdle();
  pool_.serverReady(this);
}

void ServerConn::clientGone(ClientConn* c, bool clientAtBoundary) {
  if (c != client_) {
    // A follower: its request is on the wire and runs; its answer is dropped.
    for (Follower& f : followers_) {
      if (f.client == c) f.client = nullptr;
    }
    return;
  }
  client_ = nullptr;
  exposed_.reset();  // its answer goes nowhere now
  requestEnded();
  if (state_ != ServerState::Active) return;
  if (!followers_.empty()) {
    // Others' queries wait behind this one. Its answer is dropped and the next one runs, unless
    // something of it is left unfinished on the server.
    if (clientAtBoundary && internalPending_ == 0 && !holding_ && headPipelinable_ && outstanding_ == 1) {
      orphan_ = true;
      return;
    }
    close("client disconnected mid-transaction");
    return;
  }
  const bool clean = clientAtBoundary && !dirty_ && !copyIn_ && outstanding_ == 0 && internalPending_ == 0 &&
                     !unsynced_ && txStatus_ == 'I' && scanner_.atBoundary() && replies_.empty() && !holding_;
  if (!clean) {
    close("client disconnected mid-transaction");
    return;
  }
  if (!cancels_.empty()) {
    parkedForCancel_ = true;  // finished when the last cancel has arrived
    return;
  }
  finishClientGone();
}

void ServerConn::finishClientGone() {
  const auto& cfg = pool_.pooler().config();
  if ((pool_.mode() == PoolMode::Session || cfg.serverResetQueryAlways) && !cfg.serverResetQuery.empty()) {
    state_ = ServerState::Resetting;
    stream_.startRead();  // reading may have been paused for the departed client's backpressure
    sendInternal(cfg.serverResetQuery);
    return;
  }
  becomeIdle();
  pool_.serverReady(this);
}

void ServerConn::cancelStarted(CancelConn* c) {
  cancels_.push_back(c);
  ++cancelsSent_;
  // Its own client's cancel: a 57014 in its answer is what the client asked for.
  if (exposed_) exposed_->retry = false;
}

void ServerConn::cancelFinished(CancelConn* c) {
  cancels_.erase(std::remove(cancels_.begin(), cancels_.end(), c), cancels_.end());
  if (!cancels_.empty() || state_ != ServerState::Active) return;
  if (parkedForCancel_) {
    parkedForCancel_ = false;
    finishClientGone();
  } else if (canRelease()) {
    release();
  } else if (client_ != nullptr) {
    client_->forwardHeldInput();  // what it sent while the cancel was on its way
  }
}

void ServerConn::requestEnded() {
  ++answers_;
  for (size_t i = 0; i < cancels_.size();) {
    if (cancels_[i]->endIfDelivered()) {
      cancels_.erase(cancels_.begin() + static_cast<std::ptrdiff_t>(i));
    } else {
      ++i;
    }
  }
}

void ServerConn::clientWriteFailed() {
  // The client is gone mid-answer: closing it closes this server too (not at a clean point).
  client_->close(Status::error(sqlstate::kConnectionFailure, "client write failed"), false);
}

StatementScope ServerConn::scope() {
  return StatementScope{statements_, client_ != nullptr ? client_->statementsIfAny() : nullptr,
                        pool_.pooler().statements()};
}

bool ServerConn::forwardRange(const net::Slice& s, size_t start, size_t end) {
  if (end <= start) return true;
  return toClient(net::Slice{s.chunk, s.offset + start, end - start}) == 0;
}

void ServerConn::processData(const net::Slice& s) {
  // Swallowed and rewritten replies split a read into pieces: one writev for all of them, once
  // this round of events is handled (Stream::uncorkDeferred).
  if (client_ != nullptr) {
    client_->corkWrites();
    corked_ = client_;
  }
  scanReplies(s);
  uncorkClient();
}

void ServerConn::uncorkClient() {
  ClientConn* c = std::exchange(corked_, nullptr);
  if (c != nullptr && c->uncorkWritesDeferred() != 0 && c->state() != ClientState::Closing) {
    c->close(Status::error(sqlstate::kConnectionFailure, "client write failed"), false);
  }
}

void ServerConn::scanReplies(const net::Slice& s) {
  const std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(s.chunk->data() + s.offset), s.length);
  size_t pos = 0;
  size_t start = 0;
  proto::ScannedMessage m;
  for (;;) {
    const bool swallow = internalPending_ > 0 || client_ == nullptr;
    const bool track = !swallow && client_->tracksStatements();
    const size_t msgStart = pos;
    const bool fresh = scanner_.atBoundary();
    const auto st = scanner_.next(bytes, pos, m);
    if (st == proto::DecodeStatus::NeedMore) {
      if (track && !scanner_.atBoundary() &&
          (holding_ || (fresh && ReplyQueue::mayRewrite(scanner_.pendingType())))) {
        // A reply that may be swallowed or rewritten is split across reads: hold its bytes.
        if (!forwardRange(s, start, msgStart)) {
          clientWriteFailed();
          return;
        }
        held_.append(reinterpret_cast<const char*>(bytes.data() + msgStart), bytes.size() - msgStart);
        holding_ = true;
        start = bytes.size();
      }
      break;
    }
    if (st == proto::DecodeStatus::Invalid) {
      close("server sent an invalid message");
      return;
    }
    const bool wasHeld = std::exchange(holding_, false);
    ReplyAction action = ReplyAction::Forward;
    std::string replacement;
    if (track) {
      action = replies_.onMessage(m.type, m.body, m.captured, scope(), replacement);
      if (action == ReplyAction::Desync) {
        LOG_WARNING("%s: reply '%c' is not what the server owes its client (owed: %s)", label().c_str(), m.type,
                    replies_.describe().c_str());
        ClientConn* c = client_;
        client_ = nullptr;
        c->onServerLost(Status::error(sqlstate::kProtocolViolation, "server replies out of step with requests"),
                        true);
        close("server replies out of step with requests");
        return;
      }
    }
    if (wasHeld) {
      // Its first bytes came with an earlier read; they go out (or not) before the rest.
      if (action == ReplyAction::Forward && !swallow && toClient(held_) != 0) {
        clientWriteFailed();
        return;
      }
      held_.clear();
    }
    if (action != ReplyAction::Forward) {
      const size_t total = static_cast<size_t>(m.length) + 1;
      if (!forwardRange(s, start, wasHeld ? 0 : pos - total) ||
          (action == ReplyAction::Replace && toClient(replacement) != 0)) {
        clientWriteFailed();
        return;
      }
      start = pos;
    }
    switch (m.type) {
      case 'Z': {
        char status = 'I';
        if (m.captured) (void)proto::parseReadyForQuery(m.body, status);
        txStatus_ = status;
        if (internalPending_ > 0) {
          --internalPending_;
          start = pos;
          if (setFailed_ && client_ != nullptr) {
            // The client's parameters could not be applied: it must not run with others. Its
            // request is already on the wire behind the SET, so the server goes too.
            setFailed_ = false;
            ClientConn* c = client_;
            client_ = nullptr;
            c->onServerLost(setError_, true);
            close("could not apply the client's parameters");
            return;
          }
          if (internalPending_ == 0 &&
              (state_ == ServerState::Resetting || state_ == ServerState::Testing)) {
            if (txStatus_ != 'I') {
              close("server reset left a transaction open");
              return;
            }
            becomeIdle();
            pool_.serverReady(this);
          }
          continue;
        }
        requestEnded();
        if (client_ == nullptr) {
          start = pos;
          if (orphan_ && outstanding_ > 0 && --outstanding_ == 0) {
            // A departed client's query is answered: the next in line runs, or the server is free.
            orphan_ = false;
            if (txStatus_ != 'I') {
              close("pipelined query left a transaction open");
              return;
            }
            if (!followers_.empty()) {
              if (!promoteFollower()) return;
              continue;
            }
            replies_.clear();  // what it was owed
            if (!cancels_.empty()) {
              parkedForCancel_ = true;  // finished when the last cancel has arrived
              continue;
            }
            finishClientGone();
            return;  // nothing more in this read belongs to anyone
          }
          continue;
        }
        if (outstanding_ > 0) --outstanding_;
        if (exposed_ && outstanding_ == 0) {
          bool retried = false;
          if (!settleExposed(retried)) return;
          if (retried) {
            start = pos;  // its answer (the cancel's error) is dropped
            continue;
          }
        }
        client_->onReadyForQuery(txStatus_, outstanding_ == 0);
        if (generation_ != pool_.generation() && pool_.mode() == PoolMode::Session && txStatus_ == 'I' &&
            outstanding_ == 0 && pool_.pooler().config().serverFastClose) {
          // server_fast_close: a session on a server of the old configuration ends at the end
          // of its transaction rather than with the client.
          if (pos > start) (void)client_->writeToClient(net::Slice{s.chunk, s.offset + start, pos - start});
          ClientConn* c = client_;
          client_ = nullptr;
          c->onServerLost(Status::error(sqlstate::kAdminShutdown, "database configuration changed (server_fast_close)"),
                          true);
          close("database configuration changed (server_fast_close)");
          return;
        }
        if (pool_.mode() == PoolMode::Statement && txStatus_ != 'I' && outstanding_ == 0) {
          // Statement mode allows no transaction blocks: the server is closed, not reused.
          (void)client_->writeToClient(net::Slice{s.chunk, s.offset + start, pos - start});
          ClientConn* c = client_;
          client_ = nullptr;
          c->onServerLost(Status::error(sqlstate::kFeatureNotSupported,
                                        "transaction blocks not allowed in statement pooling mode"),
                          true);
          close("transaction block in statement pooling mode");
          return;
        }
        if (outstanding_ == 0 && !followers_.empty()) {
          // Pipelined: this client's answer ends here, the next one's follows in the stream.
          if (txStatus_ != 'I') {
            close("pipelined query left a transaction open");
            return;
          }
          ClientConn* done = client_;
          const bool wrote = pos <= start || done->writeToClient(net::Slice{s.chunk, s.offset + start, pos - start}) == 0;
          start = pos;
          client_ = nullptr;
          uncorkClient();
          if (wrote) {
            done->onServerReleased();
          } else {
            done->onServerLost(Status::error(sqlstate::kConnectionFailure, "client write failed"), false);
          }
          if (state_ == ServerState::Closing || !promoteFollower()) return;
          continue;
        }
        if (canRelease()) {
          if (pos > start && client_->writeToClient(net::Slice{s.chunk, s.offset + start, pos - start}) != 0) {
            clientWriteFailed();
            return;
          }
          release();
          // Nothing more belongs to that client; anything else in this read (a late notice) is
          // not for whoever the pool has just linked, so it is dropped.
          return;
        }
        continue;
      }
      case 'S': {
        std::string name, value;
        if (m.captured && proto::parseParameterStatus(m.body, name, value) == proto::DecodeStatus::Ok) {
          params_.set(name, value);
          // The client's view follows what its session reports: a SET it ran, or our own SET's
          // canonical spelling of a value it asked for (which its RESET ALL defaults follow too).
          if (client_ != nullptr && !pool_.pooler().tracked().canonical(name).empty()) {
            client_->reportedParam(name, value, swallow);
          }
        }
        break;
      }
      case 'C':
        // DISCARD ALL or DEALLOCATE ALL by pgmux (server_reset_query) or by a client whose
        // statements are not tracked: nothing is prepared there any more. (Tracked replies
        // were seen by the ReplyQueue.)
        if (!track && m.captured && dropsAllStatements(m.body)) statements_.clear();
        break;
      case 'G':  // CopyInResponse: Syncs sent since the Execute are ignored in copy-in mode
        copyIn_ = true;
        if (track) replies_.dropTrailingSyncs(syncsSinceExecute_);
        outstanding_ = std::max(0, outstanding_ - syncsSinceExecute_);
        syncsSinceExecute_ = 0;
        break;
      case 'E':
        if (exposed_ && !swallow && m.captured) {
          // A CancelRequest's error, not statement_timeout's (the same SQLSTATE). Only the
          // message tells them apart, so a server whose lc_messages is not English never
          // retries.
          proto::ErrorFields f;
          if (proto::parseErrorResponse(m.body, f) == proto::DecodeStatus::Ok && f.sqlstate == sqlstate::kQueryCanceled &&
              f.message == sqlstate::kCancelRequestMessage) {
            exposed_->cancelled = true;
          }
        }
        if (swallow) {
          proto::ErrorFields f;
          if (m.captured) (void)proto::parseErrorResponse(m.body, f);
          if (internalPending_ > 0 && client_ != nullptr && !setFailed_) {
            setFailed_ = true;
            setError_ = Status::error(f.sqlstate.empty() ? sqlstate::kInternalError : f.sqlstate,
                                      f.message.empty() ? "could not apply startup parameters" : f.message);
          }
          LOG_WARNING("%s: error on %s: %s", label().c_str(), client_ == nullptr ? "idle server" : "internal query",
                      f.message.c_str());
          if (f.severity == "FATAL" || f.severity == "PANIC") {
            close("server error: " + f.message);
            return;
          }
        }
        break;
      default:
        break;
    }
    if (swallow) start = pos;
  }
  const bool swallow = internalPending_ > 0 || client_ == nullptr;
  if (swallow || start >= s.length) return;
  ClientConn* c = client_;
  if (toClient(net::Slice{s.chunk, s.offset + start, s.length - start}) != 0) {
    clientWriteFailed();
    return;
  }
  if (c->writeQueueHigh()) {
    // Backpressure: stop reading the server until the client's queue drains.
    stream_.stopRead();
    c->wantDrain();
  }
}

}  // namespace pgmux::pool

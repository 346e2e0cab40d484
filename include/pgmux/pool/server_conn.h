// One server connection: connect and log in, then carry a linked client's requests and stream
// the answers back, counting requests against ReadyForQuery to know when it may be released.
#pragma once

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pgmux/auth/scram.h"
#include "pgmux/net/deadline_timer.h"
#include "pgmux/net/stream.h"
#include "pgmux/pool/params.h"
#include "pgmux/pool/pool.h"
#include "pgmux/pool/pooler.h"
#include "pgmux/pool/reply_queue.h"
#include "pgmux/pool/statements.h"
#include "pgmux/proto/frame.h"

namespace pgmux::pool {

// Testing: running server_check_query before a long-idle server is handed out.
enum class ServerState : uint8_t { Connecting, Login, Idle, Active, Resetting, Testing, Closing };

class CancelConn;

// An idle server moving to another worker's share of its pool. libuv cannot move a handle
// between loops, so the socket moves as a descriptor with what pgmux knows of the session.
struct ServerHandoff {
  uint64_t id = 0;
  int fd = -1;
  ServerTarget target;
  ParamList params;   // the session's parameters (the tracked ones as pgmux last set them); clones,
                      // shared with nothing on the giving thread
  ParamList welcome;  // the pool's welcome, for a share that has not had a login yet
  uint32_t backendPid = 0;
  uint32_t backendKey = 0;
  uint64_t connectedAt = 0;  // loop time (every loop's clock is the same monotonic one)
  // It has prepared statements (named by the giving worker): they are deallocated on arrival.
  bool hadStatements = false;
};

class ServerConn final : public net::StreamHandler, public net::DeadlineHandler, public Deferred {
 public:
  ServerConn(Pool& pool, uint64_t id);
  ~ServerConn() override;

  void connect();
  // Hands this idle server over: fills `h` (the descriptor is a duplicate), then closes here
  // without a word to the server. False when it is not at rest (it stays as it is).
  bool handOff(ServerHandoff& h);
  // Takes over a server handed over by another worker; comes to the pool through serverReady()
  // (after DEALLOCATE ALL if it had statements), or closes.
  void adopt(ServerHandoff h);
  ServerState state() const { return state_; }
  // Taken over from another worker and not yet given to a client here: it serves a waiting
  // client here before it may move again (else two shares could pass it back and forth).
  bool justArrived() const { return justArrived_; }
  uint64_t id() const { return id_; }
  Pool& pool() { return pool_; }
  ClientConn* client() const { return client_; }
  uint32_t backendPid() const { return backendPid_; }
  uint32_t backendKey() const { return backendKey_; }
  const ParamList& params() const { return params_; }

  // Becomes the client's server; first moves the server's tracked parameters to the client's.
  void link(ClientConn* c);
  // Client `c` is gone: keep the server if it is clean (transaction finished, nothing
  // outstanding), resetting it in session mode; close it otherwise. A client whose query is in a
  // pipeline (below) leaves it there, and its answer is dropped.
  void clientGone(ClientConn* c, bool clientAtBoundary);
  // Idle in the pool.
  void becomeIdle();
  uint64_t idleSince() const { return idleSince_; }
  // The pool generation (target) this server logged in to.
  uint32_t generation() const { return generation_; }
  const ServerTarget& target() const { return target_; }
  // Past server_lifetime: closed instead of reused.
  bool expired(uint64_t now) const;
  // Runs `query` (server_check_query) and comes back to the pool through serverReady().
  void startCheck(const std::string& query);

  // Request accounting, fed by the client's forwarding.
  void requestSent() {
    ++outstanding_;
    syncsSinceExecute_ = 0;
    headPipelinable_ = false;
  }
  void executeSent() {
    unsynced_ = true;
    syncsSinceExecute_ = 0;
    headPipelinable_ = false;
  }
  // False when the backend will ignore it (copy-in mode): no ReadyForQuery will answer it.
  bool syncSent() {
    unsynced_ = false;
    headPipelinable_ = false;
    if (copyIn_) return false;
    ++outstanding_;
    ++syncsSinceExecute_;
    return true;
  }
  void extendedSent() {
    unsynced_ = true;
    headPipelinable_ = false;
  }

  // Cross-client pipelining (server_pipelining, pipeline.h). Whether this pool pipelines at all;
  // whether a waiting client's query may be written behind the running one now; and taking such
  // clients from the pool's queue while it may. A follower's query is answered after the running
  // one, and the follower then becomes the server's client.
  bool pipelining() const;
  bool mayTakeFollower() const;
  void pullFollowers();
  void addFollower(ClientConn* c);
  bool hasFollowers() const { return !followers_.empty(); }
  // What the linked client sends now must wait for its turn to end: others' requests are
  // written behind its own, or its own may have to be written again (exposed_).
  // A cancel in flight holds it too: PostgreSQL signals the backend twice (the process and its
  // group), and a second signal that comes late would stop the client's next query.
  bool holdsClientInput() const { return !followers_.empty() || exposed_.has_value() || !cancels_.empty(); }
  bool isFollower(const ClientConn* c) const {
    return std::any_of(followers_.begin(), followers_.end(), [c](const Follower& f) { return f.client == c; });
  }
  // The statement is prepared here (a Bind of it needs no Parse first).
  bool hasStatement(const Statement* s) const { return statements_.has(s); }
  // Nothing of the linked client's is outstanding: what it sends now starts a request.
  bool atRequestStart() const { return outstanding_ == 0 && !unsynced_; }
  // The request just forwarded, from its start, is one pipelinable request (pipeline.h) and all
  // of it: others may follow it. Any message forwarded after it clears this.
  void markPipelinable() { headPipelinable_ = outstanding_ == 1 && !unsynced_; }
  // A follower's messages are written with the server's request accounting kept for the
  // running client, and the replies they expect set aside for the follower's turn.
  struct FollowerWrite {
    int outstanding;
    bool unsynced;
    int syncsSinceExecute;
    bool headPipelinable;
  };
  FollowerWrite beginFollowerWrite(std::vector<Expected>* expected);
  // True when the messages written were one whole request (one Query or Sync, nothing after).
  bool endFollowerWrite(const FollowerWrite& saved);
  // Off the pool's list of servers that may take a follower (Pool::pipelineOpen).
  void unlistOpen() { listedOpen_ = false; }
  void copyEnded() { copyIn_ = false; }

  // A CancelRequest for this server's query is on its way: the server stays with its client
  // (or out of the pool) until it has arrived.
  void cancelStarted(CancelConn* c);
  void cancelFinished(CancelConn* c);
  // Requests answered here (ReadyForQuery) and clients gone: a cancel's query has ended once
  // this moves.
  uint32_t answers() const { return answers_; }
  bool awaitsAnswerSince(uint32_t answers) const {
    return state_ == ServerState::Active && answers_ == answers && (outstanding_ > 0 || unsynced_);
  }
  void markDirty() { dirty_ = true; }

  // Prepared statements: what this server has, and the replies it owes while its client's
  // statements are tracked (pushed in the order the messages are written).
  ServerStatements& statements() { return statements_; }
  void expect(Expected e) {
    if (divert_ != nullptr) {
      divert_->push_back(std::move(e));
    } else {
      replies_.push(std::move(e), scope());
    }
  }

  int write(const net::Slice& s) { return stream_.write(s); }
  net::Stream& stream() { return stream_; }
  void resumeRead();

  void close(const std::string& reason);

  // Stream events.
  void onStreamConnected(int status) override;
  void onStreamRead(net::Slice data) override;
  void onStreamEnd(int status) override;
  void onStreamDrained() override;
  // server_connect_timeout, server_idle_timeout, server_lifetime.
  void onDeadline() override;

 private:
  void processLogin();
  void finishClientGone();
  bool handleAuthRequest(std::span<const uint8_t> body);
  void loginFailed(const Status& why);
  void processData(const net::Slice& s);
  // The linked client's answers are written; the next follower becomes the client (a departed
  // one's answer is dropped). False when the server closed meanwhile.
  bool promoteFollower();
  // The exposed client's answer is complete (its ReadyForQuery read): when a cancel stopped it,
  // its request is written again behind the followers and true returned; otherwise its answer
  // goes to it. Closes the server (and returns false) when that fails.
  bool settleExposed(bool& retried);
  // A request was answered (or its client left): answers() moves, and cancels delivered and
  // waiting to see their effect end.
  void requestEnded();
  // Writes to the linked client, or keeps the bytes while its answer is held (exposed_).
  int toClient(const net::Slice& s);
  int toClient(std::string_view bytes);
  // Ends the gathering of the corked client's writes of this read.
  void uncorkClient();
  void scanReplies(const net::Slice& s);
  bool canRelease() const;
  void armIdleTimer(uint64_t from);
  void clientWriteFailed();
  void release();
  void sendInternal(const std::string& sql);
  StatementScope scope();
  // Writes [start, end) of the read to the client.
  bool forwardRange(const net::Slice& s, size_t start, size_t end);
  std::string label() const;

  Pool& pool_;
  uint64_t id_;
  net::Stream stream_;
  ServerState state_ = ServerState::Connecting;
  std::string loginBuf_;
  std::unique_ptr<auth::ScramClient> scram_;
  ParamList params_;
  uint32_t backendPid_ = 0;
  uint32_t backendKey_ = 0;
  ClientConn* client_ = nullptr;
  proto::FrameScanner scanner_;
  int outstanding_ = 0;     // Query, FunctionCall and Sync sent without their ReadyForQuery
  int internalPending_ = 0; // ReadyForQuery of pgmux's own queries still to swallow
  bool unsynced_ = false;   // extended-protocol messages sent since the last Sync
  bool dirty_ = false;      // a partial message reached the server: never reuse it
  bool copyIn_ = false;     // the backend is in copy-in mode (CopyInResponse seen)
  int syncsSinceExecute_ = 0;  // Syncs sent after the last Execute or Query
  bool parkedForCancel_ = false;  // client gone, server clean, a cancel still in flight
  bool setFailed_ = false;  // pgmux's SET of the client's parameters failed
  Status setError_;
  std::vector<CancelConn*> cancels_;
  uint32_t answers_ = 0;  // see answers()
  net::DeadlineTimer timer_;
  uint64_t connectedAt_ = 0;
  uint32_t generation_ = 0;
  ServerTarget target_;  // where and as whom this server logged in (a RELOAD may move the pool)
  uint64_t idleSince_ = 0;
  char txStatus_ = 'I';
  ServerStatements statements_;
  ReplyQueue replies_;
  // A reply pgmux may swallow or rewrite (ParseComplete, CloseComplete, ErrorResponse) split
  // across reads: its first bytes, held until it is whole.
  std::string held_;
  bool holding_ = false;
  bool justArrived_ = false;
  bool headPipelinable_ = false;  // the linked client's request is one pipelinable Query
  bool orphan_ = false;           // that request's client left: its answer is dropped
  bool listedOpen_ = false;       // on the pool's list of servers that may take a follower
  // Clients whose request was written behind the running one, in order, with the replies it
  // expects; a null client left.
  struct Follower {
    ClientConn* client;
    std::vector<Expected> expected;
    uint32_t cancelsBefore;   // cancelsSent_ when the query it was written behind began
    net::HeldSlice request;   // what it sent, to be written again (exposed_)
  };
  std::vector<Follower> followers_;
  std::vector<Expected>* divert_ = nullptr;  // a follower's expected replies while it is written
  ClientConn* corked_ = nullptr;  // the client whose writes this read gathers
  // A CancelRequest sent for the running query may reach PostgreSQL after that query has ended
  // and stop the one written behind it. A follower whose turn comes after a cancel was sent for
  // a query ahead of it is exposed: its answer is held until it is complete, and if a cancel
  // stopped it (57014) without its own client having asked, it is dropped and the request
  // written again.
  uint32_t cancelsSent_ = 0;     // CancelRequests sent for this server's queries
  uint32_t cancelsAtHead_ = 0;   // cancelsSent_ when the running query's client got the server
  static constexpr size_t kMaxHeldAnswer = 64 * 1024;
  struct Exposed {
    net::HeldSlice request;
    std::string answer;      // held, up to kMaxHeldAnswer
    bool retry = true;       // no cancel of its own client's since its turn came
    bool cancelled = false;  // its answer has a 57014 error
  };
  std::optional<Exposed> exposed_;
};

}  // namespace pgmux::pool

// One client connection: startup and auth, then requests forwarded to a linked server. In
// transaction mode the link lasts from the first message of a request to the ReadyForQuery that
// ends it with nothing outstanding.
#pragma once

#include <list>
#include <memory>
#include <string>
#include <vector>

#include "pgmux/net/deadline_timer.h"
#include "pgmux/net/stream.h"
#include "pgmux/pool/client_auth.h"
#include "pgmux/pool/params.h"
#include "pgmux/pool/pooler.h"
#include "pgmux/pool/statements.h"
#include "pgmux/proto/extended.h"
#include "pgmux/proto/frame.h"
#include "pgmux/proto/startup.h"

namespace pgmux::pool {

struct Expected;

enum class ClientState : uint8_t {
  Startup,      // reading the startup packet
  Auth,         // in the password exchange
  WaitWelcome,  // authenticated; waiting for the pool's first server login
  Idle,         // no request; no server
  Waiting,      // a request is buffered; queued for a server
  Active,       // linked to a server
  Closing,
};

class ClientConn final : public net::StreamHandler, public net::DeadlineHandler, public Deferred {
 public:
  ClientConn(Pooler& pooler, uint64_t id);
  ~ClientConn() override;

  // Takes the pending connection from a listener and starts reading the startup packet.
  void accept(uv_stream_t* server, bool isPipe);

  ClientState state() const { return state_; }
  uint64_t id() const { return id_; }
  ServerConn* server() const { return server_; }
  const ParamList& params() const { return params_; }
  // A tracked value its server reported; `own` when it answers pgmux's own SET (params.h).
  void reportedParam(std::string_view name, std::string_view value, bool own) {
    applyReportedValue(params_, defaults_, name, value, own);
  }
  // No message of the client's is half forwarded: its server may be released (what waits in
  // pending_ then asks for a server again, onServerReleased).
  bool scannedToBoundary() const { return scanner_.atBoundary() && (!prepared_ || !prepared_->held.active); }
  // The same, with nothing waiting to be forwarded.
  bool atMessageBoundary() const { return scannedToBoundary() && pending_.empty(); }
  // Whether this client's named prepared statements are mapped to pooler-wide ones (transaction
  // and statement modes with max_prepared_statements > 0), and its names.
  bool tracksStatements() const { return trackStatements_; }
  ClientStatements& statements() { return prep().names; }
  // The same, or null while the client has named nothing (no table is made for it then).
  ClientStatements* statementsIfAny() { return prepared_ ? &prepared_->names : nullptr; }

  // From the pool.
  void sendWelcome();
  void onServerLinked(ServerConn* s);
  // server_pipelining (pipeline.h): whether this waiting client's request may be written to busy
  // server `s` behind the query running there; writing it (followOn, which keeps the request in
  // `request`); writing it there again (followAgain: false when that closed the server); its
  // turn coming.
  bool mayFollow(const ServerConn& s) const;
  void followOn(ServerConn* s, std::vector<Expected>& expected, net::HeldSlice& request);
  bool followAgain(ServerConn* s, std::vector<Expected>& expected, const net::Slice& request);
  void onFollowerRunning();
  // What it sent while its server held its input (ServerConn::holdsClientInput) goes now, if
  // the server no longer does.
  void forwardHeldInput();
  // Its query waits on the server behind another client's.
  bool following() const;
  // The server gave itself back after a finished transaction.
  void onServerReleased();
  // The server died or failed under this client: close, telling the client why when `tell`.
  void onServerLost(const Status& why, bool tell);
  // The server-to-client half of forwarding.
  int writeToClient(const net::Slice& s) { return stream_.write(s); }
  int writeToClient(std::string_view bytes) { return stream_.append(bytes); }
  // Gathers the writes of one server read into one system call.
  void corkWrites() { stream_.cork(); }
  int uncorkWritesDeferred() { return stream_.uncorkDeferred(); }
  bool writeQueueHigh() const { return stream_.aboveHighWater(); }
  void wantDrain() { stream_.wantDrain(); }
  // Resumes reading after the server's write queue drained.
  void resumeRead();

  // When the client started waiting for a server (loop clock, ms).
  uint64_t waitingSince() const { return stateSince_; }
  // Transaction state reported by the linked server's ReadyForQuery; `idle` when nothing of
  // the client is outstanding. Drives idle_transaction_timeout and transaction_timeout.
  void onReadyForQuery(char txStatus, bool idle) {
    if (activeTimeouts_) trackTransaction(txStatus, idle);
  }
  // Its CancelRequest (forwarded by the pooler): sent to the server for the query running
  // there; held until its request runs when that waits behind another client's or in pgmux;
  // a request still in pgmux without a server is answered as cancelled.
  void onCancelRequest();

  // Closes with a reason: logged, and sent as a FATAL ErrorResponse when `tell` is set.
  void close(const Status& reason, bool tell = true);

  // Stream events.
  void onStreamRead(net::Slice data) override;
  void onStreamEnd(int status) override;
  void onStreamDrained() override;
  // A timeout of the current state passed.
  void onDeadline() override;

 private:
  void processLogin();
  bool handleStartup(const proto::StartupPacket& pkt);
  void authDone();
  void onRequest();
  // A request that is only a driver's reset query (reset_query.h), answered without a server:
  // true when it was.
  bool answerResetLocally();
  // Whether pending_ is exactly one whole request (a Query, or an extended batch ending in
  // Sync): one that can be answered exactly as PostgreSQL would.
  bool pendingIsOneRequest() const;
  // That request, with no server, answered with 57014 as if its query had been cancelled, and
  // dropped: the client is idle.
  void answerPendingAsCancelled();
  // The deferred CancelRequest (cancelDeferred_), sent now that its request runs.
  void sendDeferredCancel();
  void forwardToServer(const net::Slice& s);
  // The requests read while waiting, forwarded to the server now linked.
  void forwardPending(ServerConn* s);
  // Whether `s` (a read) is exactly one request that others may follow on server `srv`, or
  // follow others with (pipeline.h): a simple Query of a pipelinable SELECT, or a Bind of the
  // unnamed portal, an optional Describe of that portal, its Execute and a Sync, where the Bind
  // is of the unnamed statement parsed just before from a pipelinable SELECT, or of a
  // preparedSelectOn `srv`.
  bool pipelinableRequest(const net::Slice& s, const ServerConn& srv) const;
  // Whether `name` is a statement of this client that `srv` has prepared, whose text is a
  // pipelinable SELECT.
  bool preparedSelectOn(std::string_view name, const ServerConn& srv) const;
  // The messages of one read, written (corked) to the server; a failure or a Terminate stops it.
  void scanMessages(ServerConn* srv, const net::Slice& s, Status& failure, bool& terminate);

  // Prepared statements (client_statements.cpp). A Parse, Bind, Describe or Close is taken whole
  // (a Bind only up to its names) before anything of it goes to the server, then rewritten.
  struct Rewrite {
    std::string& replacement;  // written in place of the message's first keepFrom bytes (the
                               // client's reused scratch buffer)
    size_t keepFrom = 0;       // the original bytes from here on go out as they are
  };
  bool interceptMessage(ServerConn* srv, const net::Slice& s, std::span<const uint8_t> bytes, size_t& pos,
                        size_t& start, Status& failure);
  void continueHeld(ServerConn* srv, const net::Slice& s, std::span<const uint8_t> bytes, size_t& pos,
                    size_t& start, Status& failure);
  bool rewriteMessage(ServerConn* srv, std::span<const uint8_t> msg, size_t total, Rewrite& r, Status& failure);
  bool rewriteParse(ServerConn* srv, std::span<const uint8_t> body, Rewrite& r, Status& failure);
  void rewriteBind(ServerConn* srv, uint32_t length, const proto::BindHead& head, Rewrite& r);
  void rewriteDescribe(ServerConn* srv, const proto::TargetMessage& t, Rewrite& r);
  void rewriteClose(ServerConn* srv, const proto::TargetMessage& t, Rewrite& r);
  // A simple Query `DEALLOCATE name` of one of the client's statements (psycopg sends it): the
  // name is dropped and an empty query goes in its place. False when the Query is anything else.
  bool deallocateStatement(ServerConn* srv, const net::Slice& s, std::span<const uint8_t> bytes, size_t& pos,
                           size_t& start);
  // An Execute: expected, and marked when its portal runs a DEALLOCATE stand-in.
  void executeSent(ServerConn* srv, const proto::ScannedMessage& m);
  // Answers a message with the error PostgreSQL would give (a stand-in makes the server fail too).
  void refuse(ServerConn* srv, const char* sqlstate, const std::string& message, Rewrite& r);
  // Prepares `s` on `srv` first unless it is there (closing what the LRU evicts).
  void ensurePrepared(ServerConn* srv, const StatementRef& s, std::string& out);
  // Writes a Parse of `s` under its server-side name to `out`, after Closes of what adding it to
  // the server's LRU evicts.
  void parseOnServer(ServerConn* srv, const StatementRef& s, std::span<const uint8_t> definition, std::string& out);
  // The client's statement `name` for a Bind or Describe; null, with the message refused as
  // PostgreSQL would refuse it, when it is unknown or retired.
  const StatementRef* usableStatement(ServerConn* srv, std::string_view name, Rewrite& r);
  void keepPending(const net::Slice& s);
  // A request left waiting for a server, if small, is copied out of its 32 kB read chunk into
  // one of its own size: the read chunk goes back to the free list rather than being held (its
  // touched pages with it) by every waiting client.
  void compactPending();
  void dropPending();
  void detachServer(bool clientGone);
  void setState(ClientState to);
  void armTimeouts();
  void trackTransaction(char txStatus, bool idle);
  void requestStarted();
  bool parseOptions(const std::string& value);
  std::string label() const;

  // The client's names: the login's until it has a pool, then the pool's.
  const std::string& userName() const;
  const std::string& databaseName() const;

  // Members are ordered to leave no padding: ten thousand idle clients hold one each.
  Pooler& pooler_;
  uint64_t id_;
  net::Stream stream_;
  // What only the login needs: made at accept, freed once the welcome is sent.
  struct Login {
    std::string buf;  // bytes read and not yet used
    std::string user;
    std::string database;
    // The snapshots this login uses (a RELOAD may replace the pooler's meanwhile).
    std::shared_ptr<const config::Config> cfg;
    std::shared_ptr<const auth::AuthFile> authFile;
    const config::DatabaseEntry* db = nullptr;  // in *cfg
    std::unique_ptr<ClientAuth> auth;
    ParamList startupParams;  // tracked values the client asked for at startup
  };
  std::unique_ptr<Login> login_;
  Pool* pool_ = nullptr;
  ServerConn* server_ = nullptr;
  ParamList params_;    // the client's view of the tracked values
  ParamList defaults_;  // what RESET ALL gives back: the welcome's values (mostly one list with params_)
  // Timeouts (loop clock, ms; 0 = not running).
  net::DeadlineTimer timer_;
  uint64_t connectedAt_ = 0;
  uint64_t stateSince_ = 0;
  uint64_t queryStart_ = 0;
  uint64_t txStart_ = 0;
  uint64_t idleInTxSince_ = 0;
  proto::FrameScanner scanner_;
  // Read while not linked; each slice holds a chunk reference. Past kMaxPendingBytes the client
  // is not read until it gets a server.
  static constexpr size_t kMaxPendingBytes = 64 * 1024;
  static constexpr size_t kCompactBytes = 4096;
  net::SliceList pending_;
  struct Prepared;  // below
  std::unique_ptr<Prepared> prepared_;
  net::PeerAddress peer_;
  uint32_t cancelPid_ = 0;
  uint32_t cancelKey_ = 0;
  uint32_t pendingBytes_ = 0;
  ClientState state_ = ClientState::Startup;
  bool registered_ = false;
  bool counted_ = false;
  bool admitted_ = false;        // counted in the per-database/user client limits
  bool activeTimeouts_ = false;  // query, idle-transaction or transaction timeout set
  bool trackStatements_ = false;
  // A CancelRequest for its request while that waited (following, or held in pending_): sent
  // when it runs.
  bool cancelDeferred_ = false;
  // A Parse, Bind, Describe or Close split across reads: collected until it can be rewritten, then
  // the rest of it passed on (a Bind's parameters) or dropped (a message answered otherwise).
  struct HeldMessage {
    bool active = false;
    std::string bytes;  // from the type byte on
    size_t passLeft = 0;
    size_t dropLeft = 0;
  };
  // What the client's unnamed statement on its current server is: none of its own, its own
  // (a Parse stand-in must then not replace it), or a DEALLOCATE stand-in; and the portals bound
  // from the latter, whose Execute gets CommandComplete DEALLOCATE.
  enum class Unnamed : uint8_t { None, Client, Deallocate };
  // Made at the first message that needs it: most idle clients never do.
  struct Prepared {
    ClientStatements names;
    HeldMessage held;
    Unnamed unnamed = Unnamed::None;
    std::vector<std::string> deallocatePortals;
    std::string scratch;  // rewritten messages, reused
  };
  Prepared& prep() {
    if (!prepared_) prepared_ = std::make_unique<Prepared>();
    return *prepared_;
  }
};

}  // namespace pgmux::pool

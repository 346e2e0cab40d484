// The replies a server owes, in order, for what was sent to it while prepared statements are
// tracked: which go to the client, which pgmux swallows (its own Parse and Close) or rewrites,
// and what an error undoes (the server skips everything up to the next Sync, so the statements
// those messages would have prepared or closed are not there).
#pragma once

#include <cstdint>
#include <vector>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>

#include "pgmux/pool/statements.h"

namespace pgmux::pool {

enum class Expect : uint8_t {
  Parse,          // the client's Parse: ParseComplete goes to the client
  InjectedParse,  // pgmux's Parse ahead of a Bind or Describe: ParseComplete swallowed
  ParseStandIn,   // the client's Parse of a statement the server has: sent as a Parse of the
                  // unnamed statement (same checks, same errors, nothing left under a name), or,
                  // while the client's own unnamed statement is in use, as a Close of a name
                  // that never exists whose CloseComplete becomes ParseComplete (viaClose)
  Bind,           // BindComplete
  Execute,        // rows, then CommandComplete, EmptyQueryResponse or PortalSuspended
  Describe,       // ParameterDescription (statements), then RowDescription or NoData
  Close,          // the client's Close (sent as a Close of nothing): CloseComplete
  InjectedClose,  // pgmux's Close of a statement evicted from the server: CloseComplete swallowed
  Refused,        // a message pgmux refuses: a Describe of a name that never exists is sent
                  // instead, so the server fails and skips to Sync as it would have; its
                  // ErrorResponse is replaced by the client's error
  Sync,           // ReadyForQuery
  Query,          // a simple Query or FunctionCall: everything up to its ReadyForQuery
};

// The statement name that never exists on a server: the stand-in Close and Describe use it.
inline constexpr const char* kAbsentStatement = "PGMUX_ABSENT";

struct Expected {
  explicit Expected(Expect k, StatementRef s = {}, std::string clientName = {})
      : kind(k), stmt(std::move(s)), name(std::move(clientName)) {}
  Expect kind;
  bool deallocates = false;       // Query, Execute, or unnamed Parse: an empty query standing in
                                  // for the client's DEALLOCATE of one of its statements; its
                                  // EmptyQueryResponse becomes CommandComplete DEALLOCATE
  bool viaClose = false;          // ParseStandIn: sent as a Close (see above)
  StatementRef stmt;              // the statement concerned, if any
  std::string name;               // the client's name (Parse, ParseStandIn, Close)
  std::string reply;              // Refused: the ErrorResponse the client gets
};

// What the statements a message touched are, for undoing it.
struct StatementScope {
  ServerStatements& server;
  ClientStatements* client;  // null once the client is gone, or while it has named nothing
  StatementRegistry& registry;
};

enum class ReplyAction : uint8_t {
  Forward,  // to the client as it is
  Swallow,  // an answer to pgmux's own message
  Replace,  // send `replacement` instead
  Desync,   // not what the server owes: the connection cannot be trusted
};

class ReplyQueue {
 public:
  bool empty() const { return q_.empty() && !skipping_; }
  size_t size() const { return q_.size(); }
  // Only plain answers are owed (the client's Parse of the unnamed statement, Query, Bind,
  // Describe, Execute, Sync: nothing pgmux swallows, rewrites or undoes), and the server is not
  // skipping to a Sync.
  bool plainOnly() const;
  // For log lines: the kinds still owed, oldest first (e.g. "Bind Describe Sync").
  std::string describe() const;
  // In the order the messages go to the server.
  void push(Expected e, const StatementScope& scope);
  // A message from the server (its body when captured).
  ReplyAction onMessage(char type, std::span<const uint8_t> body, bool captured, const StatementScope& scope,
                        std::string& replacement);
  // Whether a message of `type` may be swallowed or replaced, so must be held whole before it is
  // forwarded.
  static bool mayRewrite(char type) { return type == '1' || type == '3' || type == 'E'; }
  // CopyInResponse: the backend ignores the last `n` Syncs sent (those after the COPY's Execute).
  void dropTrailingSyncs(int n);
  void clear() {
    q_.clear();
    skipping_ = false;
  }

 private:
  void failBatch(const StatementScope& scope);
  // DEALLOCATE ALL or DISCARD ALL ran on the server.
  void dropAll(const StatementScope& scope);
  // Brings the server's LRU in line with what it is known to have plus what is in flight.
  void resync(const StatementScope& scope);
  // What a message the server skipped would have done to the client's names, undone.
  static void undo(Expected& e, const StatementScope& scope);

  // A FIFO over a vector that is emptied, keeping its capacity, whenever it drains (after every
  // ReadyForQuery, normally): no allocation per message once a server has warmed up.
  class Fifo {
   public:
    using iterator = std::vector<Expected>::iterator;
    iterator begin() { return v_.begin() + static_cast<std::ptrdiff_t>(head_); }
    iterator end() { return v_.end(); }
    auto begin() const { return v_.begin() + static_cast<std::ptrdiff_t>(head_); }
    auto end() const { return v_.end(); }
    bool empty() const { return head_ == v_.size(); }
    size_t size() const { return v_.size() - head_; }
    Expected& front() { return v_[head_]; }
    void push_back(Expected e) { v_.push_back(std::move(e)); }
    void pop_front() {
      v_[head_].stmt.reset();
      if (++head_ == v_.size()) clear();
    }
    iterator erase(iterator first, iterator last) {
      auto it = v_.erase(first, last);
      if (empty()) clear();
      return it;
    }
    iterator erase(iterator pos) { return erase(pos, pos + 1); }
    void clear() {
      v_.clear();
      head_ = 0;
    }

   private:
    std::vector<Expected> v_;
    size_t head_ = 0;
  };
  Fifo q_;
  bool skipping_ = false;  // an error with no Sync yet sent: the server skips what comes until one
};

}  // namespace pgmux::pool

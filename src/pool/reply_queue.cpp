// Matching a server's replies to the messages sent to it (see "Extended Query" in the protocol
// docs: one reply per Parse, Bind, Close; Describe ends at RowDescription or NoData; after an
// ErrorResponse everything up to Sync is skipped; Sync and Query end at ReadyForQuery).
#include "pgmux/pool/reply_queue.h"

#include <algorithm>

#include "pgmux/proto/extended.h"
#include "pgmux/proto/messages.h"
#include "pgmux/util/status.h"

namespace pgmux::pool {

namespace {
bool isSync(const Expected& e) { return e.kind == Expect::Sync; }

// Whether an entry changes what the server has prepared under pgmux's names.
bool changesServer(const Expected& e) {
  return (e.kind == Expect::Parse && e.stmt && !e.deallocates) || e.kind == Expect::InjectedParse ||
         e.kind == Expect::InjectedClose;
}
}  // namespace

bool ReplyQueue::plainOnly() const {
  if (skipping_) return false;
  return std::all_of(q_.begin(), q_.end(), [](const Expected& e) {
    const bool unnamedParse = e.kind == Expect::Parse && !e.stmt && e.name.empty();
    return !e.deallocates && (unnamedParse || e.kind == Expect::Query || e.kind == Expect::Bind ||
                              e.kind == Expect::Describe || e.kind == Expect::Execute || e.kind == Expect::Sync);
  });
}

void ReplyQueue::push(Expected e, const StatementScope& scope) {
  if (skipping_) {
    // The server is discarding messages until a Sync: this one has no effect and no reply.
    if (!isSync(e)) {
      undo(e, scope);
      if (changesServer(e)) resync(scope);
      return;
    }
    skipping_ = false;
  }
  q_.push_back(std::move(e));
}

void ReplyQueue::undo(Expected& e, const StatementScope& scope) {
  if (scope.client == nullptr) return;
  switch (e.kind) {
    case Expect::Parse:
    case Expect::ParseStandIn:
      if (e.deallocates) {
        // The DEALLOCATE never ran: the client still has its statement.
        if (scope.client->find(e.name) == nullptr) scope.client->set(e.name, e.stmt);
      } else if (!e.name.empty()) {
        // The Parse never ran: the name is not the client's.
        if (const StatementRef* mine = scope.client->find(e.name); mine != nullptr && mine->get() == e.stmt.get()) {
          (void)scope.client->take(e.name);
        }
      }
      break;
    case Expect::Close:
      if (e.stmt && scope.client->find(e.name) == nullptr) scope.client->set(e.name, e.stmt);
      break;
    case Expect::InjectedParse:
    case Expect::InjectedClose:
    case Expect::Bind:
    case Expect::Execute:
    case Expect::Describe:
    case Expect::Refused:
    case Expect::Sync:
    case Expect::Query:
      break;
  }
}

void ReplyQueue::resync(const StatementScope& scope) {
  // What the server has once the messages still in flight have run as hoped, starting from
  // what its replies have confirmed.
  std::unordered_map<uint64_t, StatementRef> target = scope.server.known();
  for (const auto& e : q_) {
    if (!changesServer(e)) continue;
    if (e.kind == Expect::InjectedClose) {
      target.erase(e.stmt->id());
    } else {
      target.emplace(e.stmt->id(), e.stmt);
    }
  }
  scope.server.resync(target);
}

void ReplyQueue::dropAll(const StatementScope& scope) {
  // DEALLOCATE ALL or DISCARD ALL ran. What was sent after it still applies on top.
  scope.server.forgetKnown();
  if (scope.client != nullptr) {
    scope.client->clear();
    for (const auto& e : q_) {
      if ((e.kind == Expect::Parse || e.kind == Expect::ParseStandIn) && !e.name.empty()) {
        if (e.deallocates) {
          (void)scope.client->take(e.name);
        } else {
          scope.client->set(e.name, e.stmt);
        }
      } else if (e.kind == Expect::Close && !e.name.empty()) {
        (void)scope.client->take(e.name);
      }
    }
  }
  resync(scope);
}

void ReplyQueue::failBatch(const StatementScope& scope) {
  // Everything up to the next Sync is skipped by the server; undo it, latest first, so that a
  // name closed and parsed again in the same batch ends as it was before the batch.
  auto end = std::find_if(q_.begin(), q_.end(), isSync);
  for (auto it = end; it != q_.begin();) {
    --it;
    undo(*it, scope);
  }
  skipping_ = end == q_.end();
  q_.erase(q_.begin(), end);
  resync(scope);
}

ReplyAction ReplyQueue::onMessage(char type, std::span<const uint8_t> body, bool captured,
                                  const StatementScope& scope, std::string& replacement) {
  if (type == 'C' && captured && dropsAllStatements(body)) dropAll(scope);
  if (q_.empty()) {
    // An error for an Execute with no Sync sent yet: the server skips what comes until one.
    if (type == 'E') skipping_ = true;
    return ReplyAction::Forward;
  }
  Expected& head = q_.front();
  const auto pop = [this] { q_.pop_front(); };
  switch (type) {
    case 'Z':
      if (head.kind != Expect::Sync && head.kind != Expect::Query) return ReplyAction::Desync;
      pop();
      return ReplyAction::Forward;
    case '1':
      switch (head.kind) {
        case Expect::Parse:
          if (changesServer(head)) scope.server.confirm(head.stmt);
          pop();
          return ReplyAction::Forward;
        case Expect::ParseStandIn:
          if (head.viaClose) return ReplyAction::Desync;
          pop();
          return ReplyAction::Forward;
        case Expect::InjectedParse:
          scope.server.confirm(head.stmt);
          pop();
          return ReplyAction::Swallow;
        default:
          return ReplyAction::Desync;
      }
    case '2':
      if (head.kind != Expect::Bind) return ReplyAction::Desync;
      pop();
      return ReplyAction::Forward;
    case '3':
      switch (head.kind) {
        case Expect::Close:
          pop();
          return ReplyAction::Forward;
        case Expect::InjectedClose:
          scope.server.confirmGone(head.stmt.get());
          pop();
          return ReplyAction::Swallow;
        case Expect::ParseStandIn:
          if (!head.viaClose) return ReplyAction::Desync;
          pop();
          proto::encodeParseComplete(replacement);
          return ReplyAction::Replace;
        default:
          return ReplyAction::Desync;
      }
    case 'C':
    case 'I':
    case 's': {
      // CommandComplete, EmptyQueryResponse, PortalSuspended: the end of an Execute (or one
      // statement of a Query).
      if (head.kind != Expect::Execute && head.kind != Expect::Query) return ReplyAction::Desync;
      if (type == 's' && head.kind != Expect::Execute) return ReplyAction::Desync;
      const bool deallocates = type == 'I' && head.deallocates;
      if (head.kind == Expect::Execute) pop();
      if (!deallocates) return ReplyAction::Forward;
      proto::encodeCommandComplete(replacement, "DEALLOCATE");
      return ReplyAction::Replace;
    }
    case 't':
      return head.kind == Expect::Describe ? ReplyAction::Forward : ReplyAction::Desync;
    case 'T':
      if (head.kind == Expect::Query) return ReplyAction::Forward;
      [[fallthrough]];
    case 'n':
      if (head.kind != Expect::Describe) return ReplyAction::Desync;
      pop();
      return ReplyAction::Forward;
    case 'E': {
      if (head.kind == Expect::Query || head.kind == Expect::Sync) {
        return ReplyAction::Forward;  // a query's error, or one at Sync (the implicit COMMIT)
      }
      // Otherwise it is the head's own error (an Execute's included): the server skips to Sync.
      proto::ErrorFields f;
      const bool parsed = captured && proto::parseErrorResponse(body, f) == proto::DecodeStatus::Ok;
      ReplyAction action = ReplyAction::Forward;
      if (head.kind == Expect::Refused && parsed && f.sqlstate == sqlstate::kInvalidSqlStatementName &&
          f.message.find(kAbsentStatement) != std::string::npos) {
        replacement = std::move(head.reply);
        action = ReplyAction::Replace;
      } else if (parsed && head.stmt && (head.kind == Expect::Bind || head.kind == Expect::Describe)) {
        if (f.sqlstate == sqlstate::kFeatureNotSupported) {
          // "cached plan must not change result type": the definition now means another row type.
          scope.registry.retire(head.stmt.get());
        } else if (f.sqlstate == sqlstate::kInvalidSqlStatementName &&
                   f.message.find(head.stmt->serverName()) != std::string::npos) {
          scope.server.confirmGone(head.stmt.get());  // pgmux was wrong: it is not there
        }
      } else if (parsed && changesServer(head) && head.kind != Expect::InjectedClose &&
                 f.sqlstate == sqlstate::kDuplicatePreparedStatement) {
        scope.server.confirm(head.stmt);  // pgmux was wrong: it is there already
      }
      failBatch(scope);
      return action;
    }
    default:
      return ReplyAction::Forward;
  }
}

std::string ReplyQueue::describe() const {
  static constexpr const char* kNames[] = {"Parse", "InjectedParse", "ParseStandIn", "Bind",  "Execute",
                                           "Describe", "Close", "InjectedClose", "Refused", "Sync", "Query"};
  std::string out;
  for (const auto& e : q_) {
    if (!out.empty()) out += ' ';
    out += kNames[static_cast<size_t>(e.kind)];
  }
  if (skipping_) out += out.empty() ? "(skipping to Sync)" : " (skipping to Sync)";
  return out.empty() ? "nothing" : out;
}

void ReplyQueue::dropTrailingSyncs(int n) {
  std::vector<size_t> drop;  // positions from the back, newest first
  size_t i = q_.size();
  for (auto it = q_.end(); n > 0 && i > 0; --n) {
    while (i > 0 && !isSync(*(--it))) --i;
    if (i == 0) break;
    drop.push_back(--i);
  }
  for (size_t pos : drop) q_.erase(q_.begin() + static_cast<std::ptrdiff_t>(pos));
}

}  // namespace pgmux::pool

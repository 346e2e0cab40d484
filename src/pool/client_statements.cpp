// The client half of prepared statements across server switches: Parse, Bind, Describe and
// Close are rewritten from the client's statement names to pooler-wide ones, a Parse is injected
// where the server lacks the statement, and what PostgreSQL would refuse is refused in place
// (through a stand-in the server fails on, so that it skips to Sync exactly as it would have).
#include <algorithm>

#include "pgmux/pool/client_conn.h"
#include "pgmux/pool/server_conn.h"
#include "pgmux/proto/messages.h"

namespace pgmux::pool {

namespace {
std::string quoted(std::string_view name) {
  std::string s;
  s.reserve(name.size() + 2);
  s.push_back('"');
  s.append(name);
  s.push_back('"');
  return s;
}
}  // namespace

bool ClientConn::interceptMessage(ServerConn* srv, const net::Slice& s, std::span<const uint8_t> bytes, size_t& pos,
                                  size_t& start, Status& failure) {
  const auto rest = bytes.subspan(pos);
  proto::FrameHeader h;
  const auto st = proto::peekFrame(rest, h, scanner_.maxPacketSize());
  if (st == proto::DecodeStatus::Invalid) {
    failure = Status::error(sqlstate::kProtocolViolation, "invalid packet length from client");
    return false;
  }
  if (st == proto::DecodeStatus::NeedMore || rest.size() < h.totalSize()) {
    // Split across reads: nothing of it goes out until it is rewritten.
    if (pos > start) (void)srv->write(net::Slice{s.chunk, s.offset + start, pos - start});
    prep().held.active = true;
    prep().held.bytes.assign(reinterpret_cast<const char*>(rest.data()), rest.size());
    pos = start = bytes.size();
    // A Bind's names may already be complete: its parameters then need not be held.
    continueHeld(srv, s, bytes, pos, start, failure);
    return failure.isOk();
  }
  const size_t total = h.totalSize();
  Rewrite r{prep().scratch};
  r.replacement.clear();
  if (!rewriteMessage(srv, rest.first(total), total, r, failure)) return false;
  if (!r.replacement.empty() || r.keepFrom > 0) {
    if (pos > start) (void)srv->write(net::Slice{s.chunk, s.offset + start, pos - start});
    (void)srv->stream().append(r.replacement);
    start = pos + std::min(r.keepFrom, total);
  }
  pos += total;
  return true;
}

void ClientConn::executeSent(ServerConn* srv, const proto::ScannedMessage& m) {
  Expected e(Expect::Execute);
  if (prepared_ && !prepared_->deallocatePortals.empty() && m.captured) {
    const auto& portals = prepared_->deallocatePortals;
    const auto nul = std::find(m.body.begin(), m.body.end(), uint8_t{0});
    const std::string_view portal(reinterpret_cast<const char*>(m.body.data()),
                                  static_cast<size_t>(nul - m.body.begin()));
    e.deallocates = std::find(portals.begin(), portals.end(), portal) != portals.end();
  }
  srv->expect(std::move(e));
}

bool ClientConn::deallocateStatement(ServerConn* srv, const net::Slice& s, std::span<const uint8_t> bytes,
                                     size_t& pos, size_t& start) {
  // Only a short Query whole in this read can be one; anything else goes the usual way.
  constexpr size_t kMaxDeallocate = 512;
  const auto rest = bytes.subspan(pos);
  proto::FrameHeader h;
  if (proto::peekFrame(rest, h) != proto::DecodeStatus::Ok || h.bodySize() > kMaxDeallocate ||
      rest.size() < h.totalSize()) {
    return false;
  }
  std::string_view sql;
  if (proto::parseQuery(rest.subspan(proto::kFrameHeaderSize, h.bodySize()), sql) != proto::DecodeStatus::Ok) {
    return false;
  }
  const std::string name = deallocatedName(sql);
  if (name.empty() || prep().names.find(name) == nullptr) return false;
  // The server keeps the statement for other clients. An empty query (no effect, in any
  // transaction state) gets its answer in the right place in the reply stream.
  (void)prep().names.take(name);
  if (activeTimeouts_) requestStarted();
  srv->requestSent();
  Expected e(Expect::Query);
  e.deallocates = true;
  srv->expect(std::move(e));
  if (pos > start) (void)srv->write(net::Slice{s.chunk, s.offset + start, pos - start});
  std::string& out = prep().scratch;
  out.clear();
  proto::encodeQuery(out, "");
  (void)srv->stream().append(out);
  pos += h.totalSize();
  start = pos;
  return true;
}

void ClientConn::continueHeld(ServerConn* srv, const net::Slice& s, std::span<const uint8_t> bytes, size_t& pos,
                              size_t& start, Status& failure) {
  HeldMessage& held = prep().held;
  const size_t avail = bytes.size() - pos;
  if (held.passLeft > 0) {
    const size_t take = std::min(held.passLeft, avail);
    pos += take;  // forwarded with the range
    held.passLeft -= take;
    held.active = held.passLeft > 0;
    return;
  }
  if (held.dropLeft > 0) {
    if (pos > start) (void)srv->write(net::Slice{s.chunk, s.offset + start, pos - start});
    const size_t take = std::min(held.dropLeft, avail);
    pos += take;
    start = pos;
    held.dropLeft -= take;
    held.active = held.dropLeft > 0;
    return;
  }
  // Collecting: take what this read has of the message.
  std::string& b = held.bytes;
  const auto collected = [&b] { return std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(b.data()), b.size()); };
  proto::FrameHeader h;
  auto st = proto::peekFrame(collected(), h, scanner_.maxPacketSize());
  if (st == proto::DecodeStatus::NeedMore) {
    const size_t take = std::min(proto::kFrameHeaderSize - b.size(), avail);
    b.append(reinterpret_cast<const char*>(bytes.data() + pos), take);
    pos = start = pos + take;
    st = proto::peekFrame(collected(), h, scanner_.maxPacketSize());
    if (st == proto::DecodeStatus::NeedMore) return;
  }
  if (st == proto::DecodeStatus::Invalid) {
    failure = Status::error(sqlstate::kProtocolViolation, "invalid packet length from client");
    return;
  }
  const size_t total = h.totalSize();
  if (b.size() < total && pos < bytes.size()) {
    const size_t take = std::min(total - b.size(), bytes.size() - pos);
    b.append(reinterpret_cast<const char*>(bytes.data() + pos), take);
    pos = start = pos + take;
  }
  if (b.size() < total) {
    // Only a Bind is decided before it is whole: once its names are in.
    proto::BindHead head;
    if (h.type != 'B' || proto::parseBindHead(collected(), head) != proto::DecodeStatus::Ok) return;
  }
  Rewrite r{prep().scratch};
  r.replacement.clear();
  if (!rewriteMessage(srv, collected(), total, r, failure)) return;
  (void)srv->stream().append(r.replacement);
  if (r.keepFrom < b.size()) (void)srv->stream().append(std::string_view(b).substr(r.keepFrom));
  const size_t remaining = total - b.size();
  held.passLeft = r.keepFrom <= b.size() ? remaining : 0;
  held.dropLeft = r.keepFrom <= b.size() ? 0 : remaining;
  held.active = remaining > 0;
  b.clear();
  if (b.capacity() > 64 * 1024) b.shrink_to_fit();
}

bool ClientConn::rewriteMessage(ServerConn* srv, std::span<const uint8_t> msg, size_t total, Rewrite& r,
                                Status& failure) {
  const char type = static_cast<char>(msg[0]);
  const auto body = msg.subspan(proto::kFrameHeaderSize);
  const auto invalid = [&](const char* what) {
    failure = Status::error(sqlstate::kProtocolViolation, std::string("invalid ") + what + " message");
    return false;
  };
  switch (type) {
    case 'P':
      if (!rewriteParse(srv, body, r, failure)) return false;
      break;
    case 'B': {
      proto::BindHead head;
      if (proto::parseBindHead(msg, head) != proto::DecodeStatus::Ok) return invalid("Bind");
      rewriteBind(srv, static_cast<uint32_t>(total - 1), head, r);
      break;
    }
    case 'D':
    case 'C': {
      proto::TargetMessage t;
      if (proto::parseTarget(body, t) != proto::DecodeStatus::Ok) return invalid(type == 'D' ? "Describe" : "Close");
      if (type == 'D') {
        rewriteDescribe(srv, t, r);
      } else {
        rewriteClose(srv, t, r);
      }
      break;
    }
    default:
      break;
  }
  // SIZE_MAX from the rewriters: none of the original message goes out.
  if (r.keepFrom == SIZE_MAX) r.keepFrom = total;
  return true;
}

bool ClientConn::rewriteParse(ServerConn* srv, std::span<const uint8_t> body, Rewrite& r, Status& failure) {
  proto::ParseMessage p;
  if (proto::parseParse(body, p) != proto::DecodeStatus::Ok) {
    failure = Status::error(sqlstate::kProtocolViolation, "invalid Parse message");
    return false;
  }
  auto& registry = pooler_.statements();
  ++registry.counters().clientParses;
  if (p.name.empty()) {
    // psycopg deallocates with PQsendQueryParams, an unnamed Parse of DEALLOCATE name.
    if (const std::string name = deallocatedName(p.query); !name.empty()) {
      if (StatementRef old = prep().names.take(name)) {
        Expected e(Expect::Parse, std::move(old), name);
        e.deallocates = true;
        srv->expect(std::move(e));
        prep().unnamed = Unnamed::Deallocate;
        static constexpr uint8_t kEmptyQuery[] = {0, 0, 0};  // "", no parameter types
        proto::encodeParse(r.replacement, "", kEmptyQuery);
        r.keepFrom = SIZE_MAX;
        return true;
      }
    }
    srv->expect(Expected(Expect::Parse));
    prep().unnamed = Unnamed::Client;
    return true;  // the unnamed statement lives and dies within the client's transaction
  }
  if (prep().names.find(p.name) != nullptr) {
    refuse(srv, sqlstate::kDuplicatePreparedStatement, "prepared statement " + quoted(p.name) + " already exists", r);
    r.keepFrom = SIZE_MAX;
    return true;
  }
  StatementRef stmt = registry.intern(
      std::string_view(reinterpret_cast<const char*>(p.definition.data()), p.definition.size()));
  prep().names.set(p.name, stmt);
  r.keepFrom = SIZE_MAX;
  if (srv->statements().touch(stmt.get())) {
    // Prepared there already. The same Parse of the unnamed statement gets the server's own
    // checks (a failed transaction, a dropped table) and its reply in the right place; but the
    // client's unnamed statement (its own, or a DEALLOCATE stand-in it will still bind) must not
    // be replaced: then a Close of nothing stands in.
    Expected e(Expect::ParseStandIn, stmt, std::string(p.name));
    if (prep().unnamed != Unnamed::None) {
      proto::encodeClose(r.replacement, 'S', kAbsentStatement);
      e.viaClose = true;
    } else {
      proto::encodeParse(r.replacement, "", p.definition);
    }
    srv->expect(std::move(e));
    return true;
  }
  parseOnServer(srv, stmt, p.definition, r.replacement);
  srv->expect(Expected(Expect::Parse, std::move(stmt), std::string(p.name)));
  return true;
}

void ClientConn::parseOnServer(ServerConn* srv, const StatementRef& s, std::span<const uint8_t> definition,
                               std::string& out) {
  std::vector<StatementRef> evicted;
  srv->statements().add(s, static_cast<size_t>(pooler_.config().maxPreparedStatements), evicted);
  for (auto& e : evicted) {
    proto::encodeClose(out, 'S', e->serverName());
    srv->expect(Expected(Expect::InjectedClose, std::move(e)));
  }
  proto::encodeParse(out, s->serverName(), definition);
  ++pooler_.statements().counters().serverParses;
}

void ClientConn::ensurePrepared(ServerConn* srv, const StatementRef& s, std::string& out) {
  if (srv->statements().touch(s.get())) return;
  const std::string& def = s->definition();
  parseOnServer(srv, s, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(def.data()), def.size()), out);
  srv->expect(Expected(Expect::InjectedParse, s));
}

const StatementRef* ClientConn::usableStatement(ServerConn* srv, std::string_view name, Rewrite& r) {
  const StatementRef* stmt = prep().names.find(name);
  if (stmt == nullptr) {
    refuse(srv, sqlstate::kInvalidSqlStatementName, "prepared statement " + quoted(name) + " does not exist", r);
  } else if ((*stmt)->retired()) {
    refuse(srv, sqlstate::kFeatureNotSupported, "cached plan must not change result type", r);
  } else {
    return stmt;
  }
  r.keepFrom = SIZE_MAX;
  return nullptr;
}

void ClientConn::refuse(ServerConn* srv, const char* sqlstate, const std::string& message, Rewrite& r) {
  Expected e(Expect::Refused);
  proto::encodeErrorResponse(e.reply, "ERROR", sqlstate, message);
  proto::encodeDescribe(r.replacement, 'S', kAbsentStatement);
  srv->expect(std::move(e));
}

void ClientConn::rewriteBind(ServerConn* srv, uint32_t length, const proto::BindHead& head, Rewrite& r) {
  // The portal now runs what this Bind names: a DEALLOCATE stand-in, or anything else.
  auto& portals = prep().deallocatePortals;
  const auto it = std::find(portals.begin(), portals.end(), head.portal);
  if (head.statement.empty() && prep().unnamed == Unnamed::Deallocate) {
    if (it == portals.end()) portals.emplace_back(head.portal);
  } else if (it != portals.end()) {
    portals.erase(it);
  }
  if (head.statement.empty()) {
    srv->expect(Expected(Expect::Bind));
    return;
  }
  ++pooler_.statements().counters().binds;
  const StatementRef* stmt = usableStatement(srv, head.statement, r);
  if (stmt == nullptr) return;
  ensurePrepared(srv, *stmt, r.replacement);
  proto::encodeBindHead(r.replacement, length, head, (*stmt)->serverName());
  srv->expect(Expected(Expect::Bind, *stmt));
  r.keepFrom = head.size;
}

void ClientConn::rewriteDescribe(ServerConn* srv, const proto::TargetMessage& t, Rewrite& r) {
  if (t.kind == 'P' || t.name.empty()) {
    srv->expect(Expected(Expect::Describe));
    return;
  }
  const StatementRef* stmt = usableStatement(srv, t.name, r);
  if (stmt == nullptr) return;
  ensurePrepared(srv, *stmt, r.replacement);
  proto::encodeDescribe(r.replacement, 'S', (*stmt)->serverName());
  srv->expect(Expected(Expect::Describe, *stmt));
  r.keepFrom = SIZE_MAX;
}

void ClientConn::rewriteClose(ServerConn* srv, const proto::TargetMessage& t, Rewrite& r) {
  if (t.kind == 'P' || t.name.empty()) {
    srv->expect(Expected(Expect::Close));
    return;
  }
  // The server keeps the statement for other clients; a Close of nothing answers in its place.
  StatementRef old = prep().names.take(t.name);
  proto::encodeClose(r.replacement, 'S', kAbsentStatement);
  srv->expect(Expected(Expect::Close, std::move(old), std::string(t.name)));
  r.keepFrom = SIZE_MAX;
}

}  // namespace pgmux::pool

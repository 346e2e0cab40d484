// The client half of cross-client pipelining (server_pipelining, pipeline.h): which requests
// may run behind another client's on a busy server, writing a follower's request there, and its
// turn coming.
#include <algorithm>
#include <utility>

#include "pgmux/pool/client_conn.h"
#include "pgmux/pool/pipeline.h"
#include "pgmux/pool/server_conn.h"
#include "pgmux/proto/extended.h"

namespace pgmux::pool {

bool ClientConn::mayFollow(const ServerConn& s) const {
  if (state_ != ClientState::Waiting || pending_.size() != 1 || (prepared_ && prepared_->held.active)) return false;
  if (!pipelinableRequest(pending_.front(), s)) return false;
  // It runs with the server's settings as they are: they must be its own.
  const TrackedParams& tracked = pooler_.tracked();
  return params_.trackedKey(tracked) == s.params().trackedKey(tracked);
}

void ClientConn::followOn(ServerConn* s, std::vector<Expected>& expected, net::HeldSlice& request) {
  server_ = s;
  setState(ClientState::Active);
  request = net::HeldSlice(pending_.front());  // kept for the server, should it run again
  dropPending();
  if (followAgain(s, expected, request.get())) stream_.startRead();
}

bool ClientConn::followAgain(ServerConn* s, std::vector<Expected>& expected, const net::Slice& request) {
  // Written (and rewritten) as any request, with the server's accounting kept for its client.
  const ServerConn::FollowerWrite saved = s->beginFollowerWrite(&expected);
  Status failure = Status::ok();
  bool terminate = false;
  s->stream().cork();
  scanMessages(s, request, failure, terminate);
  const int rc = s->stream().uncorkDeferred();
  const bool whole = s->endFollowerWrite(saved);
  if (rc != 0 || !failure.isOk() || terminate || !whole) {
    // Checked before (mayFollow), so not expected: the server's input is no longer known.
    s->close("write to server failed");  // and this client with it
    return false;
  }
  return true;
}

bool ClientConn::pipelinableRequest(const net::Slice& s, const ServerConn& srv) const {
  const std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(s.chunk->data() + s.offset), s.length);
  if (!scanner_.atBoundary() || bytes.empty()) return false;
  const auto text = [](std::span<const uint8_t> body) {
    const auto nul = std::find(body.begin(), body.end(), uint8_t{0});
    return std::string_view(reinterpret_cast<const char*>(body.data()), static_cast<size_t>(nul - body.begin()));
  };
  // Walks the whole messages of the read, in the order allowed: [P] B [D] E S, or one Q. The
  // Parse is of the unnamed statement, which the Bind then names: another client's unnamed
  // statement may be the server's until this request runs, so a Bind of "" needs its own Parse.
  size_t pos = 0;
  std::string step = bytes[0] == 'Q' ? "Q" : "PBDES";
  bool parsed = false;
  bool bound = false;
  while (pos < bytes.size()) {
    proto::FrameHeader h;
    if (proto::peekFrame(bytes.subspan(pos), h) != proto::DecodeStatus::Ok || bytes.size() - pos < h.totalSize()) {
      return false;
    }
    const char type = static_cast<char>(bytes[pos]);
    const size_t at = step.find(type);
    if (at == std::string::npos) return false;
    step.erase(0, at + 1);  // each at most once, in order; P and D may be skipped
    const auto body = bytes.subspan(pos + proto::kFrameHeaderSize, h.bodySize());
    switch (type) {
      case 'Q':
        if (h.bodySize() == 0 || body.back() != 0 || !pipelinableQuery(text(body))) return false;
        break;
      case 'P': {
        proto::ParseMessage p;
        if (proto::parseParse(body, p) != proto::DecodeStatus::Ok || !p.name.empty() || !pipelinableQuery(p.query)) {
          return false;
        }
        parsed = true;
        break;
      }
      case 'B': {
        proto::BindHead head;
        if (proto::parseBindHead(bytes.subspan(pos, h.totalSize()), head) != proto::DecodeStatus::Ok ||
            !head.portal.empty() || head.statement.empty() != parsed) {
          return false;
        }
        if (!parsed && !preparedSelectOn(head.statement, srv)) return false;
        bound = true;
        break;
      }
      case 'D':
      case 'E':
        // Of the portal just bound (the unnamed one): Describe 'P' "", Execute "" and its row limit.
        if (!bound || h.bodySize() < 2 || body[0] != (type == 'D' ? 'P' : 0) || (type == 'D' && body[1] != 0)) {
          return false;
        }
        break;
      case 'S':
        if (!bound) return false;
        break;
      default:
        break;
    }
    pos += h.totalSize();
  }
  return step.empty();
}

bool ClientConn::preparedSelectOn(std::string_view name, const ServerConn& srv) const {
  if (!trackStatements_ || prepared_ == nullptr) return false;
  const StatementRef* stmt = prepared_->names.find(name);
  if (stmt == nullptr || (*stmt)->retired() || !srv.hasStatement((*stmt).get())) return false;
  const std::string_view definition = (*stmt)->definition();
  return pipelinableQuery(definition.substr(0, definition.find('\0')));
}

bool ClientConn::following() const { return server_ != nullptr && server_->isFollower(this); }

void ClientConn::onFollowerRunning() {
  sendDeferredCancel();
  forwardHeldInput();  // what it sent while it waited
}

void ClientConn::forwardHeldInput() {
  if (pending_.empty() || server_->holdsClientInput()) return;
  forwardPending(server_);
  if (state_ == ClientState::Active) sendDeferredCancel();  // one that came for it meanwhile
}

}  // namespace pgmux::pool

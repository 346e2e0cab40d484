// Stream: libuv read/write glue with chunked zero-copy reads and slice writes.
#include "pgmux/net/stream.h"

#include <netinet/in.h>
#include <arpa/inet.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

namespace pgmux::net {
namespace {
constexpr size_t kMinReadSpace = 4096;

struct WriteReq {
  uv_write_t req;
  Chunk* chunk = nullptr;  // referenced while in flight
  std::string owned;       // or bytes of our own
  std::vector<Chunk*> chunks;        // a gathered write's references
  std::vector<std::string> strings;  // and its own bytes
};

struct ConnectReq {
  uv_connect_t req;
};
}  // namespace

// A gathered write is a list of pieces: a referenced slice of a chunk, or (chunk null) bytes of
// our own at `offset` in `owned`.
struct WriteBatch {
  struct Piece {
    Chunk* chunk = nullptr;
    size_t offset = 0;
    size_t length = 0;
  };
  std::vector<Piece> pieces;
  size_t bytes = 0;  // in all pieces
  std::string owned;
  std::vector<uv_buf_t> bufs;
  WriteBatch* nextSpare = nullptr;
};

namespace {
// The thread's batches not lent to a corked stream, as a list through nextSpare; a batch keeps
// its capacity for the next cork. Deferred writes hold a batch per stream written in a round
// until the round ends, so a burst (thousands of clients sending their first query at once)
// lends thousands at a time: the list keeps kMaxSpareBatches of them, like the chunk free
// lists, and the rest are freed. The head is a plain pointer (no guard on the forwarding path);
// the batches are freed with their thread by SpareBatches, set up by the first one made.
thread_local WriteBatch* t_spareBatches = nullptr;
thread_local size_t t_spareCount = 0;
constexpr size_t kMaxSpareBatches = 256;
struct SpareBatches {
  ~SpareBatches() {
    while (WriteBatch* b = t_spareBatches) {
      t_spareBatches = b->nextSpare;
      delete b;
    }
  }
};
thread_local SpareBatches t_spareBatchesOwner;

// The thread's streams whose gathered writes wait for flushDeferred(), each at most once; a
// stream destroyed meanwhile leaves a null.
thread_local std::vector<Stream*> t_deferred;
}  // namespace

Stream::~Stream() {
  close();
  if (listed_) std::replace(t_deferred.begin(), t_deferred.end(), this, static_cast<Stream*>(nullptr));
}

int Stream::uncorkDeferred() {
  if (batch_ == nullptr) return 0;
  if (h_ == nullptr || batch_->bytes >= kDeferLimit) return uncork();
  // A small batch copies what it references, so that the read chunks go back now rather than at
  // the end of the round: a burst of reads would otherwise hold a chunk each until then.
  WriteBatch& b = *batch_;
  if (b.bytes <= kDeferCopyLimit &&
      std::any_of(b.pieces.begin(), b.pieces.end(), [](const WriteBatch::Piece& p) { return p.chunk != nullptr; })) {
    thread_local std::string flat;  // swapped with the batch's buffer: both keep their capacity
    flat.clear();
    for (auto& p : b.pieces) {
      if (p.chunk != nullptr) {
        flat.append(p.chunk->data() + p.offset, p.length);
        p.chunk->unref();
      } else {
        flat.append(b.owned, p.offset, p.length);
      }
    }
    b.owned.swap(flat);
    b.pieces.assign(1, WriteBatch::Piece{nullptr, 0, b.owned.size()});
  }
  if (!listed_) {
    listed_ = true;
    t_deferred.push_back(this);
  }
  return 0;
}

void Stream::flushDeferred() {
  // By index: a handler told of a failure may defer more writes, which are flushed in this
  // round too.
  for (size_t i = 0; i < t_deferred.size(); ++i) {
    Stream* s = t_deferred[i];
    if (s == nullptr) continue;
    s->listed_ = false;
    const int rc = s->uncork();  // nothing if an uncork() or close() came first
    if (rc != 0 && s->h_ != nullptr) {
      s->stopRead();
      s->handler_->onStreamEnd(rc);
    }
  }
  t_deferred.clear();
}

void Stream::cork() {
  if (batch_ != nullptr) return;
  if (t_spareBatches != nullptr) {
    batch_ = std::exchange(t_spareBatches, t_spareBatches->nextSpare);
    --t_spareCount;
    return;
  }
  (void)&t_spareBatchesOwner;  // registers the thread-exit cleanup
  batch_ = new WriteBatch;
}

int Stream::initHandle(bool isPipe) {
  void* mem = std::malloc(isPipe ? sizeof(uv_pipe_t) : sizeof(uv_tcp_t));
  if (mem == nullptr) return UV_ENOMEM;
  h_ = static_cast<uv_stream_t*>(mem);
  isPipe_ = isPipe;
  int rc = isPipe ? uv_pipe_init(loop_, pipe(), 0) : uv_tcp_init(loop_, tcp());
  if (rc != 0) {
    std::free(mem);
    h_ = nullptr;
    return rc;
  }
  h_->data = this;
  return 0;
}

int Stream::accept(uv_stream_t* server, bool isPipe) {
  if (int rc = initHandle(isPipe); rc != 0) return rc;
  return uv_accept(server, h_);
}

int Stream::open(int fd, bool isPipe) {
  if (int rc = initHandle(isPipe); rc != 0) return rc;
  return isPipe ? uv_pipe_open(pipe(), fd) : uv_tcp_open(tcp(), fd);
}

int Stream::fileno() const {
  uv_os_fd_t fd = -1;
  if (h_ == nullptr || uv_fileno(handle(), &fd) != 0) return -1;
  return fd;
}

int Stream::connectTcp(const sockaddr* addr) {
  if (int rc = initHandle(false); rc != 0) return rc;
  auto* req = new ConnectReq;
  int rc = uv_tcp_connect(&req->req, tcp(), addr, connectCb);
  if (rc != 0) delete req;
  return rc;
}

int Stream::connectUnix(const std::string& path) {
  if (int rc = initHandle(true); rc != 0) return rc;
  auto* req = new ConnectReq;
  uv_pipe_connect(&req->req, pipe(), path.c_str(), connectCb);
  return 0;
}

void Stream::connectCb(uv_connect_t* req, int status) {
  auto* s = static_cast<Stream*>(req->handle->data);
  delete reinterpret_cast<ConnectReq*>(req);
  if (s == nullptr || status == UV_ECANCELED) return;
  s->handler_->onStreamConnected(status);
}

void Stream::startRead() {
  if (h_ == nullptr || reading_) return;
  if (uv_read_start(h_, allocCb, readCb) == 0) reading_ = true;
}

void Stream::stopRead() {
  if (h_ == nullptr || !reading_) return;
  uv_read_stop(h_);
  reading_ = false;
}

void Stream::dropReadBuffer() {
  if (rbuf_ == nullptr) return;
  rbuf_->unref();
  rbuf_ = nullptr;
}

void Stream::allocCb(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* s = static_cast<Stream*>(h->data);
  if (s == nullptr) {
    *buf = uv_buf_init(nullptr, 0);
    return;
  }
  if (s->rbuf_ == nullptr || s->rbuf_->freeSpace() < kMinReadSpace) {
    if (s->rbuf_ != nullptr) s->rbuf_->unref();
    s->rbuf_ = Chunk::acquire();
  }
  *buf = uv_buf_init(s->rbuf_->tail(), static_cast<unsigned>(s->rbuf_->freeSpace()));
}

void Stream::readCb(uv_stream_t* st, ssize_t nread, const uv_buf_t*) {
  auto* s = static_cast<Stream*>(st->data);
  if (s == nullptr || nread == 0) return;
  if (nread < 0) {
    s->stopRead();
    s->handler_->onStreamEnd(static_cast<int>(nread));
    return;
  }
  Chunk* c = s->rbuf_;
  const size_t off = c->used();
  c->commit(static_cast<size_t>(nread));
  // The handler may close this stream (the Stream object itself lives until the loop's
  // deferred deletion); keep the chunk alive through the call.
  c->ref();
  s->handler_->onStreamRead(Slice{c, off, static_cast<size_t>(nread)});
  c->unref();
  // Nobody kept a slice: give the chunk back, so an idle connection holds no buffer at all and
  // the next read takes a warm one from the free list.
  if (s->rbuf_ == c && c->refs() == 1) {
    s->rbuf_ = nullptr;
    c->unref();
  }
}

int Stream::queueWrite(Chunk* chunk, const char* base, size_t len, std::string* owned) {
  if (h_ == nullptr) return UV_EBADF;
  if (owned != nullptr) {
    base = owned->data();
    len = owned->size();
  }
  // Write at once when nothing is queued: no request, no reference, and no epoll_ctl that
  // libuv's write completion would cost. Only what the kernel does not take is queued.
  if (h_->write_queue_size == 0) {
    uv_buf_t now = uv_buf_init(const_cast<char*>(base), static_cast<unsigned>(len));
    const int n = uv_try_write(h_, &now, 1);
    if (n >= 0) {
      if (static_cast<size_t>(n) == len) return 0;
      base += n;
      len -= static_cast<size_t>(n);
    } else if (n != UV_EAGAIN) {
      return n;
    }
  }
  auto* req = new WriteReq;
  if (owned != nullptr) {
    const size_t skip = static_cast<size_t>(base - owned->data());
    req->owned = std::move(*owned);
    req->owned.erase(0, skip);
    base = req->owned.data();
  } else {
    req->chunk = chunk;
    chunk->ref();
  }
  uv_buf_t buf = uv_buf_init(const_cast<char*>(base), static_cast<unsigned>(len));
  int rc = uv_write(&req->req, h_, &buf, 1, writeCb);
  if (rc != 0) {
    if (req->chunk != nullptr) req->chunk->unref();
    delete req;
  }
  return rc;
}

int Stream::write(const Slice& s) {
  if (s.length == 0) return 0;
  if (batch_ != nullptr) {
    batch_->bytes += s.length;
    // Adjacent slices of one chunk join into one piece.
    auto& pieces = batch_->pieces;
    if (!pieces.empty() && pieces.back().chunk == s.chunk && pieces.back().offset + pieces.back().length == s.offset) {
      pieces.back().length += s.length;
      return 0;
    }
    s.chunk->ref();
    pieces.push_back(WriteBatch::Piece{s.chunk, s.offset, s.length});
    return 0;
  }
  return queueWrite(s.chunk, s.chunk->data() + s.offset, s.length, nullptr);
}

int Stream::write(std::string bytes) {
  if (bytes.empty()) return 0;
  if (batch_ != nullptr) return append(bytes);
  return queueWrite(nullptr, nullptr, 0, &bytes);
}

int Stream::append(std::string_view bytes) {
  if (bytes.empty()) return 0;
  if (batch_ == nullptr) return write(std::string(bytes));
  batch_->bytes += bytes.size();
  // Bytes of our own right after bytes of our own join into one piece.
  auto& pieces = batch_->pieces;
  if (!pieces.empty() && pieces.back().chunk == nullptr) {
    pieces.back().length += bytes.size();
  } else {
    pieces.push_back(WriteBatch::Piece{nullptr, batch_->owned.size(), bytes.size()});
  }
  batch_->owned.append(bytes);
  return 0;
}

void Stream::dropBatch() {
  if (batch_ == nullptr) return;
  WriteBatch* b = std::exchange(batch_, nullptr);
  for (auto& p : b->pieces) {
    if (p.chunk != nullptr) p.chunk->unref();
  }
  b->pieces.clear();
  b->bytes = 0;
  b->owned.clear();
  b->bufs.clear();
  if (b->owned.capacity() > 64 * 1024) b->owned.shrink_to_fit();
  if (t_spareCount >= kMaxSpareBatches) {
    delete b;
    return;
  }
  b->nextSpare = t_spareBatches;
  t_spareBatches = b;
  ++t_spareCount;
}

int Stream::uncork() {
  if (batch_ == nullptr) return 0;
  auto& pieces = batch_->pieces;
  auto& bufs = batch_->bufs;
  if (pieces.empty()) {
    dropBatch();
    return 0;
  }
  if (h_ == nullptr) {
    dropBatch();
    return UV_EBADF;
  }
  for (const auto& p : pieces) {
    char* base = p.chunk != nullptr ? p.chunk->data() + p.offset : batch_->owned.data() + p.offset;
    bufs.push_back(uv_buf_init(base, static_cast<unsigned>(p.length)));
  }
  size_t first = 0;
  if (h_->write_queue_size == 0) {
    const int n = uv_try_write(h_, bufs.data(), static_cast<unsigned>(bufs.size()));
    if (n < 0 && n != UV_EAGAIN) {
      dropBatch();
      return n;
    }
    size_t done = n > 0 ? static_cast<size_t>(n) : 0;
    while (first < bufs.size() && done >= bufs[first].len) {
      done -= bufs[first].len;
      ++first;
    }
    if (first == bufs.size()) {
      dropBatch();
      return 0;
    }
    bufs[first].base += done;
    bufs[first].len -= static_cast<unsigned>(done);
  }
  // The rest goes out as one request holding the chunks' references and a copy of our bytes
  // (the batch is reused by the next cork).
  auto* req = new WriteReq;
  req->strings.reserve(pieces.size() - first);  // no reallocation: the buffers point into them
  for (size_t i = first; i < pieces.size(); ++i) {
    auto& p = pieces[i];
    if (p.chunk != nullptr) {
      req->chunks.push_back(std::exchange(p.chunk, nullptr));
    } else {
      req->strings.emplace_back(bufs[i].base, bufs[i].len);
      bufs[i] = uv_buf_init(req->strings.back().data(), static_cast<unsigned>(req->strings.back().size()));
    }
  }
  const int rc = uv_write(&req->req, h_, bufs.data() + first, static_cast<unsigned>(bufs.size() - first),
                          writeCb);
  if (rc != 0) {
    for (Chunk* c : req->chunks) c->unref();
    delete req;
  }
  dropBatch();
  return rc;
}

void Stream::writeCb(uv_write_t* req, int status) {
  auto* w = reinterpret_cast<WriteReq*>(req);
  auto* s = static_cast<Stream*>(req->handle->data);
  if (w->chunk != nullptr) w->chunk->unref();
  for (Chunk* c : w->chunks) c->unref();
  delete w;
  if (s == nullptr || status == UV_ECANCELED) return;
  if (status < 0) {
    s->stopRead();
    s->handler_->onStreamEnd(status);
    return;
  }
  // The queue alone: what is gathered meanwhile goes out without a callback of its own.
  if (s->wantDrain_ && uv_stream_get_write_queue_size(s->h_) <= kLowWater) {
    s->wantDrain_ = false;
    s->handler_->onStreamDrained();
  }
}

size_t Stream::queuedBytes() const {
  if (h_ == nullptr) return 0;
  return uv_stream_get_write_queue_size(h_) + (batch_ != nullptr ? batch_->bytes : 0);
}

void Stream::setNoDelay() {
  if (h_ != nullptr && !isPipe_) uv_tcp_nodelay(tcp(), 1);
}

void Stream::setKeepalive(bool on, unsigned delaySeconds) {
  if (h_ != nullptr && !isPipe_) uv_tcp_keepalive(tcp(), on ? 1 : 0, delaySeconds);
}

PeerAddress Stream::peerAddress() const {
  PeerAddress p;
  if (h_ == nullptr) return p;
  if (isPipe_) {
    p.kind = PeerAddress::Kind::Unix;
    return p;
  }
  sockaddr_storage ss{};
  int len = sizeof ss;
  if (uv_tcp_getpeername(tcp(), reinterpret_cast<sockaddr*>(&ss), &len) != 0) return p;
  if (ss.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    p.kind = PeerAddress::Kind::V4;
    std::memcpy(p.addr, &a->sin_addr, sizeof a->sin_addr);
    p.port = ntohs(a->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    p.kind = PeerAddress::Kind::V6;
    std::memcpy(p.addr, &a->sin6_addr, sizeof a->sin6_addr);
    p.port = ntohs(a->sin6_port);
  }
  return p;
}

std::string PeerAddress::toString() const {
  char ip[INET6_ADDRSTRLEN] = "?";
  switch (kind) {
    case Kind::Unknown:
      return "?";
    case Kind::Unix:
      return "unix";
    case Kind::V4:
      inet_ntop(AF_INET, addr, ip, sizeof ip);
      break;
    case Kind::V6:
      inet_ntop(AF_INET6, addr, ip, sizeof ip);
      break;
  }
  return std::string(ip) + ":" + std::to_string(port);
}

void Stream::close() {
  if (h_ == nullptr) return;
  // Gathered bytes (a last error message among them) get their chance to go out first.
  (void)uncork();
  uv_handle_t* h = handle();
  h_ = nullptr;
  reading_ = false;
  h->data = nullptr;  // queued callbacks find no owner and return
  uv_close(h, [](uv_handle_t* p) { std::free(p); });
  if (rbuf_ != nullptr) {
    rbuf_->unref();
    rbuf_ = nullptr;
  }
}

}  // namespace pgmux::net

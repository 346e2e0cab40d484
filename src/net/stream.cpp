// Stream: libuv read/write glue with chunked zero-copy reads and slice writes.
#include "pgmux/net/stream.h"

#include <netinet/in.h>
#include <arpa/inet.h>

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

int Stream::initHandle(bool isPipe) {
  h_ = new Handle;
  isPipe_ = isPipe;
  int rc = isPipe ? uv_pipe_init(loop_, &h_->pipe, 0) : uv_tcp_init(loop_, &h_->tcp);
  if (rc != 0) {
    delete h_;
    h_ = nullptr;
    return rc;
  }
  h_->handle.data = this;
  return 0;
}

int Stream::accept(uv_stream_t* server, bool isPipe) {
  if (int rc = initHandle(isPipe); rc != 0) return rc;
  return uv_accept(server, &h_->stream);
}

int Stream::open(int fd, bool isPipe) {
  if (int rc = initHandle(isPipe); rc != 0) return rc;
  return isPipe ? uv_pipe_open(&h_->pipe, fd) : uv_tcp_open(&h_->tcp, fd);
}

int Stream::fileno() const {
  uv_os_fd_t fd = -1;
  if (h_ == nullptr || uv_fileno(&h_->handle, &fd) != 0) return -1;
  return fd;
}

int Stream::connectTcp(const sockaddr* addr) {
  if (int rc = initHandle(false); rc != 0) return rc;
  auto* req = new ConnectReq;
  int rc = uv_tcp_connect(&req->req, &h_->tcp, addr, connectCb);
  if (rc != 0) delete req;
  return rc;
}

int Stream::connectUnix(const std::string& path) {
  if (int rc = initHandle(true); rc != 0) return rc;
  auto* req = new ConnectReq;
  uv_pipe_connect(&req->req, &h_->pipe, path.c_str(), connectCb);
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
  if (uv_read_start(&h_->stream, allocCb, readCb) == 0) reading_ = true;
}

void Stream::stopRead() {
  if (h_ == nullptr || !reading_) return;
  uv_read_stop(&h_->stream);
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
  if (h_->stream.write_queue_size == 0) {
    uv_buf_t now = uv_buf_init(const_cast<char*>(base), static_cast<unsigned>(len));
    const int n = uv_try_write(&h_->stream, &now, 1);
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
  int rc = uv_write(&req->req, &h_->stream, &buf, 1, writeCb);
  if (rc != 0) {
    if (req->chunk != nullptr) req->chunk->unref();
    delete req;
  }
  return rc;
}

int Stream::write(const Slice& s) {
  if (s.length == 0) return 0;
  if (corked_) {
    // Adjacent slices of one chunk join into one piece.
    if (!batch_.empty() && batch_.back().chunk == s.chunk &&
        batch_.back().offset + batch_.back().length == s.offset) {
      batch_.back().length += s.length;
      return 0;
    }
    s.chunk->ref();
    batch_.push_back(Piece{s.chunk, s.offset, s.length});
    return 0;
  }
  return queueWrite(s.chunk, s.chunk->data() + s.offset, s.length, nullptr);
}

int Stream::write(std::string bytes) {
  if (bytes.empty()) return 0;
  if (corked_) return append(bytes);
  return queueWrite(nullptr, nullptr, 0, &bytes);
}

int Stream::append(std::string_view bytes) {
  if (bytes.empty()) return 0;
  if (!corked_) return write(std::string(bytes));
  // Bytes of our own right after bytes of our own join into one piece.
  if (!batch_.empty() && batch_.back().chunk == nullptr) {
    batch_.back().length += bytes.size();
  } else {
    batch_.push_back(Piece{nullptr, owned_.size(), bytes.size()});
  }
  owned_.append(bytes);
  return 0;
}

void Stream::dropBatch() {
  for (auto& p : batch_) {
    if (p.chunk != nullptr) p.chunk->unref();
  }
  batch_.clear();
  owned_.clear();
  if (owned_.capacity() > 64 * 1024) owned_.shrink_to_fit();
}

int Stream::uncork() {
  corked_ = false;
  if (batch_.empty()) return 0;
  if (h_ == nullptr) {
    dropBatch();
    return UV_EBADF;
  }
  bufs_.clear();
  for (const auto& p : batch_) {
    char* base = p.chunk != nullptr ? p.chunk->data() + p.offset : owned_.data() + p.offset;
    bufs_.push_back(uv_buf_init(base, static_cast<unsigned>(p.length)));
  }
  size_t first = 0;
  if (h_->stream.write_queue_size == 0) {
    const int n = uv_try_write(&h_->stream, bufs_.data(), static_cast<unsigned>(bufs_.size()));
    if (n < 0 && n != UV_EAGAIN) {
      dropBatch();
      return n;
    }
    size_t done = n > 0 ? static_cast<size_t>(n) : 0;
    while (first < bufs_.size() && done >= bufs_[first].len) {
      done -= bufs_[first].len;
      ++first;
    }
    if (first == bufs_.size()) {
      dropBatch();
      return 0;
    }
    bufs_[first].base += done;
    bufs_[first].len -= static_cast<unsigned>(done);
  }
  // The rest goes out as one request holding the chunks' references and a copy of our bytes
  // (owned_ is reused by the next batch).
  auto* req = new WriteReq;
  req->strings.reserve(batch_.size() - first);  // no reallocation: the buffers point into them
  for (size_t i = first; i < batch_.size(); ++i) {
    Piece& p = batch_[i];
    if (p.chunk != nullptr) {
      req->chunks.push_back(std::exchange(p.chunk, nullptr));
    } else {
      req->strings.emplace_back(bufs_[i].base, bufs_[i].len);
      bufs_[i] = uv_buf_init(req->strings.back().data(), static_cast<unsigned>(req->strings.back().size()));
    }
  }
  const int rc = uv_write(&req->req, &h_->stream, bufs_.data() + first, static_cast<unsigned>(bufs_.size() - first),
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
  if (s->wantDrain_ && s->queuedBytes() <= kLowWater) {
    s->wantDrain_ = false;
    s->handler_->onStreamDrained();
  }
}

size_t Stream::queuedBytes() const {
  return h_ == nullptr ? 0 : uv_stream_get_write_queue_size(&h_->stream);
}

void Stream::setNoDelay() {
  if (h_ != nullptr && !isPipe_) uv_tcp_nodelay(&h_->tcp, 1);
}

void Stream::setKeepalive(bool on, unsigned delaySeconds) {
  if (h_ != nullptr && !isPipe_) uv_tcp_keepalive(&h_->tcp, on ? 1 : 0, delaySeconds);
}

std::string Stream::peerName() const {
  if (h_ == nullptr) return "?";
  if (isPipe_) return "unix";
  sockaddr_storage ss{};
  int len = sizeof ss;
  if (uv_tcp_getpeername(&h_->tcp, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "?";
  char ip[INET6_ADDRSTRLEN] = "?";
  int port = 0;
  if (ss.ss_family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    uv_ip4_name(a, ip, sizeof ip);
    port = ntohs(a->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    uv_ip6_name(a, ip, sizeof ip);
    port = ntohs(a->sin6_port);
  }
  return std::string(ip) + ":" + std::to_string(port);
}

void Stream::close() {
  if (h_ == nullptr) return;
  // Gathered bytes (a last error message among them) get their chance to go out first.
  if (corked_) (void)uncork();
  Handle* h = h_;
  h_ = nullptr;
  reading_ = false;
  h->handle.data = nullptr;  // queued callbacks find no owner and return
  uv_close(&h->handle, [](uv_handle_t* p) { delete reinterpret_cast<Handle*>(p); });
  if (rbuf_ != nullptr) {
    rbuf_->unref();
    rbuf_ = nullptr;
  }
  dropBatch();
  corked_ = false;
}

}  // namespace pgmux::net

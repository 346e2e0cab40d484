// A libuv stream (TCP or unix socket) that reads into Chunks and writes Chunk slices or owned
// bytes. The owner may destroy a Stream at any time outside its own callbacks: the uv handle is
// closed and freed in its close callback, and callbacks that are still queued find no owner.
#pragma once

#include <uv.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "pgmux/net/chunk.h"

namespace pgmux::net {

// A connection's peer, kept in 20 bytes for log lines (a string of it would often need a heap
// block of its own).
struct PeerAddress {
  enum class Kind : uint8_t { Unknown, Unix, V4, V6 };
  Kind kind = Kind::Unknown;
  uint16_t port = 0;
  uint8_t addr[16] = {};
  // "ip:port", "unix" or "?".
  std::string toString() const;
};

// The writes gathered while a stream is corked (stream.cpp): the thread's, reused.
struct WriteBatch;

class StreamHandler {
 public:
  virtual ~StreamHandler() = default;
  // `data` is valid during the call; the handler calls data.chunk->ref() to keep it.
  virtual void onStreamRead(Slice data) = 0;
  // End of stream or an error (a libuv status). Reading has stopped; the owner should close.
  virtual void onStreamEnd(int status) = 0;
  // The write queue fell to the low mark after wantDrain() was called.
  virtual void onStreamDrained() {}
  // Outcome of connect() (0 or a libuv error).
  virtual void onStreamConnected(int status) { (void)status; }
};

class Stream {
 public:
  static constexpr size_t kHighWater = 256 * 1024;
  static constexpr size_t kLowWater = 64 * 1024;
  static constexpr size_t kDeferLimit = 64 * 1024;
  static constexpr size_t kDeferCopyLimit = 4 * 1024;

  Stream(uv_loop_t* loop, StreamHandler* handler) : loop_(loop), handler_(handler) {}
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  // Accepts a pending connection of `server` (a TCP or pipe listener).
  int accept(uv_stream_t* server, bool isPipe);
  // Connects to a TCP address or a unix socket path; the result comes through onStreamConnected.
  int connectTcp(const sockaddr* addr);
  int connectUnix(const std::string& path);
  // Takes over an open, connected socket (a server handed over by another worker's loop).
  int open(int fd, bool isPipe);
  // The socket's descriptor, or -1.
  int fileno() const;

  void startRead();
  void stopRead();
  // Gives up the buffer reads land in. A read that someone kept a slice of leaves its chunk (32 kB)
  // with the stream until the next read; an owner that goes idle calls this so that it holds none.
  // The slices still held keep the chunk alive.
  void dropReadBuffer();
  bool reading() const { return reading_; }

  // Queues a write of a slice (takes its own reference) or of owned bytes. Returns a libuv status;
  // a failure means the connection is broken (the owner closes it).
  int write(const Slice& s);
  int write(std::string bytes);
  // Copies `bytes` into the gathered batch while corked (its buffer is reused, so small
  // rewritten pieces cost no allocation); uncorked, the same as write(std::string(bytes)).
  int append(std::string_view bytes);
  // Between cork() and uncork() writes are gathered, and uncork() hands them to the kernel in one
  // system call (the rest is queued as one request). A connection forwarding a read that pgmux
  // rewrites in places writes several pieces; corked, they still cost one writev.
  // The gathering buffers are the thread's, lent to a stream while it is corked: an idle
  // connection holds none.
  void cork();
  int uncork();
  // Like uncork(), but the gathered writes go to the kernel when the loop's owner calls
  // flushDeferred(): pgmux's workers do after each round of events and before polling again.
  // A worker that forwards a query wakes the PostgreSQL backend, which on a busy machine takes
  // the CPU from it; deferred, the round's reads are all done first (docs/performance.md).
  // A batch of kDeferLimit bytes or more goes at once, and so does one on a closed stream: the
  // result is uncork()'s then. One of kDeferCopyLimit bytes or less is copied, and gives its
  // chunk references back at once. A deferred write that fails later ends the stream
  // (onStreamEnd), as a failed read does.
  int uncorkDeferred();
  // Hands every stream's deferred writes on this thread to the kernel.
  static void flushDeferred();
  // Bytes not yet handed to the kernel: gathered (corked or deferred) and queued in libuv.
  size_t queuedBytes() const;
  bool aboveHighWater() const { return queuedBytes() > kHighWater; }
  // Asks for onStreamDrained once the queue is at or below the low mark.
  void wantDrain() { wantDrain_ = true; }

  void setNoDelay();
  void setKeepalive(bool on, unsigned delaySeconds);
  bool isOpen() const { return h_ != nullptr; }
  // The peer's address, for log lines.
  PeerAddress peerAddress() const;
  void close();

 private:
  // The handle is a uv_tcp_t or a uv_pipe_t (both begin with uv_stream_t), allocated at its
  // own size rather than as a union of both: one lives as long as each connection.
  uv_handle_t* handle() const { return reinterpret_cast<uv_handle_t*>(h_); }
  uv_tcp_t* tcp() const { return reinterpret_cast<uv_tcp_t*>(h_); }
  uv_pipe_t* pipe() const { return reinterpret_cast<uv_pipe_t*>(h_); }
  int initHandle(bool isPipe);
  static void allocCb(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void readCb(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
  static void writeCb(uv_write_t* req, int status);
  static void connectCb(uv_connect_t* req, int status);
  int queueWrite(Chunk* chunk, const char* base, size_t len, std::string* owned);
  // Drops the gathered writes and gives the batch back to the thread.
  void dropBatch();

  uv_loop_t* loop_;
  StreamHandler* handler_;
  uv_stream_t* h_ = nullptr;
  WriteBatch* batch_ = nullptr;  // while corked
  Chunk* rbuf_ = nullptr;
  bool isPipe_ = false;
  bool reading_ = false;
  bool wantDrain_ = false;
  bool listed_ = false;  // in the thread's list of streams with deferred writes
};

}  // namespace pgmux::net

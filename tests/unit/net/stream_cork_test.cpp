// Stream::cork()/uncork() on a real libuv loop over TCP on 127.0.0.1 and over a unix socket:
// whatever mix of chunk slices and owned strings is gathered, the peer reads exactly their
// concatenation in order, also when the batch is far larger than the socket buffers (so that
// part of it is queued and written later) and when a batch follows one still queued; chunk
// references are all given back once the writes are done. Deferred writes (uncorkDeferred) wait
// for Stream::flushDeferred(), unless the batch is large or the stream closes first; a small one
// is copied so that its chunks go back at once.
#include <uv.h>

#include <catch2/catch.hpp>
#include <algorithm>
#include <cstdlib>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <unistd.h>
#include <vector>

#include "pgmux/net/chunk.h"
#include "pgmux/net/stream.h"

using pgmux::net::Chunk;
using pgmux::net::Slice;
using pgmux::net::Stream;
using pgmux::net::StreamHandler;

namespace {

struct Collector : StreamHandler {
  std::string got;
  bool ended = false;
  int endStatus = 0;
  void onStreamRead(Slice data) override { got.append(data.chunk->data() + data.offset, data.length); }
  void onStreamEnd(int status) override {
    ended = true;
    endStatus = status;
  }
};

struct Connector : StreamHandler {
  bool connected = false;
  int status = 1;
  bool ended = false;
  void onStreamRead(Slice) override {}
  void onStreamEnd(int) override { ended = true; }
  void onStreamConnected(int s) override {
    connected = true;
    status = s;
  }
};

enum class Transport { Tcp, Unix };

// A connected writer/reader pair on one loop. A guard timer turns a hang into a failure.
class Pair {
 public:
  explicit Pair(Transport t) : transport_(t) {
    REQUIRE(uv_loop_init(&loop_) == 0);
    guard_ = new uv_timer_t;
    uv_timer_init(&loop_, guard_);
    guard_->data = this;
    uv_timer_start(
        guard_,
        [](uv_timer_t* h) {
          auto* p = static_cast<Pair*>(h->data);
          p->timedOut_ = true;
          uv_stop(&p->loop_);
        },
        60000, 0);

    if (t == Transport::Tcp) {
      auto* tcp = new uv_tcp_t;
      uv_tcp_init(&loop_, tcp);
      listener_ = reinterpret_cast<uv_handle_t*>(tcp);
      sockaddr_in addr{};
      uv_ip4_addr("127.0.0.1", 0, &addr);
      REQUIRE(uv_tcp_bind(tcp, reinterpret_cast<const sockaddr*>(&addr), 0) == 0);
    } else {
      char dir[] = "/tmp/pgmux-cork-XXXXXX";
      REQUIRE(mkdtemp(dir) != nullptr);
      dir_ = dir;
      path_ = dir_ + "/s";
      auto* pipe = new uv_pipe_t;
      uv_pipe_init(&loop_, pipe, 0);
      listener_ = reinterpret_cast<uv_handle_t*>(pipe);
      REQUIRE(uv_pipe_bind(pipe, path_.c_str()) == 0);
    }
    listener_->data = this;
    REQUIRE(uv_listen(reinterpret_cast<uv_stream_t*>(listener_), 4, [](uv_stream_t* server, int status) {
              auto* p = static_cast<Pair*>(server->data);
              if (status != 0 || p->reader) return;
              p->reader = std::make_unique<Stream>(&p->loop_, &p->readerHandler);
              if (p->reader->accept(server, p->transport_ == Transport::Unix) == 0) p->reader->startRead();
            }) == 0);

    writer = std::make_unique<Stream>(&loop_, &writerHandler);
    if (t == Transport::Tcp) {
      sockaddr_storage ss{};
      int len = sizeof ss;
      REQUIRE(uv_tcp_getsockname(reinterpret_cast<uv_tcp_t*>(listener_), reinterpret_cast<sockaddr*>(&ss), &len) == 0);
      REQUIRE(writer->connectTcp(reinterpret_cast<const sockaddr*>(&ss)) == 0);
    } else {
      REQUIRE(writer->connectUnix(path_) == 0);
    }
    runUntil([&] { return writerHandler.connected && reader != nullptr; });
    REQUIRE(writerHandler.status == 0);
    REQUIRE(reader != nullptr);
    REQUIRE(reader->reading());
  }

  ~Pair() {
    writer.reset();
    reader.reset();
    uv_close(listener_, [](uv_handle_t* h) {
      if (h->type == UV_TCP) {
        delete reinterpret_cast<uv_tcp_t*>(h);
      } else {
        delete reinterpret_cast<uv_pipe_t*>(h);
      }
    });
    uv_close(reinterpret_cast<uv_handle_t*>(guard_), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
    uv_run(&loop_, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop_) == 0);
    if (!path_.empty()) {
      ::unlink(path_.c_str());
      ::rmdir(dir_.c_str());
    }
  }
  Pair(const Pair&) = delete;
  Pair& operator=(const Pair&) = delete;

  // Runs the loop until `done` (a hang ends in a failed REQUIRE, not a stuck test).
  void runUntil(const std::function<bool()>& done) {
    while (!done() && !timedOut_) uv_run(&loop_, UV_RUN_ONCE);
    REQUIRE_FALSE(timedOut_);
  }
  // One round of the loop, without waiting.
  void runOnce() { uv_run(&loop_, UV_RUN_NOWAIT); }
  // Until the reader has `n` bytes (or the stream ended).
  void readAtLeast(size_t n) {
    runUntil([&] { return readerHandler.got.size() >= n || readerHandler.ended; });
  }
  // Closes the writer and runs the loop until its handle and requests are gone.
  void closeWriterAndDrain() {
    writer->close();
    runUntil([&] { return readerHandler.ended; });
  }

  std::unique_ptr<Stream> writer;
  std::unique_ptr<Stream> reader;
  Connector writerHandler;
  Collector readerHandler;

 private:
  Transport transport_;
  uv_loop_t loop_{};
  uv_handle_t* listener_ = nullptr;
  uv_timer_t* guard_ = nullptr;
  bool timedOut_ = false;
  std::string dir_;
  std::string path_;
};

// A chunk of `size` bytes of pseudo-random content (the caller holds its one reference).
Chunk* filledChunk(size_t size, uint32_t seed) {
  Chunk* c = Chunk::acquire(size);
  std::mt19937 rng(seed);
  for (size_t i = 0; i < size; ++i) c->data()[i] = static_cast<char>(rng() & 0xff);
  c->commit(size);
  return c;
}

// Writes to the stream and to the expected output alike.
struct Gather {
  Stream& s;
  std::string& expected;
  void slice(Chunk* c, size_t off, size_t len) {
    REQUIRE(s.write(Slice{c, off, len}) == 0);
    expected.append(c->data() + off, len);
  }
  void bytes(std::string b) {
    expected += b;
    REQUIRE(s.write(std::move(b)) == 0);
  }
};

}  // namespace

TEST_CASE("a corked batch of slices and strings arrives whole and in order", "[net][stream][cork]") {
  const Transport transport = GENERATE(Transport::Tcp, Transport::Unix);
  INFO((transport == Transport::Tcp ? "tcp" : "unix"));
  Pair p(transport);
  Chunk* c = filledChunk(1000, 1);
  Chunk* d = filledChunk(300, 2);
  std::string expected;
  Gather g{*p.writer, expected};

  g.bytes("before;");  // not corked: written at once
  p.writer->cork();
  g.slice(c, 0, 10);
  g.slice(c, 10, 20);  // adjacent: joins the previous piece
  g.bytes("hello");     // a short owned string
  g.slice(c, 100, 50);
  g.slice(c, 160, 40);  // the same chunk with a gap: a piece of its own
  g.slice(c, 30, 5);    // the same chunk, further back
  g.slice(d, 35, 50);   // another chunk at the offset where the last piece ended
  g.slice(c, 35, 5);    // back in the first chunk, where its last piece ended
  g.bytes("");          // nothing
  g.slice(c, 0, 0);     // nothing
  g.bytes(std::string(5000, 'x'));
  g.slice(c, 150, 850);  // adjacent to an earlier piece only
  g.slice(c, 150, 850);  // the same bytes twice
  g.slice(d, 0, 300);
  g.bytes("!");
  CHECK(c->refs() > 1);  // gathered slices hold their chunks
  CHECK(p.writer->uncork() == 0);
  g.bytes(";after");  // not corked any more

  p.readAtLeast(expected.size());
  CHECK(p.readerHandler.got.size() == expected.size());
  CHECK(p.readerHandler.got == expected);

  p.closeWriterAndDrain();
  CHECK(p.readerHandler.got == expected);
  CHECK(p.readerHandler.endStatus == UV_EOF);
  CHECK(c->refs() == 1);  // every write gave its reference back
  CHECK(d->refs() == 1);
  c->unref();
  d->unref();
}

TEST_CASE("corked batches of one piece, and of only strings", "[net][stream][cork]") {
  Pair p(Transport::Tcp);
  Chunk* c = filledChunk(4096, 3);
  std::string expected;
  Gather g{*p.writer, expected};

  p.writer->cork();
  g.slice(c, 7, 100);
  CHECK(p.writer->uncork() == 0);

  p.writer->cork();
  g.slice(c, 200, 100);
  g.slice(c, 300, 100);  // two adjacent slices: one piece
  CHECK(p.writer->uncork() == 0);

  p.writer->cork();
  g.bytes("only one string");
  CHECK(p.writer->uncork() == 0);

  p.writer->cork();
  for (int i = 0; i < 50; ++i) g.bytes("s" + std::to_string(i) + ",");
  CHECK(p.writer->uncork() == 0);

  p.writer->cork();
  CHECK(p.writer->uncork() == 0);  // nothing gathered

  p.readAtLeast(expected.size());
  CHECK(p.readerHandler.got == expected);
  p.closeWriterAndDrain();
  CHECK(c->refs() == 1);
  c->unref();
}

TEST_CASE("batches far larger than the socket buffers arrive whole and in order", "[net][stream][cork]") {
  const Transport transport = GENERATE(Transport::Tcp, Transport::Unix);
  INFO((transport == Transport::Tcp ? "tcp" : "unix"));
  Pair p(transport);
  std::vector<Chunk*> chunks;
  for (uint32_t i = 0; i < 4; ++i) chunks.push_back(filledChunk(1024 * 1024, 10 + i));
  std::string expected;
  Gather g{*p.writer, expected};
  std::mt19937 rng(42);
  const auto below = [&](size_t n) { return static_cast<size_t>(rng() % n); };

  // Three batches of a few thousand pieces each (more than IOV_MAX), written before the loop
  // runs: the first fills the socket buffers, the next ones go behind what is still queued.
  for (int batch = 0; batch < 3; ++batch) {
    p.writer->cork();
    Chunk* last = nullptr;
    size_t lastEnd = 0;
    for (int piece = 0; piece < 3000; ++piece) {
      const size_t kind = below(10);
      if (kind < 3) {
        // Short strings: their bytes live inside the std::string itself.
        g.bytes(std::string(1 + below(15), static_cast<char>('a' + below(26))));
      } else if (kind < 4) {
        g.bytes(std::string(1 + below(8000), static_cast<char>('A' + below(26))));
      } else if (kind < 6 && last != nullptr && lastEnd < last->used()) {
        // Continues the previous slice.
        const size_t len = 1 + below(std::min<size_t>(4000, last->used() - lastEnd));
        g.slice(last, lastEnd, len);
        lastEnd += len;
        continue;
      } else {
        Chunk* c = chunks[below(chunks.size())];
        const size_t len = 1 + below(4000);
        const size_t off = below(c->used() - len);
        g.slice(c, off, len);
        last = c;
        lastEnd = off + len;
        continue;
      }
      last = nullptr;
    }
    CHECK(p.writer->uncork() == 0);
    if (batch == 0) {
      // The test is only meaningful if the kernel did not take it all.
      REQUIRE(p.writer->queuedBytes() > 0);
    }
  }
  INFO("expected " << expected.size() << " bytes");
  REQUIRE(expected.size() > 8u * 1024 * 1024);

  p.readAtLeast(expected.size());
  REQUIRE(p.readerHandler.got.size() == expected.size());
  // Compared piecewise first, to name where it goes wrong.
  size_t firstDiff = 0;
  while (firstDiff < expected.size() && p.readerHandler.got[firstDiff] == expected[firstDiff]) ++firstDiff;
  CHECK(firstDiff == expected.size());

  p.closeWriterAndDrain();
  CHECK(p.writer->queuedBytes() == 0);
  for (Chunk* c : chunks) {
    CHECK(c->refs() == 1);
    c->unref();
  }
}

TEST_CASE("closing a corked stream sends what was gathered first", "[net][stream][cork]") {
  Pair p(Transport::Unix);
  Chunk* c = filledChunk(64, 5);
  std::string expected;
  Gather g{*p.writer, expected};
  p.writer->cork();
  g.slice(c, 0, 64);
  g.bytes("E...fatal error for the client");
  p.closeWriterAndDrain();  // close() without an uncork()
  CHECK(p.readerHandler.got == expected);
  CHECK(p.readerHandler.endStatus == UV_EOF);
  CHECK(c->refs() == 1);
  c->unref();
}

TEST_CASE("uncork on a stream that is not open fails and drops the batch", "[net][stream][cork]") {
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  {
    Connector h;
    Stream s(&loop, &h);
    Chunk* c = filledChunk(100, 6);
    s.cork();
    CHECK(s.write(Slice{c, 0, 10}) == 0);
    CHECK(s.write(Slice{c, 50, 10}) == 0);
    CHECK(s.write(std::string("bytes")) == 0);
    CHECK(c->refs() == 3);
    CHECK(s.uncork() == UV_EBADF);
    CHECK(c->refs() == 1);
    // Uncorked, a write fails at once.
    CHECK(s.write(Slice{c, 0, 10}) == UV_EBADF);
    CHECK(c->refs() == 1);
    c->unref();
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0);
}

TEST_CASE("deferred writes wait for flushDeferred and then arrive in order", "[net][stream][cork]") {
  const Transport transport = GENERATE(Transport::Tcp, Transport::Unix);
  INFO((transport == Transport::Tcp ? "tcp" : "unix"));
  Pair p(transport);
  Chunk* c = filledChunk(2000, 7);
  std::string expected;
  Gather g{*p.writer, expected};

  p.writer->cork();
  g.slice(c, 0, 1000);
  g.bytes("query");
  CHECK(c->refs() == 2);
  CHECK(p.writer->uncorkDeferred() == 0);
  CHECK(c->refs() == 1);  // a small batch is copied: the chunk is not held until the flush
  CHECK(p.writer->queuedBytes() == expected.size());  // gathered, not yet the kernel's
  // More writes to the same stream join the deferred batch, behind what is there.
  g.bytes("-more");
  p.writer->cork();  // still corked: nothing changes
  g.slice(c, 1000, 1000);
  CHECK(p.writer->uncorkDeferred() == 0);
  // Loopback delivers at once: had anything been written, these rounds would have read it.
  for (int i = 0; i < 5; ++i) p.runOnce();
  CHECK(p.readerHandler.got.empty());

  Stream::flushDeferred();
  CHECK(p.writer->queuedBytes() == 0);
  p.readAtLeast(expected.size());
  CHECK(p.readerHandler.got == expected);
  CHECK(c->refs() == 1);
  Stream::flushDeferred();  // nothing left: nothing happens

  g.bytes(";after");  // not corked any more: written at once
  p.readAtLeast(expected.size());
  CHECK(p.readerHandler.got == expected);
  p.closeWriterAndDrain();
  c->unref();
}

TEST_CASE("a deferred batch above kDeferCopyLimit keeps its chunks until the flush", "[net][stream][cork]") {
  Pair p(Transport::Tcp);
  Chunk* c = filledChunk(3 * Stream::kDeferCopyLimit, 8);
  std::string expected;
  Gather g{*p.writer, expected};
  p.writer->cork();
  g.bytes("head");
  g.slice(c, 0, 2 * Stream::kDeferCopyLimit);
  CHECK(p.writer->uncorkDeferred() == 0);
  CHECK(c->refs() == 2);  // zero copy: referenced until written
  for (int i = 0; i < 5; ++i) p.runOnce();
  CHECK(p.readerHandler.got.empty());
  Stream::flushDeferred();
  p.readAtLeast(expected.size());
  CHECK(p.readerHandler.got == expected);
  CHECK(c->refs() == 1);
  p.closeWriterAndDrain();
  c->unref();
}

TEST_CASE("a deferred batch of kDeferLimit bytes goes at once", "[net][stream][cork]") {
  Pair p(Transport::Tcp);
  std::string expected;
  Gather g{*p.writer, expected};
  p.writer->cork();
  g.bytes(std::string(Stream::kDeferLimit, 'b'));
  CHECK(p.writer->uncorkDeferred() == 0);
  CHECK(p.writer->queuedBytes() < expected.size());  // the kernel has taken some
  p.readAtLeast(expected.size());  // without flushDeferred()
  CHECK(p.readerHandler.got == expected);
  p.closeWriterAndDrain();
}

TEST_CASE("a stream closed or destroyed with deferred writes sends them and is not flushed again",
          "[net][stream][cork]") {
  Pair p(Transport::Unix);
  std::string expected;
  Gather g{*p.writer, expected};
  p.writer->cork();
  g.bytes("E...last words");
  CHECK(p.writer->uncorkDeferred() == 0);
  p.closeWriterAndDrain();  // close() sends what was deferred
  CHECK(p.readerHandler.got == expected);
  p.writer.reset();  // destroyed while still in the deferred list (ASan: no use after free)
  Stream::flushDeferred();
  CHECK(p.readerHandler.got == expected);
}

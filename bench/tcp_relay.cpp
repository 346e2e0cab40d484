// tcp_relay: a TCP relay with no PostgreSQL in it, the floor under any proxy.
//
//   tcp_relay LISTEN_HOST LISTEN_PORT SERVER_HOST SERVER_PORT [THREADS]
//
// Each accepted client gets its own new connection to the server, and bytes are copied both
// ways as they come: no parsing, no pooling, no logins of its own (the client authenticates with
// PostgreSQL through it). A pooler on the same path cannot cost less than this in syscalls or
// scheduling: one read and one write per message per direction. bench/ runs it beside pgmux and
// PgBouncer to measure what a proxy hop costs on this machine (docs/performance.md).
//
// THREADS (default 1) event loops, each with its own SO_REUSEPORT listener and epoll set.
// Level-triggered epoll; a direction whose write would block keeps its bytes and stops reading
// its source until the destination drains. TERM or INT ends it.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

std::atomic<bool> g_stop{false};

constexpr size_t kBufSize = 16 * 1024;

// Marks an event of the current batch whose pair was closed by an earlier event.
void* const kGone = reinterpret_cast<void*>(uintptr_t{1});

struct Pair;

// One socket of a pair and the bytes read from it that its peer has not taken yet.
struct End {
  End(Pair* p, End* other) : pair(p), peer(other) {}
  Pair* pair;
  End* peer;
  int fd = -1;
  char buf[kBufSize];
  size_t off = 0;
  size_t len = 0;
  uint32_t events = 0;  // what epoll watches now
};

struct Pair {
  End client{this, &server};
  End server{this, &client};
};

// What an end must be watched for: readable unless its own bytes wait for the peer, writable
// while the peer's bytes wait for it.
uint32_t wanted(const End& e) {
  uint32_t ev = 0;
  if (e.len == 0) ev |= EPOLLIN;
  if (e.peer->len != 0) ev |= EPOLLOUT;
  return ev;
}

void watch(int ep, End& e) {
  uint32_t ev = wanted(e);
  if (ev == e.events) return;
  epoll_event ee{};
  ee.events = ev;
  ee.data.ptr = &e;
  epoll_ctl(ep, EPOLL_CTL_MOD, e.fd, &ee);
  e.events = ev;
}

void closePair(int ep, Pair* p) {
  for (End* e : {&p->client, &p->server}) {
    epoll_ctl(ep, EPOLL_CTL_DEL, e->fd, nullptr);
    close(e->fd);
  }
  delete p;
}

// Writes e's pending bytes to its peer. False when the peer is gone.
bool flush(End& e) {
  while (e.len != 0) {
    ssize_t n = send(e.peer->fd, e.buf + e.off, e.len, MSG_NOSIGNAL);
    if (n < 0) return errno == EAGAIN || errno == EINTR;
    e.off += static_cast<size_t>(n);
    e.len -= static_cast<size_t>(n);
  }
  e.off = 0;
  return true;
}

// Reads what e has and passes it on. False when either side is gone.
bool relay(End& e) {
  ssize_t n = recv(e.fd, e.buf, kBufSize, 0);
  if (n == 0) return false;
  if (n < 0) return errno == EAGAIN || errno == EINTR;
  e.off = 0;
  e.len = static_cast<size_t>(n);
  return flush(e);
}

int connectTo(const sockaddr_in& addr) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

void setUp(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

void addEnd(int ep, End& e) {
  epoll_event ee{};
  ee.events = EPOLLIN;
  ee.data.ptr = &e;
  epoll_ctl(ep, EPOLL_CTL_ADD, e.fd, &ee);
  e.events = EPOLLIN;
}

int listenOn(const sockaddr_in& addr) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 || listen(fd, 4096) != 0) {
    std::perror("tcp_relay: listen");
    std::exit(1);
  }
  return fd;
}

void loop(sockaddr_in listenAddr, sockaddr_in serverAddr) {
  int ep = epoll_create1(EPOLL_CLOEXEC);
  int lfd = listenOn(listenAddr);
  epoll_event lev{};
  lev.events = EPOLLIN;
  lev.data.ptr = nullptr;  // the listener
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev);
  std::vector<epoll_event> events(256);
  while (!g_stop.load(std::memory_order_relaxed)) {
    int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), 200);
    for (int i = 0; i < n; ++i) {
      if (events[i].data.ptr == kGone) continue;
      if (events[i].data.ptr == nullptr) {
        int cfd;
        while ((cfd = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC)) >= 0) {
          int sfd = connectTo(serverAddr);
          if (sfd < 0) {
            close(cfd);
            continue;
          }
          auto* p = new Pair;
          p->client.fd = cfd;
          p->server.fd = sfd;
          setUp(cfd);
          setUp(sfd);
          addEnd(ep, p->client);
          addEnd(ep, p->server);
        }
        continue;
      }
      End& e = *static_cast<End*>(events[i].data.ptr);
      bool ok = true;
      if (events[i].events & EPOLLOUT) ok = flush(*e.peer);
      if (ok && (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && e.len == 0) ok = relay(e);
      if (!ok) {
        // Later events of this batch may name the pair: they are skipped.
        Pair* p = e.pair;
        for (int j = i + 1; j < n; ++j) {
          auto* other = static_cast<End*>(events[j].data.ptr);
          if (other != nullptr && other != kGone && other->pair == p) events[j].data.ptr = kGone;
        }
        closePair(ep, p);
        continue;
      }
      watch(ep, e);
      watch(ep, *e.peer);
    }
  }
  close(lfd);
  close(ep);
}

sockaddr_in address(const char* host, const char* port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(std::atoi(port)));
  if (inet_pton(AF_INET, host, &a.sin_addr) != 1) {
    std::fprintf(stderr, "tcp_relay: not an IPv4 address: %s\n", host);
    std::exit(2);
  }
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: %s LISTEN_HOST LISTEN_PORT SERVER_HOST SERVER_PORT [THREADS]\n", argv[0]);
    return 2;
  }
  sockaddr_in listenAddr = address(argv[1], argv[2]);
  sockaddr_in serverAddr = address(argv[3], argv[4]);
  int threads = argc > 5 ? std::atoi(argv[5]) : 1;
  struct sigaction sa{};
  sa.sa_handler = [](int) { g_stop.store(true); };
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  std::vector<std::thread> loops;
  for (int i = 0; i < threads; ++i) loops.emplace_back(loop, listenAddr, serverAddr);
  for (auto& t : loops) t.join();
  return 0;
}

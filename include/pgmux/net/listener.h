// Listening sockets: TCP addresses and the unix socket `.s.PGSQL.<port>`.
#pragma once

#include <sys/types.h>
#include <uv.h>

#include <functional>
#include <string>
#include <vector>

namespace pgmux::net {

class Listener {
 public:
  // Called for each pending connection; the callee accepts it from `server` (a pipe if isPipe).
  using AcceptFn = std::function<void(uv_stream_t* server, bool isPipe)>;

  Listener(uv_loop_t* loop, AcceptFn onAccept) : loop_(loop), onAccept_(std::move(onAccept)) {}
  ~Listener() { closeAll(); }

  // Binds and listens; returns a message naming the address on failure, empty on success. With
  // `reusePort` the socket gets SO_REUSEPORT before it is bound, so that several listeners (one
  // per worker) share the address and the kernel spreads connections over them.
  std::string listenTcp(const std::string& host, int port, int backlog, bool reusePort);
  std::string listenUnix(const std::string& path, int mode, int backlog);
  // Listens on another listener's unix socket (a duplicate of its descriptor): connections go
  // to whichever loop accepts first. The socket file stays the original's to remove.
  std::string listenUnixShared(int fd, int backlog);
  // The descriptors of the unix sockets this listener bound itself.
  std::vector<int> unixFds() const;
  // Stops accepting and closes every socket (the unix socket file is removed).
  void closeAll();
  bool empty() const { return handles_.empty(); }

 private:
  static void connectionCb(uv_stream_t* server, int status);
  struct Entry {
    uv_handle_t* handle;
    bool isPipe;
    std::string path;
    ino_t inode;  // of the socket file we made
  };
  uv_loop_t* loop_;
  AcceptFn onAccept_;
  std::vector<Entry> handles_;
};

}  // namespace pgmux::net

// TCP and unix-socket listeners on libuv.
#include "pgmux/net/listener.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "pgmux/util/log.h"

namespace pgmux::net {

namespace {
// True when something accepts connections on the unix socket at `path`.
bool socketIsLive(const std::string& path) {
  sockaddr_un addr{};
  if (path.size() >= sizeof addr.sun_path) return false;
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const bool live = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return live;
}
}  // namespace

std::string Listener::listenTcp(const std::string& host, int port, int backlog, bool reusePort) {
  sockaddr_storage addr{};
  if (uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(&addr)) != 0 &&
      uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(&addr)) != 0) {
    return "invalid listen address: " + host;
  }
  auto* tcp = new uv_tcp_t;
  uv_tcp_init(loop_, tcp);
  tcp->data = this;
  int rc = 0;
  if (reusePort) {
    // SO_REUSEPORT must be on the socket before bind, so the socket is made here and handed to
    // libuv, which binds it.
    const int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    const int on = 1;
    if (fd < 0) {
      rc = uv_translate_sys_error(errno);
    } else if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0) {
      rc = uv_translate_sys_error(errno);
      ::close(fd);
    } else if ((rc = uv_tcp_open(tcp, fd)) != 0) {
      ::close(fd);
    }
  }
  // libuv sets SO_REUSEADDR on bind, so a restart does not wait out TIME_WAIT.
  if (rc == 0) rc = uv_tcp_bind(tcp, reinterpret_cast<sockaddr*>(&addr), 0);
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(tcp), backlog, connectionCb);
  if (rc != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(tcp), [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
    return "could not listen on " + host + ":" + std::to_string(port) + ": " + uv_strerror(rc);
  }
  handles_.push_back({reinterpret_cast<uv_handle_t*>(tcp), false, {}, 0});
  LOG_INFO("listening on %s:%d", host.c_str(), port);
  return {};
}

std::string Listener::listenUnix(const std::string& path, int mode, int backlog) {
  // A stale socket file from a crashed run would make bind fail, so it is removed; a live one
  // (another pooler or a PostgreSQL on the same port) is not taken over.
  struct stat st{};
  if (lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
    if (socketIsLive(path)) return "unix socket " + path + " is in use by another process";
    unlink(path.c_str());
  }
  auto* pipe = new uv_pipe_t;
  uv_pipe_init(loop_, pipe, 0);
  pipe->data = this;
  int rc = uv_pipe_bind(pipe, path.c_str());
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(pipe), backlog, connectionCb);
  if (rc != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(pipe), [](uv_handle_t* h) { delete reinterpret_cast<uv_pipe_t*>(h); });
    return "could not listen on unix socket " + path + ": " + uv_strerror(rc);
  }
  chmod(path.c_str(), static_cast<mode_t>(mode));
  ino_t inode = 0;
  if (lstat(path.c_str(), &st) == 0) inode = st.st_ino;
  handles_.push_back({reinterpret_cast<uv_handle_t*>(pipe), true, path, inode});
  LOG_INFO("listening on unix:%s", path.c_str());
  return {};
}

std::string Listener::listenUnixShared(int fd, int backlog) {
  auto* pipe = new uv_pipe_t;
  uv_pipe_init(loop_, pipe, 0);
  pipe->data = this;
  int rc = uv_pipe_open(pipe, fd);
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(pipe), backlog, connectionCb);
  if (rc != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(pipe), [](uv_handle_t* h) { delete reinterpret_cast<uv_pipe_t*>(h); });
    return std::string("could not listen on the shared unix socket: ") + uv_strerror(rc);
  }
  handles_.push_back({reinterpret_cast<uv_handle_t*>(pipe), true, {}, 0});
  return {};
}

std::vector<int> Listener::unixFds() const {
  std::vector<int> fds;
  for (const auto& e : handles_) {
    uv_os_fd_t fd = -1;
    if (e.isPipe && !e.path.empty() && uv_fileno(e.handle, &fd) == 0) fds.push_back(fd);
  }
  return fds;
}

void Listener::connectionCb(uv_stream_t* server, int status) {
  auto* self = static_cast<Listener*>(server->data);
  if (self == nullptr) return;
  if (status < 0) {
    LOG_WARNING("accept failed: %s", uv_strerror(status));
    return;
  }
  self->onAccept_(server, server->type == UV_NAMED_PIPE);
}

void Listener::closeAll() {
  for (auto& e : handles_) {
    e.handle->data = nullptr;
    if (e.isPipe) {
      // Only our own socket file: another process may have replaced it since.
      struct stat st{};
      if (!e.path.empty() && lstat(e.path.c_str(), &st) == 0 && st.st_ino == e.inode) unlink(e.path.c_str());
      uv_close(e.handle, [](uv_handle_t* h) { delete reinterpret_cast<uv_pipe_t*>(h); });
    } else {
      uv_close(e.handle, [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
    }
  }
  handles_.clear();
}

}  // namespace pgmux::net

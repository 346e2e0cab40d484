// pgmux: parse arguments, load config and auth file, build the workers, run their loops.
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "pgmux/auth/auth_file.h"
#include "pgmux/config/config.h"
#include "pgmux/config/workers.h"
#include "pgmux/pool/pooler.h"
#include "pgmux/util/log.h"

#ifndef PGMUX_VERSION
#define PGMUX_VERSION "0.1.0"
#endif

namespace {

void usage(FILE* out) {
  std::fprintf(out,
               "pgmux is a PostgreSQL connection pooler.\n\n"
               "Usage:\n  pgmux [OPTION]... CONFIG_FILE\n\n"
               "Options:\n"
               "  -d, --daemon         run in the background (without it, in the foreground)\n"
               "  -q, --quiet          log only warnings and errors\n"
               "  -v, --verbose        more logging (repeat for more)\n"
               "  -V, --version        print the version and exit\n"
               "      --check-config   validate CONFIG_FILE and the auth file, then exit\n"
               "  -h, --help           show this help and exit\n");
}

// Lets 10,000 clients in: the soft fd limit is raised to the hard one.
void raiseFdLimit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

// The config and its auth file, loaded and checked together (at start-up and on SIGHUP).
struct Loaded {
  std::shared_ptr<const pgmux::config::Config> cfg;
  std::shared_ptr<const pgmux::auth::AuthFile> authFile;
};

// Returns an empty string on success, else the reason (naming file and line where there is one).
std::string loadAll(const std::string& path, Loaded& out) {
  using pgmux::config::AuthType;
  try {
    out.cfg = pgmux::config::loadConfig(path);
  } catch (const std::exception& e) {
    return e.what();
  }
  switch (out.cfg->authType) {
    case AuthType::Cert:
    case AuthType::Hba:
    case AuthType::Pam:
    case AuthType::Ldap:
      return path + ": auth_type " + pgmux::config::toString(out.cfg->authType) + " is not supported yet";
    default:
      break;
  }
  if (!out.cfg->authFile.empty()) {
    auto r = pgmux::auth::loadAuthFile(out.cfg->authFile);
    if (!r) return r.status().message();
    out.authFile = std::make_shared<const pgmux::auth::AuthFile>(std::move(*r));
  } else if (out.cfg->authType != AuthType::Any) {
    return path + ": auth_file is required with auth_type " + pgmux::config::toString(out.cfg->authType);
  } else {
    out.authFile = std::make_shared<const pgmux::auth::AuthFile>();
  }
  return {};
}

// verbose and logfile, at start-up and on reload; -v on the command line adds to verbose.
bool applyLogSettings(const pgmux::config::Config& cfg, int cmdlineVerbose) {
  const int level = static_cast<int>(pgmux::LogLevel::Log) + std::max(cmdlineVerbose, cfg.verbose);
  pgmux::setLogLevel(static_cast<pgmux::LogLevel>(std::min(level, static_cast<int>(pgmux::LogLevel::Noise))));
  if (!pgmux::setLogFile(cfg.logfile.c_str())) {
    LOG_ERROR("cannot open logfile %s: %s", cfg.logfile.c_str(), std::strerror(errno));
    return false;
  }
  return true;
}

struct Signals {
  uv_signal_t term, intr, quit, hup, usr1, usr2;
  pgmux::pool::Pooler* first = nullptr;  // worker 0, on the main thread; it reaches the others
  std::string path;
  int verbose = 0;
};

// Runs `task` on every worker's thread.
void forEachWorker(pgmux::pool::Pooler& first, const std::function<void(pgmux::pool::Pooler&)>& task) {
  for (int w = 0; w < first.shared().workerCount(); ++w) first.postTo(w, task);
}

void onStopSignal(uv_signal_t* h, int signum) {
  auto* sig = static_cast<Signals*>(h->data);
  LOG_INFO("got signal %d, shutting down", signum);
  forEachWorker(*sig->first, [](pgmux::pool::Pooler& p) {
    p.stop();
    uv_stop(p.loop());
  });
}

void onReloadSignal(uv_signal_t* h, int) {
  auto* sig = static_cast<Signals*>(h->data);
  Loaded next;
  if (auto err = loadAll(sig->path, next); !err.empty()) {
    LOG_ERROR("RELOAD failed, keeping the running config: %s", err.c_str());
    return;
  }
  for (const auto& w : next.cfg->warnings) LOG_WARNING("%s", w.c_str());
  applyLogSettings(*next.cfg, sig->verbose);
  forEachWorker(*sig->first, [next](pgmux::pool::Pooler& p) { p.reload(next.cfg, next.authFile); });
}

void onUnsupportedSignal(uv_signal_t*, int signum) {
  LOG_WARNING("got signal %d (PAUSE/RESUME): not supported yet, ignored", signum);
}

}  // namespace

int main(int argc, char** argv) {
  bool daemon = false;
  bool checkOnly = false;
  bool quiet = false;
  int verbose = 0;
  std::string path;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-d" || a == "--daemon") {
      daemon = true;
    } else if (a == "-q" || a == "--quiet") {
      quiet = true;
    } else if (a == "-v" || a == "--verbose") {
      ++verbose;
    } else if (a.size() > 2 && a[0] == '-' && a[1] == 'v' && a.find_first_not_of('v', 1) == std::string::npos) {
      verbose += static_cast<int>(a.size()) - 1;
    } else if (a == "-V" || a == "--version") {
      std::printf("pgmux %s\n", PGMUX_VERSION);
      return 0;
    } else if (a == "--check-config") {
      checkOnly = true;
    } else if (a == "-h" || a == "--help") {
      usage(stdout);
      return 0;
    } else if (!a.empty() && a[0] == '-') {
      std::fprintf(stderr, "pgmux: unknown option %s\n", a.c_str());
      usage(stderr);
      return 1;
    } else if (path.empty()) {
      path = a;
    } else {
      std::fprintf(stderr, "pgmux: more than one config file given\n");
      return 1;
    }
  }
  if (path.empty()) {
    usage(stderr);
    return 1;
  }

  Loaded loaded;
  if (auto err = loadAll(path, loaded); !err.empty()) {
    std::fprintf(stderr, "pgmux: %s\n", err.c_str());
    return 1;
  }
  const auto& cfg = loaded.cfg;
  for (const auto& w : cfg->warnings) std::fprintf(stderr, "pgmux: warning: %s\n", w.c_str());
  if (checkOnly) {
    std::printf("pgmux: %s is valid\n", path.c_str());
    return 0;
  }

  pgmux::setLogQuiet(quiet);
  if (!applyLogSettings(*cfg, verbose)) return 1;
  if (daemon) {
    if (::daemon(1, cfg->logfile.empty() ? 1 : 0) != 0) {
      std::fprintf(stderr, "pgmux: cannot daemonize: %s\n", std::strerror(errno));
      return 1;
    }
  }
  if (!cfg->pidfile.empty()) {
    std::ofstream(cfg->pidfile) << getpid() << "\n";
  }
  std::signal(SIGPIPE, SIG_IGN);
  raiseFdLimit();

  uv_loop_t* loop = uv_default_loop();
  int rc = 0;
  {
    // Every worker is made and listening before any loop runs; worker 0 runs on this thread.
    pgmux::pool::Shared shared;
    std::vector<std::unique_ptr<uv_loop_t>> loops;
    std::vector<std::unique_ptr<pgmux::pool::Pooler>> workers;
    const int workerCount = pgmux::config::resolveWorkers(cfg->workers);
    for (int w = 0; w < workerCount; ++w) {
      uv_loop_t* l = loop;
      if (w > 0) {
        loops.push_back(std::make_unique<uv_loop_t>());
        l = loops.back().get();
        uv_loop_init(l);
      }
      workers.push_back(std::make_unique<pgmux::pool::Pooler>(l, shared, w, cfg, loaded.authFile));
      shared.addWorker(workers.back().get());
    }
    pgmux::pool::Pooler& pooler = *workers.front();
    Signals sig;
    sig.first = &pooler;
    sig.path = path;
    sig.verbose = verbose;
    const std::pair<uv_signal_t*, std::pair<int, uv_signal_cb>> handlers[] = {
        {&sig.term, {SIGTERM, onStopSignal}},   {&sig.intr, {SIGINT, onStopSignal}},
        {&sig.quit, {SIGQUIT, onStopSignal}},   {&sig.hup, {SIGHUP, onReloadSignal}},
        {&sig.usr1, {SIGUSR1, onUnsupportedSignal}}, {&sig.usr2, {SIGUSR2, onUnsupportedSignal}},
    };
    for (const auto& [h, what] : handlers) {
      uv_signal_init(loop, h);
      h->data = &sig;
      uv_signal_start(h, what.second, what.first);
      uv_unref(reinterpret_cast<uv_handle_t*>(h));
    }
    // The handlers are in place before the first listener opens: a signal sent as soon as the
    // port answers (a SIGUSR1's default action ends the process) finds them.
    for (auto& w : workers) {
      if (auto err = w->start(workers.front().get()); !err.empty()) {
        LOG_ERROR("%s", err.c_str());
        if (!cfg->pidfile.empty()) unlink(cfg->pidfile.c_str());
        return 1;
      }
    }
    std::vector<std::thread> threads;
    for (size_t w = 1; w < workers.size(); ++w) {
      threads.emplace_back([l = workers[w]->loop()] { uv_run(l, UV_RUN_DEFAULT); });
    }
    LOG_INFO("pgmux %s started (pool_mode=%s, auth_type=%s, workers=%d)", PGMUX_VERSION,
             pgmux::config::toString(cfg->poolMode), pgmux::config::toString(cfg->authType), workerCount);
    uv_run(loop, UV_RUN_DEFAULT);
    for (auto& t : threads) t.join();
    LOG_INFO("pgmux stopped");
    // Connections still open are closed by the process exit; the loops are not run again, and
    // the workers are not destroyed (their handles belong to loops that no longer run).
    for (auto& w : workers) (void)w.release();
    for (auto& l : loops) (void)l.release();
  }
  if (!cfg->pidfile.empty()) unlink(cfg->pidfile.c_str());
  std::fflush(stdout);
  _exit(rc);
}

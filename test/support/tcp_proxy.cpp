#include "tcp_proxy.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdexcept>
#include <sys/socket.h>
#include <tuple>
#include <unistd.h>

namespace testing {

namespace {

sockaddr_in loopback(int port)
{
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

// Everything of `len` to `fd`, or false when the peer is gone.
bool send_all(int fd, const char *p, ssize_t len)
{
    while (len > 0) {
        const ssize_t n = ::send(fd, p, static_cast<size_t>(len), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= n;
    }
    return true;
}

} // namespace

TcpProxy::TcpProxy(int server_port) : server_port_(server_port)
{
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int on = 1;
    ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    sockaddr_in a = loopback(0);
    socklen_t len = sizeof a;
    if (listener_ < 0 || ::bind(listener_, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0 ||
        ::listen(listener_, 64) != 0 || ::getsockname(listener_, reinterpret_cast<sockaddr *>(&a), &len) != 0 ||
        ::pipe2(wake_, O_CLOEXEC) != 0)
        throw std::runtime_error("tcp proxy: cannot listen on loopback");
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { loop(); });
}

TcpProxy::~TcpProxy()
{
    stop_ = true;
    (void)!::write(wake_[1], "x", 1);
    thread_.join();
    cut_all();
    for (int fd : held_)
        ::close(fd);
    ::close(listener_);
    ::close(wake_[0]);
    ::close(wake_[1]);
}

void TcpProxy::go_silent(std::chrono::milliseconds how_long)
{
    {
        std::lock_guard lock(mutex_);
        silent_until_ = std::chrono::steady_clock::now() + how_long;
        cut_ = true;
    }
    (void)!::write(wake_[1], "x", 1);
}

void TcpProxy::cut_all()
{
    for (const Pair &p : pairs_) {
        ::close(p.client);
        ::close(p.server);
    }
    pairs_.clear();
}

void TcpProxy::loop()
{
    char buf[65536];
    while (!stop_) {
        bool silent = false;
        {
            std::lock_guard lock(mutex_);
            if (cut_)
                cut_all();
            cut_ = false;
            silent = std::chrono::steady_clock::now() < silent_until_;
        }
        if (!silent && !held_.empty()) {
            for (int fd : held_)
                ::close(fd); // the client tries again, and is relayed
            held_.clear();
        }
        std::vector<pollfd> fds{{wake_[0], POLLIN, 0}, {listener_, POLLIN, 0}};
        for (const Pair &p : pairs_) {
            fds.push_back({p.client, POLLIN, 0});
            fds.push_back({p.server, POLLIN, 0});
        }
        if (::poll(fds.data(), fds.size(), 50) <= 0)
            continue;
        const std::size_t polled = pairs_.size(); // a pair accepted below waits for the next poll
        if (fds[0].revents & POLLIN)
            (void)!::read(wake_[0], buf, sizeof buf);
        if (fds[1].revents & POLLIN) {
            const int c = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
            if (c >= 0 && silent) {
                held_.push_back(c);
                ++held_total_;
            } else if (c >= 0) {
                const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                const sockaddr_in a = loopback(server_port_);
                if (s >= 0 && ::connect(s, reinterpret_cast<const sockaddr *>(&a), sizeof a) == 0) {
                    pairs_.push_back({c, s});
                } else {
                    ::close(c);
                    if (s >= 0)
                        ::close(s);
                }
            }
        }
        // Relay; a pair whose side closed or failed is closed whole.
        std::vector<Pair> kept;
        for (std::size_t i = 0; i < pairs_.size(); ++i) {
            const Pair p = pairs_[i];
            if (i >= polled) {
                kept.push_back(p);
                continue;
            }
            bool alive = true;
            for (const auto &[from, to, events] : {std::tuple{p.client, p.server, fds[2 + 2 * i].revents},
                                                   std::tuple{p.server, p.client, fds[3 + 2 * i].revents}}) {
                if (!alive || !(events & (POLLIN | POLLHUP | POLLERR)))
                    continue;
                const ssize_t n = ::recv(from, buf, sizeof buf, 0);
                alive = n > 0 && send_all(to, buf, n);
            }
            if (alive) {
                kept.push_back(p);
            } else {
                ::close(p.client);
                ::close(p.server);
            }
        }
        pairs_.swap(kept);
    }
}

} // namespace testing

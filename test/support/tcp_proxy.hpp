// A TCP relay on loopback between clients and one server, for faults a
// server cannot be asked to make: on go_silent it cuts every connection and,
// for a while, accepts new ones without relaying a byte (a server that takes
// the connection and never says hello), then closes those and relays again.
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

namespace testing {

class TcpProxy {
public:
    explicit TcpProxy(int server_port); // listens on 127.0.0.1, a free port
    ~TcpProxy();
    TcpProxy(const TcpProxy &) = delete;
    TcpProxy &operator=(const TcpProxy &) = delete;

    [[nodiscard]] int port() const { return port_; }
    void go_silent(std::chrono::milliseconds how_long);
    // Connections taken while silent (each one a client's attempt).
    [[nodiscard]] int held() const { return held_total_; }

private:
    struct Pair {
        int client = -1, server = -1;
    };
    void loop();
    void cut_all();

    const int server_port_;
    int listener_ = -1;
    int port_ = 0;
    int wake_[2] = {-1, -1};
    std::atomic<bool> stop_{false};
    std::mutex mutex_;
    std::chrono::steady_clock::time_point silent_until_{};
    bool cut_ = false;
    std::vector<Pair> pairs_;
    std::vector<int> held_;
    std::atomic<int> held_total_{0};
    std::thread thread_;
};

} // namespace testing

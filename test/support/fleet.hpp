// Real NATS servers and mtalog-ship processes for the fleet tests: servers
// listen on loopback only, on free ports, and every process a test starts is
// killed by its process id when its owner goes, whatever the outcome.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "test_support.hpp"

namespace testing {

std::string mtalog_ship_exe();
std::string nats_server_exe(); // "" when not installed
bool nats_server_installed();  // warns (skipped) when not

int free_port();

// A child process (argv, no shell), its output to `log`.
class Process {
public:
    Process() = default;
    Process(const std::vector<std::string> &argv, const std::string &log, const std::string &cwd = "");
    ~Process();
    Process(Process &&other) noexcept;
    Process &operator=(Process &&other) noexcept;
    void kill9();              // SIGKILL and reap
    int stop(int signal = 15); // signal, wait (5 s, then SIGKILL); exit status or
                               // 128+signal
    [[nodiscard]] bool running();
    [[nodiscard]] int pid() const { return pid_; }
    std::optional<int> wait_exit(int timeout_ms); // exit status once it ended
    // Waits until the process handles `signal` itself (/proc's SigCgt), so
    // that a signal sent next meets its handler, not the default action.
    [[nodiscard]] bool wait_catching(int signal, int timeout_ms);
    // CPU time it has used, user and system (/proc's stat), in seconds.
    [[nodiscard]] double cpu_seconds() const;
    // How it ended when running() found it gone: "exit N" or "signal N".
    [[nodiscard]] const std::string &ended() const { return ended_; }

private:
    int pid_ = -1;
    std::string ended_;
};

// `count` JetStream servers clustered on loopback, optionally with one
// user/password.
class NatsCluster {
public:
    NatsCluster(const TempDir &dir, int count, const std::string &user = "", const std::string &password = "");
    ~NatsCluster();
    void start(int i);
    void kill9(int i);
    void stop(int i);
    [[nodiscard]] std::string urls() const; // "nats://127.0.0.1:p1, ..."
    [[nodiscard]] std::string url(int i) const;
    [[nodiscard]] int index_of(const std::string &server_name) const; // -1 if unknown
    [[nodiscard]] int count() const { return static_cast<int>(ports_.size()); }
    [[nodiscard]] int pid(int i) const { return servers_.at(static_cast<std::size_t>(i)).pid(); }

private:
    std::string dir_;
    std::vector<int> ports_, cluster_ports_;
    std::vector<Process> servers_;
    std::string user_, password_;
};

// What the stream holds, read through libnats.
struct StoredMessage {
    std::uint64_t seq = 0;
    std::int64_t time_ns = 0; // when the stream stored it
    std::string subject, id, node, payload;
};
struct StreamReader {
    std::string urls, user, password;
    // Every message of `stream` (payloads included), in sequence order, as
    // the server `replica` stores it ("": the stream's leader). A reading
    // consumer lives on one replica, picked at random by the servers, and
    // reads that replica's store: it is made again until it is on the one
    // asked for.
    std::vector<StoredMessage> read_all(const std::string &stream, const std::string &replica = "") const;
    // The stream's leader server name ("" when unknown).
    std::string leader(const std::string &stream) const;
    // The stream's message count, or -1.
    long long messages(const std::string &stream) const;
    // Deletes the message at `seq` (as a server that gave it up would lose
    // it); false when that failed.
    bool delete_message(const std::string &stream, std::uint64_t seq) const;
    // Takes the first `count` messages of the durable pull consumer
    // `durable` on `subject` (made as `mtalog-ship tail` makes it) and
    // terminates them: the consumer never delivers them again and owes
    // nothing for them, as a consumer whose servers lost its bookkeeping
    // would. Returns how many it took.
    int terminate_in_durable(const std::string &stream, const std::string &durable, const std::string &subject,
                             int count) const;
    // Deletes the whole stream; false when that failed.
    bool delete_stream(const std::string &stream) const;
    // Makes a file-stored stream taking `subject` that keeps at most
    // `max_msgs` messages (the oldest go, or with `discard_new` new ones are
    // refused); false when that failed.
    bool create_stream(const std::string &stream, const std::string &subject, long long max_msgs,
                       bool discard_new = false) const;
};

// `processes` forked processes, each like an Exim delivery: it loads the
// real mtalog.so and logs `records` tcp:connect events through
// mtalog_exim_event with the mtalog config `config`, ids "<tag><p>-<i>".
// When `rotate` names a file, the first process renames it to `rotate`.1
// half way. Returns when all have exited (each must exit 0).
void exim_deliveries(const std::string &config, int processes, int records, const std::string &tag,
                     const std::string &rotate = "");

// The records of every file of `path` (the live file, mtalog's and
// logrotate's rotated names, .gz and .zst decoded by gzip and zstd), header
// lines left out, file by file; independent of mtalog-ship's own listing.
std::vector<std::string> records_of(const std::string &path, const std::string &header = "");

} // namespace testing

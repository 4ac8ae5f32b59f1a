// What one record costs in the Exim adapter: the real mtalog.so's
// mtalog_exim_event called as Exim's ${dlfunc} calls it, per format and
// event, against the system-call floor of the same mode (a stat(2) and a
// write(2) of a line of the same size, and a write(2) alone).
//
//   exim_bench [--records N] [--dir DIR] [--modules DIR]
#include <boost/dll/shared_library.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace {

using EximFunction = int(unsigned char **, int, unsigned char **);
using Clock = std::chrono::steady_clock;

double ns_per(Clock::time_point start, long n)
{
    return std::chrono::duration<double, std::nano>(Clock::now() - start).count() / static_cast<double>(n);
}

} // namespace

int main(int argc, char **argv)
{
    long records = 200000;
    std::string dir = "/tmp", modules = "build-release/plugin";
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string opt = argv[i];
        if (opt == "--records")
            records = std::stol(argv[i + 1]);
        else if (opt == "--dir")
            dir = argv[i + 1];
        else if (opt == "--modules")
            modules = argv[i + 1];
        else {
            std::fprintf(stderr, "usage: exim_bench [--records N] [--dir DIR] [--modules DIR]\n");
            return 64;
        }
    }
    boost::dll::shared_library so(modules + "/mtalog.so", boost::dll::load_mode::rtld_now);
    auto *exim = so.get<EximFunction>("mtalog_exim_event");

    std::printf("%-10s %-18s %12s %10s\n", "format", "event", "ns/record", "bytes");
    struct Case {
        const char *format;
        const char *event;
        const char *data;
        const char *err;
    };
    const std::string dsn = "SMTP error from remote mail server after RCPT TO:<user@example.com>: 550 5.1.1 "
                            "<user@example.com>: Recipient address rejected: User unknown in virtual mailbox table";
    const Case cases[] = {
        {"mainlog", "tcp:connect", "", ""},
        {"mainlog", "msg:host:defer", "Connection refused", "111"},
        {"mainlog", "msg:fail:delivery", dsn.c_str(), ""},
        {"json", "tcp:connect", "", ""},
        {"csv", "tcp:connect", "", ""},
        {"mainlog", "msg:complete", "", ""}, // ignored: the cost of an event mtalog has no record for
    };
    double mainlog_line_bytes = 0;
    for (const Case &c : cases) {
        const std::string log = dir + "/bench." + c.format + "." + c.event;
        const std::string conf = log + ".conf";
        std::filesystem::remove(log);
        std::ofstream(conf) << "mtalog {\n  attempt_logfile = \"" << log << "\"\n  attempt_format = " << c.format
                            << "\n  connection_failure_logfile = \"" << log << "\"\n  connection_failure_format = "
                            << c.format << "\n  permanent_failure_logfile = \"" << log
                            << "\"\n  permanent_failure_format = " << c.format << "\n}\n";
        std::vector<std::string> args{conf,         c.event, c.data, "1xUx4h-0002Mt-2o", "user@example.com",
                                      "192.0.2.25 25 mx1.example.com", c.err, "4711"};
        std::vector<unsigned char *> argv_;
        for (auto &a : args)
            argv_.push_back(reinterpret_cast<unsigned char *>(a.data()));
        unsigned char *yield = nullptr;
        if (exim(&yield, static_cast<int>(argv_.size()), argv_.data()) != 0) { // loads the config
            std::fprintf(stderr, "exim_bench: %s\n", yield ? reinterpret_cast<char *>(yield) : "failed");
            return 1;
        }
        const auto start = Clock::now();
        for (long i = 0; i < records; ++i)
            exim(&yield, static_cast<int>(argv_.size()), argv_.data());
        const double ns = ns_per(start, records);
        struct stat st {};
        const double bytes = ::stat(log.c_str(), &st) == 0 ? static_cast<double>(st.st_size) / (records + 1) : 0;
        if (std::strcmp(c.format, "mainlog") == 0 && std::strcmp(c.event, "tcp:connect") == 0)
            mainlog_line_bytes = bytes;
        std::printf("%-10s %-18s %12.0f %10.0f\n", c.format, c.event, ns, bytes);
        std::filesystem::remove(log);
        std::filesystem::remove(conf);
    }

    // The floor: the same system calls with a line of the same size.
    const std::string path = dir + "/bench.floor";
    const std::string line(static_cast<std::size_t>(mainlog_line_bytes > 1 ? mainlog_line_bytes - 1 : 100), 'x');
    const std::string text = line + "\n";
    const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    struct stat st {};
    auto start = Clock::now();
    for (long i = 0; i < records; ++i)
        if (::stat(path.c_str(), &st) != 0 || ::write(fd, text.data(), text.size()) < 0)
            return 1;
    std::printf("%-10s %-18s %12.0f %10zu\n", "floor", "stat + write", ns_per(start, records), text.size());
    start = Clock::now();
    for (long i = 0; i < records; ++i)
        if (::write(fd, text.data(), text.size()) < 0)
            return 1;
    std::printf("%-10s %-18s %12.0f %10zu\n", "floor", "write", ns_per(start, records), text.size());
    ::close(fd);
    std::filesystem::remove(path);
    return 0;
}

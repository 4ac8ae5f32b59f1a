#include "fleet.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <boost/dll/shared_library.hpp>
#include <chrono>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <nats/nats.h>
#include <netinet/in.h>
#include <cstring>
#include <set>
#include <sstream>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>


extern int (*mtalog_test_child_main)(int argc, char **argv); // catch_main.cpp

namespace testing {

namespace fs = std::filesystem;

std::string mtalog_ship_exe()
{
    return MTALOG_SHIP_EXE;
}

std::string nats_server_exe()
{
    for (const char *p : {"/usr/sbin/nats-server", "/usr/bin/nats-server"})
        if (fs::exists(p))
            return p;
    return "";
}

bool nats_server_installed()
{
    if (!nats_server_exe().empty())
        return true;
    WARN("skipped: nats-server is not installed (scripts/install-deps installs it)");
    return false;
}

int free_port()
{
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
}

Process::Process(const std::vector<std::string> &argv, const std::string &log, const std::string &cwd)
{
    const std::vector<char *> args = exec_args(argv);
    // Returns once the child has exec'd (or failed to): the pipe's write end
    // closes then. Before that, /proc shows the handlers it was forked with.
    int execd[2];
    REQUIRE(::pipe2(execd, O_CLOEXEC) == 0);
    pid_ = ::fork();
    if (pid_ == 0) { // async-signal-safe calls only (exec_args)
        default_signals(); // Catch2's handlers are not the program's
        const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            ::dup2(fd, 1);
            ::dup2(fd, 2);
        }
        if (!cwd.empty() && ::chdir(cwd.c_str()) != 0)
            _exit(126);
        ::execv(args[0], args.data());
        _exit(127);
    }
    ::close(execd[1]);
    for (char byte; pid_ > 0;) {
        const ssize_t n = ::read(execd[0], &byte, 1);
        if (n == 0 || (n < 0 && errno != EINTR))
            break;
    }
    ::close(execd[0]);
    REQUIRE(pid_ > 0);
}

Process::~Process()
{
    if (pid_ > 0)
        kill9();
}

Process::Process(Process &&other) noexcept : pid_(std::exchange(other.pid_, -1)) {}

Process &Process::operator=(Process &&other) noexcept
{
    if (this != &other) {
        if (pid_ > 0)
            kill9();
        pid_ = std::exchange(other.pid_, -1);
    }
    return *this;
}

void Process::kill9()
{
    if (pid_ <= 0)
        return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
}

std::optional<int> Process::wait_exit(int timeout_ms)
{
    if (pid_ <= 0)
        return std::nullopt;
    for (int waited = 0;; waited += 10) {
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        if (waited >= timeout_ms)
            return std::nullopt;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

int Process::stop(int signal)
{
    if (pid_ <= 0)
        return -1;
    ::kill(pid_, signal);
    if (const auto status = wait_exit(5000))
        return *status;
    kill9();
    return 128 + SIGKILL;
}

bool Process::wait_catching(int signal, int timeout_ms)
{
    const std::uint64_t bit = std::uint64_t{1} << (signal - 1);
    for (int waited = 0; waited <= timeout_ms && pid_ > 0; waited += 10) {
        std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
        if (!in)
            return false; // gone
        for (std::string line; std::getline(in, line);) {
            if (line.starts_with("State:") && line.find('Z') != std::string::npos)
                return false; // ended, not reaped yet
            if (line.starts_with("SigCgt:") && (std::stoull(line.substr(7), nullptr, 16) & bit) != 0)
                return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
}

double Process::cpu_seconds() const
{
    const std::string stat = read_file("/proc/" + std::to_string(pid_) + "/stat");
    // After the command name (in parentheses, which may hold spaces):
    // state is field 3; utime and stime are fields 14 and 15.
    std::istringstream rest(stat.substr(stat.rfind(')') + 2));
    std::string field;
    unsigned long long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
        if (i == 14)
            utime = std::stoull(field);
        if (i == 15)
            stime = std::stoull(field);
    }
    return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

bool Process::running()
{
    if (pid_ <= 0)
        return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        ended_ = WIFSIGNALED(status) ? "signal " + std::to_string(WTERMSIG(status))
                                     : "exit " + std::to_string(WEXITSTATUS(status));
        return false;
    }
    return true;
}

NatsCluster::NatsCluster(const TempDir &dir, int count, const std::string &user, const std::string &password)
    : dir_(dir.path()), user_(user), password_(password)
{
    for (int i = 0; i < count; ++i) {
        ports_.push_back(free_port());
        cluster_ports_.push_back(free_port());
    }
    servers_.resize(static_cast<std::size_t>(count));
    for (int i = 0; i < count; ++i) {
        std::string conf = "server_name: s" + std::to_string(i) + "\nlisten: 127.0.0.1:" + std::to_string(ports_[i]) +
                           "\njetstream { store_dir: \"" + dir_ + "/js" + std::to_string(i) + "\" }\n";
        if (count > 1) {
            conf +=
                "cluster {\n  name: mtalog\n  listen: 127.0.0.1:" + std::to_string(cluster_ports_[i]) + "\n  routes: [";
            for (int j = 0; j < count; ++j)
                if (j != i)
                    conf += "\n    nats-route://127.0.0.1:" + std::to_string(cluster_ports_[j]);
            conf += "\n  ]\n}\n";
        }
        if (!user.empty())
            conf += "authorization { user: \"" + user + "\", password: \"" + password + "\" }\n";
        write_file(dir_ + "/nats" + std::to_string(i) + ".conf", conf);
    }
    for (int i = 0; i < count; ++i)
        start(i);
}

NatsCluster::~NatsCluster()
{
    for (auto &s : servers_)
        s.kill9();
}

void NatsCluster::start(int i)
{
    servers_[static_cast<std::size_t>(i)] =
        Process({nats_server_exe(), "-c", dir_ + "/nats" + std::to_string(i) + ".conf"},
                dir_ + "/nats" + std::to_string(i) + ".log");
}

void NatsCluster::kill9(int i)
{
    servers_[static_cast<std::size_t>(i)].kill9();
}
void NatsCluster::stop(int i)
{
    servers_[static_cast<std::size_t>(i)].stop(SIGTERM);
}

std::string NatsCluster::url(int i) const
{
    return "nats://127.0.0.1:" + std::to_string(ports_[static_cast<std::size_t>(i)]);
}

std::string NatsCluster::urls() const
{
    std::string out;
    for (int i = 0; i < count(); ++i)
        out += (i ? ", " : "") + url(i);
    return out;
}

int NatsCluster::index_of(const std::string &server_name) const
{
    for (int i = 0; i < count(); ++i)
        if (server_name == "s" + std::to_string(i))
            return i;
    return -1;
}

namespace {

struct Connection {
    natsConnection *nc = nullptr;
    jsCtx *js = nullptr;
    Connection(const StreamReader &r)
    {
        natsOptions *o = nullptr;
        natsOptions_Create(&o);
        std::vector<std::string> urls;
        std::string cur;
        for (char c : r.urls + ",") {
            if (c == ',' || c == ' ') {
                if (!cur.empty())
                    urls.push_back(cur);
                cur.clear();
            } else {
                cur += c;
            }
        }
        std::vector<const char *> u;
        for (const auto &s : urls)
            u.push_back(s.c_str());
        natsOptions_SetServers(o, u.data(), static_cast<int>(u.size()));
        if (!r.user.empty())
            natsOptions_SetUserInfo(o, r.user.c_str(), r.password.c_str());
        if (natsConnection_Connect(&nc, o) == NATS_OK)
            natsConnection_JetStream(&js, nc, nullptr);
        else
            nc = nullptr;
        natsOptions_Destroy(o);
    }
    ~Connection()
    {
        if (js)
            jsCtx_Destroy(js);
        if (nc)
            natsConnection_Destroy(nc);
    }
};

} // namespace

// Reads every message of the stream through a pull consumer of its own
// (acknowledgements off) and ends once it has seen the stream's last
// sequence as the stream info gave it before the read: it shares no code
// with mtalog-ship's read-back, and trusts no pending count.
std::vector<StoredMessage> StreamReader::read_all(const std::string &stream, const std::string &replica) const
{
    std::vector<StoredMessage> out;
    Connection c(*this);
    REQUIRE(c.js);
    jsStreamInfo *si = nullptr;
    jsErrCode jerr{};
    REQUIRE(js_GetStreamInfo(&si, c.js, stream.c_str(), nullptr, &jerr) == NATS_OK);
    const std::uint64_t last = si->State.LastSeq, count = si->State.Msgs;
    // One replica: read wherever it is (a single server's consumer info
    // names no server).
    const bool replicated = si->Config && si->Config->Replicas > 1;
    const std::string on = !replicated                           ? ""
                           : !replica.empty()                    ? replica
                           : si->Cluster && si->Cluster->Leader ? si->Cluster->Leader
                                                                 : "";
    jsStreamInfo_Destroy(si);
    if (count == 0)
        return out;
    // A consumer is fetched from only while it answers whole batches:
    // libnats 3.4.1's Fetch overflows its result array when messages an
    // earlier fetch gave up on are waiting (fixed in 3.9.0). After a short
    // answer or a timeout the reader starts a new one past what it has.
    natsSubscription *sub = nullptr;
    const auto subscribe = [&](std::uint64_t from) {
        jsSubOptions so;
        jsSubOptions_Init(&so);
        so.Stream = stream.c_str();
        so.Config.AckPolicy = js_AckNone;
        so.Config.DeliverPolicy = from > 1 ? js_DeliverByStartSequence : js_DeliverAll;
        so.Config.OptStartSeq = from > 1 ? from : 0;
        std::string placed;
        for (int attempt = 0; attempt < 40; ++attempt) {
            REQUIRE(js_PullSubscribe(&sub, c.js, ">", nullptr, nullptr, &so, &jerr) == NATS_OK);
            jsConsumerInfo *ci = nullptr;
            REQUIRE(natsSubscription_GetConsumerInfo(&ci, sub, nullptr, &jerr) == NATS_OK);
            placed = ci->Cluster && ci->Cluster->Leader ? ci->Cluster->Leader : "";
            jsConsumerInfo_Destroy(ci);
            if (on.empty() || placed == on)
                return;
            natsSubscription_Unsubscribe(sub);
            natsConnection_FlushTimeout(c.nc, 2000);
            natsSubscription_Destroy(sub);
            sub = nullptr;
        }
        FAIL("no reading consumer was placed on " << on << " in 40 tries (the last on " << placed << ")");
    };
    const auto unsubscribe = [&] {
        natsSubscription_Unsubscribe(sub);
        natsConnection_FlushTimeout(c.nc, 2000); // the read loop is past it before it is freed
        natsSubscription_Destroy(sub);
        sub = nullptr;
    };
    std::uint64_t seen_last = 0;
    int idle = 0;
    while (seen_last < last && out.size() < count && idle < 30) {
        if (!sub)
            subscribe(seen_last + 1);
        natsMsgList list{};
        const int batch = static_cast<int>(std::min<std::uint64_t>(1024, last - seen_last));
        const natsStatus st = natsSubscription_Fetch(&list, sub, batch, 1000, &jerr);
        if (st != NATS_OK || list.Count != batch)
            unsubscribe();
        if (st == NATS_TIMEOUT) {
            ++idle;
            continue;
        }
        REQUIRE(st == NATS_OK);
        idle = 0;
        for (int i = 0; i < list.Count; ++i) {
            natsMsg *m = list.Msgs[i];
            jsMsgMetaData *meta = nullptr;
            REQUIRE(natsMsg_GetMetaData(&meta, m) == NATS_OK);
            const std::uint64_t seq = meta->Sequence.Stream;
            const std::int64_t time_ns = meta->Timestamp;
            jsMsgMetaData_Destroy(meta);
            if (seq <= seen_last)
                continue; // delivered again
            seen_last = seq;
            StoredMessage s;
            s.seq = seq;
            s.time_ns = time_ns;
            s.subject = natsMsg_GetSubject(m);
            s.payload.assign(natsMsg_GetData(m), static_cast<std::size_t>(natsMsg_GetDataLength(m)));
            const char *v = nullptr;
            if (natsMsgHeader_Get(m, "Nats-Msg-Id", &v) == NATS_OK && v)
                s.id = v;
            if (natsMsgHeader_Get(m, "Mtalog-Node", &v) == NATS_OK && v)
                s.node = v;
            out.push_back(std::move(s));
        }
        natsMsgList_Destroy(&list);
    }
    if (sub)
        unsubscribe();
    INFO("read up to sequence " << seen_last << " of " << last << ", " << out.size() << " of " << count
                                 << " messages");
    REQUIRE((seen_last >= last || out.size() >= count));
    return out;
}

std::string StreamReader::leader(const std::string &stream) const
{
    Connection c(*this);
    if (!c.js)
        return "";
    jsStreamInfo *si = nullptr;
    jsErrCode jerr{};
    if (js_GetStreamInfo(&si, c.js, stream.c_str(), nullptr, &jerr) != NATS_OK)
        return "";
    std::string name = si->Cluster && si->Cluster->Leader ? si->Cluster->Leader : "";
    jsStreamInfo_Destroy(si);
    return name;
}

long long StreamReader::messages(const std::string &stream) const
{
    Connection c(*this);
    if (!c.js)
        return -1;
    jsStreamInfo *si = nullptr;
    jsErrCode jerr{};
    if (js_GetStreamInfo(&si, c.js, stream.c_str(), nullptr, &jerr) != NATS_OK)
        return -1;
    const long long n = static_cast<long long>(si->State.Msgs);
    jsStreamInfo_Destroy(si);
    return n;
}

bool StreamReader::delete_message(const std::string &stream, std::uint64_t seq) const
{
    Connection c(*this);
    jsErrCode jerr{};
    return c.js && js_DeleteMsg(c.js, stream.c_str(), seq, nullptr, &jerr) == NATS_OK;
}

int StreamReader::terminate_in_durable(const std::string &stream, const std::string &durable,
                                       const std::string &subject, int count) const
{
    Connection c(*this);
    if (!c.js)
        return 0;
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = stream.c_str();
    natsSubscription *sub = nullptr;
    jsErrCode jerr{};
    if (js_PullSubscribe(&sub, c.js, subject.c_str(), durable.c_str(), nullptr, &so, &jerr) != NATS_OK)
        return 0;
    int taken = 0;
    natsMsgList list{};
    if (natsSubscription_Fetch(&list, sub, count, 5000, &jerr) == NATS_OK) {
        for (int i = 0; i < list.Count; ++i)
            taken += natsMsg_Term(list.Msgs[i], nullptr) == NATS_OK ? 1 : 0;
        natsMsgList_Destroy(&list);
    }
    natsConnection_Flush(c.nc);
    natsSubscription_Destroy(sub); // (the durable consumer stays)
    return taken;
}

bool StreamReader::delete_stream(const std::string &stream) const
{
    Connection c(*this);
    jsErrCode jerr{};
    return c.js && js_DeleteStream(c.js, stream.c_str(), nullptr, &jerr) == NATS_OK;
}

bool StreamReader::create_stream(const std::string &stream, const std::string &subject, long long max_msgs,
                                 bool discard_new) const
{
    Connection c(*this);
    if (!c.js)
        return false;
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    const char *subjects[] = {subject.c_str()};
    sc.Name = stream.c_str();
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    sc.MaxMsgs = max_msgs;
    sc.Discard = discard_new ? js_DiscardNew : js_DiscardOld;
    jsErrCode jerr{};
    jsStreamInfo *si = nullptr;
    const bool ok = js_AddStream(&si, c.js, &sc, nullptr, &jerr) == NATS_OK;
    if (si)
        jsStreamInfo_Destroy(si);
    return ok;
}

namespace {

using EximFunction = int(unsigned char **, int, unsigned char **);

// One Exim-like delivery process (exim_deliveries): CONFIG P RECORDS TAG
// [ROTATE]. It loads the real mtalog.so and logs RECORDS events.
int exim_delivery_child(int argc, char **argv)
{
    if (argc < 4)
        return 2;
    const std::string config = argv[0], tag = argv[3], rotate = argc > 4 ? argv[4] : "";
    const int p = std::atoi(argv[1]), records = std::atoi(argv[2]);
    boost::dll::shared_library so(modules_dir() + "/mtalog.so", boost::dll::load_mode::rtld_now);
    auto *function = so.get<EximFunction>("mtalog_exim_event");
    int bad = 0;
    for (int i = 0; i < records; ++i) {
        std::vector<std::string> args{config, "tcp:connect", "", tag + std::to_string(p) + "-" + std::to_string(i),
                                      "user@example.com", "192.0.2.25 25 mx.example.com", "", "1234"};
        std::vector<unsigned char *> event;
        for (auto &a : args)
            event.push_back(reinterpret_cast<unsigned char *>(a.data()));
        unsigned char *out = nullptr;
        bad += function(&out, static_cast<int>(event.size()), event.data()) != 0;
        if (p == 0 && i == records / 2 && !rotate.empty())
            ::rename(rotate.c_str(), (rotate + ".1").c_str());
    }
    return bad == 0 ? 0 : 1;
}

const bool exim_child_registered = [] {
    mtalog_test_child_main = exim_delivery_child;
    return true;
}();

} // namespace

void exim_deliveries(const std::string &config, int processes, int records, const std::string &tag,
                     const std::string &rotate)
{
    // Each is this program again, exec'd (see catch_main.cpp): a forked copy
    // of a process with libnats's threads must not load and log before exec.
    std::vector<Process> children;
    for (int p = 0; p < processes; ++p)
        children.emplace_back(std::vector<std::string>{"/proc/self/exe", "--test-child", config, std::to_string(p),
                                                       std::to_string(records), tag, rotate},
                              "/dev/null");
    for (Process &child : children)
        CHECK(child.wait_exit(600000) == 0); // exited, with status 0
}

std::vector<std::string> records_of(const std::string &path, const std::string &header)
{
    // Independent of mtalog-ship's own listing: the live file, mtalog's
    // rotated names and logrotate's numbered ones, decoded by the gzip and
    // zstd programs; a plain file and its compressed copy count once.
    const fs::path p(path);
    const std::string base = p.filename().string();
    // base.YYYYMMDD-HHMMSS[-N] (mtalog) or base.N (logrotate), maybe .gz or .zst
    const auto rotated = [&](std::string name) {
        for (const char *ext : {".gz", ".zst"})
            if (name.ends_with(ext))
                name.resize(name.size() - std::strlen(ext));
        if (!name.starts_with(base + ".") || name.size() == base.size() + 1)
            return false;
        const std::string rest = name.substr(base.size() + 1);
        const auto digits = [](const std::string &t) {
            return !t.empty() && t.find_first_not_of("0123456789") == std::string::npos;
        };
        if (digits(rest))
            return true;
        if (rest.size() < 15 || !digits(rest.substr(0, 8)) || rest[8] != '-' || !digits(rest.substr(9, 6)))
            return false;
        return rest.size() == 15 || (rest[15] == '-' && digits(rest.substr(16)));
    };
    std::map<std::string, std::string> files; // name without .gz/.zst -> the name to read
    if (fs::exists(path))
        files[path] = path;
    for (const auto &e : fs::directory_iterator(p.parent_path().empty() ? fs::path(".") : p.parent_path())) {
        const std::string name = e.path().filename().string();
        if (!rotated(name))
            continue;
        std::string stem = e.path().string();
        for (const char *ext : {".gz", ".zst"})
            if (stem.size() > std::strlen(ext) && stem.compare(stem.size() - std::strlen(ext), std::string::npos, ext) == 0)
                stem.resize(stem.size() - std::strlen(ext));
        if (!files.count(stem) || stem == e.path().string())
            files[stem] = e.path().string();
    }
    std::vector<std::string> out;
    for (const auto &[stem, name] : files) {
        std::string all;
        if (name.ends_with(".gz") || name.ends_with(".zst")) {
            const auto r = run_command({name.ends_with(".gz") ? "/usr/bin/gzip" : "/usr/bin/zstd", "-dc", name});
            REQUIRE(r.status == 0);
            all = r.out;
        } else {
            all = read_file(name);
        }
        std::size_t start = 0;
        if (!header.empty() && all.compare(0, header.size() + 1, header + "\n") == 0)
            start = header.size() + 1;
        for (std::size_t nl; (nl = all.find('\n', start)) != std::string::npos; start = nl + 1)
            out.push_back(all.substr(start, nl - start));
    }
    return out;
}

} // namespace testing

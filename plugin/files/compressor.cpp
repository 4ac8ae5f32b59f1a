#include "compressor.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <memory>
#include <set>
#include <utility>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include <zlib.h>
#include <zstd.h>

#include "rotation.hpp"

namespace mtalog {

namespace {

// RAII for a plain fd.
struct Fd {
    int fd = -1;
    explicit Fd(int f) : fd(f) {}
    Fd(Fd &&other) noexcept : fd(std::exchange(other.fd, -1)) {}
    Fd(const Fd &) = delete;
    Fd &operator=(const Fd &) = delete;
    Fd &operator=(Fd &&) = delete;
    ~Fd()
    {
        if (fd >= 0)
            ::close(fd);
    }
};

std::string errno_text(const std::string &what) { return what + ": " + std::strerror(errno); }

// `out_fd` stays open (zlib writes through, and closes, a copy of it).
std::string gzip_into(int in, int out_fd)
{
    std::vector<char> buf(1 << 16); // before gzdopen: nothing to leak if it throws
    Fd copy{::fcntl(out_fd, F_DUPFD_CLOEXEC, 0)};
    if (copy.fd < 0)
        return errno_text("dup");
    gzFile out = gzdopen(copy.fd, "wb6");
    if (out == nullptr)
        return "gzdopen failed"; // `copy` still owns the descriptor and closes it
    copy.fd = -1;                // gzclose closes it from here on
    for (;;) {
        const ssize_t n = ::read(in, buf.data(), buf.size());
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            gzclose(out);
            return errno_text("read");
        }
        if (n == 0)
            break;
        if (gzwrite(out, buf.data(), static_cast<unsigned>(n)) != n) {
            gzclose(out);
            return "gzwrite failed (disk full?)";
        }
    }
    return gzclose(out) == Z_OK ? std::string() : "gzclose failed (disk full?)";
}

// fsync(2) of the directory holding `path`, so that a rename in it is on disk.
bool sync_directory_of(const std::string &path)
{
    const auto slash = path.rfind('/');
    const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
    const Fd d{::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
    return d.fd >= 0 && ::fsync(d.fd) == 0;
}

bool write_all(int fd, const void *data, std::size_t size)
{
    const char *p = static_cast<const char *>(data);
    while (size > 0) {
        const ssize_t n = ::write(fd, p, size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        size -= static_cast<std::size_t>(n);
    }
    return true;
}

std::string zstd_into(int in, int out)
{
    std::unique_ptr<ZSTD_CCtx, size_t (*)(ZSTD_CCtx *)> cctx(ZSTD_createCCtx(), ZSTD_freeCCtx);
    if (!cctx)
        return "ZSTD_createCCtx failed";
    ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_compressionLevel, 3);
    std::vector<char> src(ZSTD_CStreamInSize()), dst(ZSTD_CStreamOutSize());
    for (;;) {
        const ssize_t n = ::read(in, src.data(), src.size());
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno_text("read");
        const ZSTD_EndDirective mode = n == 0 ? ZSTD_e_end : ZSTD_e_continue;
        ZSTD_inBuffer input{src.data(), static_cast<std::size_t>(n), 0};
        bool finished = false;
        while (!finished) {
            ZSTD_outBuffer output{dst.data(), dst.size(), 0};
            const std::size_t remaining = ZSTD_compressStream2(cctx.get(), &output, &input, mode);
            if (ZSTD_isError(remaining))
                return std::string("zstd: ") + ZSTD_getErrorName(remaining);
            if (!write_all(out, dst.data(), output.pos))
                return errno_text("write");
            finished = mode == ZSTD_e_end ? remaining == 0 : input.pos == input.size;
        }
        if (n == 0)
            return {};
    }
}

} // namespace

const char *Compressor::extension(mtacfg::Compression kind)
{
    switch (kind) {
    case mtacfg::Compression::gzip: return ".gz";
    case mtacfg::Compression::zstd: return ".zst";
    case mtacfg::Compression::none: break;
    }
    return "";
}

std::string Compressor::compress_file(const std::string &path, mtacfg::Compression kind)
{
    std::string error = compress_into_place(path, kind);
    if (!error.empty() && !error.ends_with("both forms kept"))
        error += "; left uncompressed";
    return error;
}

std::string Compressor::compress_into_place(const std::string &path, mtacfg::Compression kind)
{
    const std::string final_name = path + extension(kind);
    const std::string temp = final_name + ".tmp";
    Fd in{::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW)};
    if (in.fd < 0)
        return errno_text("cannot read " + path);
    // The compressed file gets the mode of the file it came from (a file's
    // own <record>_log_mode, not the instance's log_mode).
    struct stat st {};
    if (::fstat(in.fd, &st) != 0)
        return errno_text("cannot stat " + path);
    const mode_t mode = st.st_mode & 07777;
    ::unlink(temp.c_str()); // a leftover of an earlier crash
    Fd out{::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode)};
    if (out.fd < 0)
        return errno_text("cannot create " + temp);
    (void)::fchmod(out.fd, mode);               // whatever the umask
    (void)::fchown(out.fd, st.st_uid, st.st_gid); // the owner too, where we may (as root)
    std::string error = kind == mtacfg::Compression::gzip ? gzip_into(in.fd, out.fd) : zstd_into(in.fd, out.fd);
    // Durable before the original goes: the compressed data on disk, then
    // its name (the directory), and only then the original is removed. A
    // power loss at any point leaves the original, or a whole compressed
    // copy (docs/operations.md gives the cost).
    if (error.empty() && ::fsync(out.fd) != 0)
        error = errno_text("cannot sync " + temp);
    if (const int fd = std::exchange(out.fd, -1); ::close(fd) != 0 && error.empty())
        error = errno_text("close " + temp);
    if (!error.empty()) {
        ::unlink(temp.c_str());
        return error;
    }
    if (::rename(temp.c_str(), final_name.c_str()) != 0) {
        const std::string e = errno_text("cannot rename " + temp);
        ::unlink(temp.c_str());
        return e;
    }
    if (!sync_directory_of(final_name))
        return errno_text("cannot sync the directory of " + final_name) + "; both forms kept";
    ::unlink(path.c_str());
    return {};
}

Compressor::Compressor(mtacfg::Compression kind, const Diagnostics &diag)
    : kind_(kind), diag_(diag), thread_([this] {
          name_thread("mtalog-compress");
          run();
      })
{
}

Compressor::~Compressor() { stop(); }

void Compressor::submit(std::string path, FileCounters *counters, std::string log_path, std::size_t keep)
{
    {
        std::lock_guard lock(mutex_);
        jobs_.push_back(Job{std::move(path), counters, std::move(log_path), keep});
    }
    wake_.notify_one();
}

void Compressor::stop() noexcept
{
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_one();
    if (thread_.joinable())
        thread_.join();
}

void Compressor::run()
{
    std::unique_lock lock(mutex_);
    for (;;) {
        wake_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
        if (jobs_.empty())
            return; // stopping, and the queue is finished
        Job job = std::move(jobs_.front());
        jobs_.pop_front();
        lock.unlock();
        // Nothing may leave this thread (out of memory): std::terminate
        // would take the MTA down.
        try {
            const std::string error = compress_file(job.path, kind_);
            if (!error.empty()) {
                job.counters->compress_errors.fetch_add(1, std::memory_order_relaxed);
                diag_.report(EC_LOG_ERROR, "cannot compress " + job.path + ": " + error);
            } else {
                job.counters->compressed.fetch_add(1, std::memory_order_relaxed);
            }
            apply_retention_after(job);
        } catch (const std::exception &e) {
            job.counters->compress_errors.fetch_add(1, std::memory_order_relaxed);
            diag_.report(EC_LOG_ERROR, "compressor: " + std::string(e.what()));
        }
        lock.lock();
    }
}

void Compressor::apply_retention_after(const Job &job)
{
    if (job.keep == 0)
        return;
    std::set<std::string> queued;
    {
        std::lock_guard lock(mutex_);
        for (const Job &j : jobs_)
            queued.insert(j.path);
    }
    for (const auto &deleted : apply_retention(job.log_path, job.keep, queued))
        diag_.report(EC_LOG_DEBUG, "rotate_keep: deleted \"" + deleted + "\"");
}

} // namespace mtalog

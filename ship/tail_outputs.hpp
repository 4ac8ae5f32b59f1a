// tail --out-dir's files: one per node and record type, appended, fsynced
// per batch, and cut back at start to the lengths tail's state recorded.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <sys/stat.h>
#include <unistd.h>

namespace mtalog::ship {

// All of `text` to standard output; "the output was closed" on EPIPE.
inline std::optional<std::string> write_stdout(const std::string &text)
{
    for (std::size_t done = 0; done < text.size();) {
        const ssize_t n = ::write(STDOUT_FILENO, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno == EPIPE ? std::string("the output was closed") : std::string(std::strerror(errno));
        done += static_cast<std::size_t>(n);
    }
    return std::nullopt;
}

// One output file per node and record type, appended, fsynced per batch.
class Outputs {
public:
    explicit Outputs(std::string dir) : dir_(std::move(dir)) {}
    ~Outputs()
    {
        for (auto &[name, fd] : fds_)
            ::close(fd);
    }
    // "<prefix>.<node>.<type>" -> "<node>.<type>.log". Whoever can publish
    // to the stream names the subject: a '/' becomes '_', and so does a
    // leading '.', so the name is always a file in --out-dir.
    static std::string name_of(std::string_view subject)
    {
        const auto last = subject.rfind('.');
        const auto node = last == std::string_view::npos || last == 0 ? std::string_view::npos
                                                                        : subject.rfind('.', last - 1);
        std::string name = std::string(node == std::string_view::npos ? subject : subject.substr(node + 1)) + ".log";
        std::replace(name.begin(), name.end(), '/', '_');
        std::replace(name.begin(), name.end(), '\0', '_');
        if (name.front() == '.')
            name.front() = '_';
        return name;
    }
    // A name name_of() can give: a file directly in --out-dir.
    static bool is_name(std::string_view name)
    {
        return !name.empty() && name.front() != '.' && name.find('/') == std::string_view::npos &&
               name.find('\0') == std::string_view::npos;
    }
    // Cuts each file back to what the state recorded (records written after
    // the last save come again, unacknowledged).
    std::optional<std::string> recover(const std::map<std::string, std::uint64_t> &lengths)
    {
        for (const auto &[name, length] : lengths) {
            const std::string path = dir_ + "/" + name;
            struct stat st {};
            if (::stat(path.c_str(), &st) != 0)
                return "\"" + path + "\" is gone; the state says it held " + std::to_string(length) +
                       " bytes (move the state away to start over)";
            if (static_cast<std::uint64_t>(st.st_size) > length && ::truncate(path.c_str(), static_cast<off_t>(length)) != 0)
                return "cannot cut \"" + path + "\" back to " + std::to_string(length) + " bytes: " + std::strerror(errno);
        }
        return std::nullopt;
    }
    // Adds `record` to the batch for `name` (open_output() first).
    std::optional<std::string> append(const std::string &name, std::string_view record,
                                      std::map<std::string, std::uint64_t> &lengths, bool &lengths_changed)
    {
        if (auto e = open_output(name, lengths, lengths_changed))
            return e;
        pending_[name].append(record).push_back('\n');
        return std::nullopt;
    }
    // Opens the file for `name`. A file the state has no length for yet gets
    // its length now, before anything is written to it (`lengths` changed:
    // the state must be saved before the batch is).
    std::optional<std::string> open_output(const std::string &name, std::map<std::string, std::uint64_t> &lengths,
                                           bool &lengths_changed)
    {
        if (!fds_.count(name)) {
            if (fds_.size() >= kOpenMax) { // one per node and type: a big fleet would run out of descriptors
                if (auto e = commit_pending())
                    return e;
                for (auto &[n, fd] : fds_)
                    ::close(fd);
                fds_.clear();
            }
            const int fd = ::open((dir_ + "/" + name).c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
            if (fd < 0)
                return "cannot open \"" + dir_ + "/" + name + "\": " + std::strerror(errno);
            fds_[name] = fd;
            if (!lengths.count(name)) {
                struct stat st {};
                ::fstat(fd, &st);
                lengths[name] = static_cast<std::uint64_t>(st.st_size);
                lengths_changed = true;
            }
        }
        return std::nullopt;
    }
    // Writes and fsyncs the batch; records each file's length.
    std::optional<std::string> commit(std::map<std::string, std::uint64_t> &lengths)
    {
        if (auto e = commit_pending())
            return e;
        for (auto &[name, length] : written_)
            lengths[name] = length;
        written_.clear();
        return std::nullopt;
    }

private:
    static constexpr std::size_t kOpenMax = 256;

    std::optional<std::string> commit_pending()
    {
        for (auto &[name, text] : pending_) {
            const int fd = fds_.at(name);
            for (std::size_t done = 0; done < text.size();) {
                const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
                if (n < 0 && errno == EINTR)
                    continue;
                if (n < 0)
                    return "cannot write \"" + dir_ + "/" + name + "\": " + std::strerror(errno);
                done += static_cast<std::size_t>(n);
            }
            if (::fsync(fd) != 0)
                return "cannot fsync \"" + dir_ + "/" + name + "\": " + std::strerror(errno);
            struct stat st {};
            ::fstat(fd, &st);
            written_[name] = static_cast<std::uint64_t>(st.st_size);
        }
        pending_.clear();
        return std::nullopt;
    }

    std::string dir_;
    std::map<std::string, std::uint64_t> written_; // lengths of files written since the last commit
    std::map<std::string, int> fds_;
    std::map<std::string, std::string> pending_;
};

} // namespace mtalog::ship

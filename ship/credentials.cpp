#include "credentials.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "parser.hpp"
#include "suggest.hpp"
#include "values.hpp"

namespace mtalog::ship {

namespace {

using mtacfg::ConfigError;
using mtacfg::Option;

// Larger than any user/password or token file; a bound on what is read.
constexpr std::size_t kMaxCredentialsBytes = 65536;

// What is wrong with the open credentials file for holding secrets, if anything.
std::optional<std::string> refuse_credentials(int fd)
{
    struct stat st {};
    if (::fstat(fd, &st) != 0)
        return std::string(": ") + std::strerror(errno);
    if (!S_ISREG(st.st_mode))
        return " is not a regular file";
    if ((st.st_mode & 077) != 0) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
        return " is readable or writable by others (mode " + std::string(mode) + "): chmod 600 it";
    }
    return std::nullopt;
}

std::optional<std::string> read_to_end(int fd, std::string &content)
{
    char buf[4096];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return std::string(": ") + std::strerror(errno);
        if (n == 0)
            return std::nullopt;
        content.append(buf, static_cast<std::size_t>(n));
        if (content.size() > kMaxCredentialsBytes)
            return " is too large for a credentials file";
    }
}

// The credentials file's text, read through the one descriptor whose mode
// was checked: nothing can be swapped in between, and a symbolic link (which
// could point anyone's file here) is refused, not followed.
std::optional<std::string> read_credentials_text(const std::string &path, const mtacfg::Location &named_at,
                                                 std::string &content)
{
    // O_NONBLOCK: a FIFO named here must not hang the start (it is refused
    // as not a regular file); it changes nothing for a regular file.
    const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    std::optional<std::string> problem;
    if (fd < 0)
        problem = errno == ELOOP ? " is a symbolic link: name the file itself" : std::string(": ") + std::strerror(errno);
    if (!problem)
        problem = refuse_credentials(fd);
    if (!problem)
        problem = read_to_end(fd, content);
    if (fd >= 0)
        ::close(fd);
    if (problem)
        return ConfigError{named_at, "credentials_file \"" + path + "\"" + *problem}.render();
    return std::nullopt;
}

// user/password or token, from a file nobody else may read. No message
// quotes the file's text: a slip there may hold the secret itself.
} // namespace

std::optional<std::string> read_credentials(const std::string &path, const mtacfg::Location &named_at, Credentials &out)
{
    std::string content;
    if (auto error = read_credentials_text(path, named_at, content))
        return error;
    auto parsed = mtacfg::parse_secrets(content, path);
    if (auto *e = std::get_if<ConfigError>(&parsed))
        return e->render();
    for (const Option &o : std::get<mtacfg::Document>(parsed).options) {
        const std::string name = mtacfg::to_lower(o.name);
        if (name == "user")
            out.user = o.value;
        else if (name == "password")
            out.password = o.value;
        else if (name == "token")
            out.token = o.value;
        else
            return ConfigError{o.where,
                               "unknown option in a credentials file, which holds only user, password or token" +
                                   mtacfg::did_you_mean(o.name, {"user", "password", "token"})}
                .render();
    }
    const mtacfg::Location at{path, 0, 0};
    if (!out.token.empty() && (!out.user.empty() || !out.password.empty()))
        return ConfigError{at, "give either token or user and password, not both"}.render();
    if (out.token.empty() && (out.user.empty() || out.password.empty()))
        return ConfigError{at, "needs token, or user and password"}.render();
    return std::nullopt;
}

} // namespace mtalog::ship

#include "signals.hpp"

#include <csignal>
#include <cstddef>
#include <execinfo.h>
#include <initializer_list>
#include <unistd.h>

namespace mtalog::ship {

namespace {

volatile std::sig_atomic_t g_stop = 0;
volatile std::sig_atomic_t g_status = 0;

void on_stop(int)
{
    g_stop = 1;
}
void on_status(int)
{
    g_status = 1;
}

#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
// A crash leaves its stack on standard error (the service's log) before
// the default action (a core, where enabled): addresses in mtalog-ship and
// its libraries, for addr2line. Not under the sanitizers, which report it
// themselves.
void on_fatal(int sig)
{
    char head[] = "mtalog-ship: fatal signal NN; stack:\n";
    constexpr std::size_t at = sizeof "mtalog-ship: fatal signal " - 1; // where NN is
    head[at] = static_cast<char>('0' + sig / 10 % 10);
    head[at + 1] = static_cast<char>('0' + sig % 10);
    (void)!::write(2, head, sizeof head - 1);
    void *frames[64];
    ::backtrace_symbols_fd(frames, ::backtrace(frames, 64), 2);
    ::signal(sig, SIG_DFL);
    ::raise(sig);
}

void install_crash_report()
{
    void *warm[1];
    (void)::backtrace(warm, 1); // loads what backtrace() needs now, not in the handler
    struct sigaction sa {};
    sa.sa_handler = on_fatal;
    sigemptyset(&sa.sa_mask);
    for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT})
        sigaction(sig, &sa, nullptr);
}
#else
void install_crash_report() {}
#endif

} // namespace

void install_signals(Hangup hangup)
{
    install_crash_report();
    struct sigaction sa {};
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);
    if (hangup == Hangup::stop)
        sigaction(SIGHUP, &sa, nullptr);
    sa.sa_handler = on_status;
    sigaction(SIGUSR1, &sa, nullptr);
    if (hangup == Hangup::status)
        sigaction(SIGHUP, &sa, nullptr); // systemctl reload: there is nothing to reopen
    std::signal(SIGPIPE, SIG_IGN);
}

bool stop_requested()
{
    return g_stop != 0;
}

void request_stop()
{
    g_stop = 1;
}

bool take_status_request()
{
    if (!g_status)
        return false;
    g_status = 0;
    return true;
}

} // namespace mtalog::ship

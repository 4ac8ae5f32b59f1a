#include "signals.hpp"

#include <csignal>

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

} // namespace

void install_signals()
{
    struct sigaction sa {};
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);
    sa.sa_handler = on_status;
    sigaction(SIGUSR1, &sa, nullptr);
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

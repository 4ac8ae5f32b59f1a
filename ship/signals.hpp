// SIGTERM/SIGINT (stop) and SIGUSR1 (status now) for mtalog-ship's loops;
// SIGHUP is a status request for the shipper (systemctl reload), a stop for
// tail (its terminal closed).
#pragma once

namespace mtalog::ship {

enum class Hangup { status, stop };
void install_signals(Hangup hangup); // also ignores SIGPIPE: a closed output is a write error
[[nodiscard]] bool stop_requested();
void request_stop();
[[nodiscard]] bool take_status_request();

} // namespace mtalog::ship

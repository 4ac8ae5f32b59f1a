// SIGTERM/SIGINT (stop) and SIGUSR1 (status now) for mtalog-ship's loops.
#pragma once

namespace mtalog::ship {

void install_signals(); // also ignores SIGPIPE: a closed output is a write error
[[nodiscard]] bool stop_requested();
void request_stop();
[[nodiscard]] bool take_status_request();

} // namespace mtalog::ship

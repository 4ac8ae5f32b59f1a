// One `mtalog "name" { ... }` stanza at run time: its files, its spdlog
// thread pool and loggers, its flusher, and its hook registrations.
//
// Lifecycle (see ec_module.h): create() validates only; start() opens files,
// builds the loggers and registers hooks last, so no hook sees a half-built
// instance; stop() unregisters first, then drains and joins everything.
#pragma once

#include <array>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include <mtahooks/ec_module.h>
#include <spdlog/async_logger.h>

#include "counters.hpp"
#include "diagnostics.hpp"
#include "escape.hpp"
#include "format_context.hpp"
#include "formatter.hpp"
#include "bounce_rules.hpp"
#include "reason.hpp"
#include "mtalog_options.hpp"
#include "record.hpp"
#include "batcher.hpp"
#include "compressor.hpp"
#include "log_file_sink.hpp"

namespace mtalog {

class Instance {
public:
    // Validates the stanza. Returns the instance or "file:line:column: ...".
    static std::variant<std::unique_ptr<Instance>, std::string> create(ec_core *core,
                                                                       const ec_config_stanza &stanza);
    ~Instance();
    Instance(const Instance &) = delete;
    Instance &operator=(const Instance &) = delete;

    std::optional<std::string> start();
    void stop() noexcept;
    // "stats": one line per file with its counters.
    std::optional<std::string> control(std::string_view command);

    // Hook bodies (the C trampolines in hook_handlers.cpp call these).
    void log_message_record(RecordKind kind, const ec_message *msg, const domain_record *dr, const timeval *now,
                            const char *note, int note_len);
    void log_connection_failure(const sockaddr *addr, int err, const domain_record *dr, int binding_slot,
                                const timeval *now);
    void reopen();
    // reopen() failed part way (out of memory): counted as a reopen error of
    // every file; a file not reopened is found moved by its identity check
    // (reopen_check_interval) and reopened then, counted in missed_reopens.
    void reopen_failed() noexcept;

private:
    static constexpr int kCachedBindingSlots = 256; // binding texts kept for slots below this

    using Deadline = std::chrono::steady_clock::time_point;

    struct File {
        mtacfg::FileSpec spec;
        FileCounters counters;
        std::shared_ptr<LogFileSink> sink;
        std::shared_ptr<spdlog::async_logger> logger;
        const Formatter *formatter = nullptr;
        Batcher::Lane lane;               // how its records reach the queue
        std::mutex marker_mutex;
        std::uint64_t reopens_posted = 0; // under marker_mutex
    };

    Instance(ec_core *core, mtacfg::Settings settings);
    std::optional<std::string> compile_formats(); // "file:line:column: ..." on a bad template
    void emit(Record &record); // sets record.cache to the calling thread's
    [[nodiscard]] Deadline overflow_deadline() const;
    void flusher_loop();
    void report_totals();
    void write_metrics() noexcept; // metrics_file, when set (flusher thread, start and stop only)
    void shut_down_writers() noexcept;
    std::optional<std::string> register_hooks();

    ec_core *core_;
    mtacfg::Settings settings_;
    Diagnostics diag_;
    FormatContext format_ctx_;
    std::shared_ptr<const BounceRules> bounce_rules_; // compiled by create()
    BounceCounts bounce_counts_;
    std::vector<std::unique_ptr<Formatter>> formatters_; // one per settings_.files entry, compiled by create()
    std::unique_ptr<Batcher> batcher_;
    std::unique_ptr<Compressor> compressor_;
    std::shared_ptr<spdlog::details::thread_pool> pool_;
    std::vector<std::unique_ptr<File>> files_;
    std::array<File *, mtacfg::kRecordKinds> route_{};

    std::thread flusher_;
    std::mutex flusher_mutex_;
    std::condition_variable flusher_wake_;
    bool flusher_stop_ = false;
    RateLimit metrics_error_limit_;
    bool started_ = false;
    bool started_before_ = false; // final counters are reported only for files that were in use
};

} // namespace mtalog

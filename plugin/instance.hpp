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
#include "mtalog_options.hpp"
#include "record.hpp"
#include "staging.hpp"
#include "admission.hpp"
#include "compressor.hpp"
#include "handoff_lock.hpp"
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

private:
    static constexpr int kCachedBindingSlots = 256; // mainlog binding text kept for slots below this
    // spdlog's queue has a slot for every batch admission lets in, plus these
    // per file, so posting never blocks: a flusher batch and a flush, a
    // reopen's batch and its marker, unload's batch and its flush (each at
    // most one queued at a time), and spare ones.
    static constexpr std::size_t kControlSlotsPerFile = 8;

    using Deadline = std::chrono::steady_clock::time_point;

    struct File {
        std::size_t index = 0; // in files_ and in each stage
        mtacfg::FileSpec spec;
        FileCounters counters;
        std::shared_ptr<LogFileSink> sink;
        std::shared_ptr<spdlog::async_logger> logger;
        const Formatter *formatter = nullptr;
        // Shared by a thread handing off its own batch; exclusive while a
        // flusher, reopen or unload collects every thread's staged records
        // into one batch, so no thread's later batch overtakes its records
        // in that one, and a reopen's marker comes after every batch that
        // was being posted when the reopen began.
        HandoffLock handoff;
        Buffer collected;                   // the collected batch (handoff exclusive)
        std::uint64_t collected_posted = 0; // kCollectedLevel batches queued (handoff exclusive)
        unsigned collect_skips = 0;         // flusher ticks the queue had no room (handoff exclusive)
        std::uint64_t flushes_posted = 0;   // flusher thread only
        std::mutex marker_mutex;
        std::uint64_t reopens_posted = 0;   // under marker_mutex
    };

    Instance(ec_core *core, mtacfg::Settings settings);
    std::optional<std::string> compile_formats(); // "file:line:column: ..." on a bad template
    void emit(Record &record); // sets record.cache to the calling thread's
    // The calling thread's batch for `file` is full: hand it to the queue,
    // waiting for room until `deadline`, or count it refused.
    void hand_off_own(std::unique_lock<std::mutex> &stage_lock, Staging::Stage &stage, File &file, Deadline deadline);
    // Every thread's staged records for `file`, moved into file.collected
    // (handoff held exclusive). trim: free stage buffers of quiet threads.
    std::size_t collect(File &file, bool trim);
    // Collects and queues one batch at `level`, room or not; true if queued.
    bool collect_and_queue(File &file, spdlog::level::level_enum level, bool trim);
    // The flusher's (and stats') collection: see instance.cpp. handoff held exclusive.
    void collect_quiet_records(File &file, bool trim);
    // Queues `records` lines already admitted as `units`; false (counted as
    // dropped_internal) if spdlog could not take them.
    bool queue(File &file, const Buffer &lines, std::size_t records, std::size_t units,
               spdlog::level::level_enum level);
    void post_marker(File &file, spdlog::level::level_enum level);
    void count_refused(File &file, std::size_t records);
    [[nodiscard]] Deadline overflow_deadline() const;
    void flusher_loop();
    void report_totals();
    void shut_down_writers() noexcept;
    std::optional<std::string> register_hooks();

    ec_core *core_;
    mtacfg::Settings settings_;
    Diagnostics diag_;
    FormatContext format_ctx_;
    std::vector<std::unique_ptr<Formatter>> formatters_; // one per settings_.files entry, compiled by create()
    std::unique_ptr<Admission> admission_;
    std::unique_ptr<Staging> staging_;
    std::unique_ptr<Compressor> compressor_;
    std::shared_ptr<spdlog::details::thread_pool> pool_;
    std::vector<std::unique_ptr<File>> files_;
    std::array<File *, mtacfg::kRecordKinds> route_{};
    RateLimit log_error_limit_;
    RateLimit overflow_limit_;
    std::size_t batch_records_ = Staging::kBatchRecords;
    std::size_t batch_bytes_ = Staging::kBatchBytes;

    std::thread flusher_;
    std::mutex flusher_mutex_;
    std::condition_variable flusher_wake_;
    bool flusher_stop_ = false;
    bool started_ = false;
    bool started_before_ = false; // final counters are reported only for files that were in use
};

} // namespace mtalog
